// Distributed tracing with OpenTelemetry (issue 19). Off unless TRACING_SAMPLE_RATIO > 0:
// then nothing is registered, every helper below returns at its first line (`enabled` is
// false) and the @opentelemetry/api calls anyone else makes stay on the API's no-op path.
//
// On, a process has one NodeTracerProvider (AsyncLocalStorage context, W3C traceparent):
//   - a SERVER span per unary RPC (Connect: tracingInterceptor, first of the server's
//     interceptors; grpc-js: grpc.ts), a SERVER span per plain POST route (payments'
//     webhook), parented by the caller's traceparent header;
//   - a CLIENT span per outbound call (outbound.ts), its traceparent sent with the call;
//   - a child span per PostgreSQL statement made while a span is active (postgres.ts);
//   - the outbox keeps the traceparent of the transaction that wrote each row (column
//     `traceparent`); the relay publishes it as a PRODUCER span whose traceparent goes in
//     the NATS message's headers; consumers start a CONSUMER span from it (consumer.ts);
//   - commands carry a traceparent down the kiosk stream and back in the result (link).
// Streams are not spans (a kiosk's stream lives for days); what travels on them is.
// Sampling is parent-based: a call that arrives sampled is traced whatever the ratio.
// Spans go by OTLP/HTTP (JSON) to TRACING_OTLP_URL when set (a Collector, Jaeger, devstack's
// span store on :7111), in batches.
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TextMapGetter,
  type Tracer,
} from "@opentelemetry/api";
import type { Interceptor } from "@connectrpc/connect";
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { z } from "zod";

/** Settings every service shares (part of baseConfigShape). */
export const tracingConfigShape = {
  /** Share of new traces sampled (0 = tracing off, the default; 1 = every trace). Parent-based. */
  TRACING_SAMPLE_RATIO: z.coerce.number().min(0).max(1).default(0),
  /** Where spans go: an OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces. */
  TRACING_OTLP_URL: z.string().url().optional(),
};

export interface TracingSettings {
  TRACING_SAMPLE_RATIO?: number;
  TRACING_OTLP_URL?: string | undefined;
}

let enabled = false;
let tracer: Tracer = trace.getTracer("adminkiosk");
let flush: (() => Promise<void>) | undefined;

/** Whether this process traces (TRACING_SAMPLE_RATIO > 0). */
export function tracingEnabled(): boolean {
  return enabled;
}

/**
 * Sets up the process's tracer provider once (later calls do nothing). With a ratio of 0 it
 * registers nothing at all. Resolves when set up.
 */
export async function initTracing(service: string, settings: TracingSettings): Promise<void> {
  if (enabled || !settings.TRACING_SAMPLE_RATIO || settings.TRACING_SAMPLE_RATIO <= 0) return;
  enabled = true;
  const [{ NodeTracerProvider }, base, { resourceFromAttributes }] = await Promise.all([
    import("@opentelemetry/sdk-trace-node"),
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/resources"),
  ]);
  const processors = [];
  if (settings.TRACING_OTLP_URL) {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    processors.push(
      new base.BatchSpanProcessor(new OTLPTraceExporter({ url: settings.TRACING_OTLP_URL }), {
        scheduledDelayMillis: 500,
        maxQueueSize: 8192,
        maxExportBatchSize: 512,
      }),
    );
  }
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": service }),
    sampler: new base.ParentBasedSampler({ root: new base.TraceIdRatioBasedSampler(settings.TRACING_SAMPLE_RATIO) }),
    spanProcessors: processors,
  });
  provider.register();
  tracer = trace.getTracer("adminkiosk");
  flush = () => provider.forceFlush();
}

/** Sends the spans still buffered (a service's close calls it). */
export async function flushTracing(): Promise<void> {
  await flush?.().catch(() => {});
}

/** The active span's ids for a log line, or nothing. */
export function traceLogFields(): Record<string, string> {
  if (!enabled) return {};
  const span = trace.getActiveSpan();
  if (!span) return {};
  const c = span.spanContext();
  return { trace_id: c.traceId, span_id: c.spanId };
}

const headersGetter: TextMapGetter<Headers> = {
  keys: (h) => [...h.keys()],
  get: (h, key) => h.get(key) ?? undefined,
};

const recordGetter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (h) => Object.keys(h),
  get: (h, key) => h[key],
};

/** The context a traceparent (and tracestate) names; the root context for none or a bad one. */
export function contextFromTraceparent(traceparent: string | undefined, tracestate?: string): Context {
  if (!enabled || !traceparent) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, tracestate ? { traceparent, tracestate } : { traceparent }, recordGetter);
}

/** The traceparent of `ctx` (the active context by default); undefined when tracing is off or nothing is sampled. */
export function currentTraceparent(ctx: Context = context.active()): string | undefined {
  if (!enabled) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier["traceparent"];
}

/** Adds the active context's traceparent to `carrier` (outgoing HTTP or NATS headers). */
export function injectTraceHeaders(carrier: { set(key: string, value: string): void } | Record<string, string>, ctx: Context = context.active()): void {
  if (!enabled) return;
  const tp = currentTraceparent(ctx);
  if (!tp) return;
  if (typeof (carrier as { set?: unknown }).set === "function") (carrier as { set(k: string, v: string): void }).set("traceparent", tp);
  else (carrier as Record<string, string>)["traceparent"] = tp;
}

function ended(span: Span, err: unknown) {
  if (err !== undefined) {
    const e = err as { code?: unknown; message?: unknown; rawMessage?: unknown };
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(e?.rawMessage ?? e?.message ?? err) });
    if (typeof e?.code === "number") span.setAttribute("rpc.grpc.status_code", e.code);
  } else span.setAttribute("rpc.grpc.status_code", 0);
  span.end();
}

/**
 * Runs `work` in a new span (child of `parent`, the active context by default) and ends it
 * when `work` settles, marking an error. Without tracing, just `work()`.
 */
export function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; parent?: Context; links?: Link[] },
  work: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  if (!enabled) return work(undefined);
  const parent = options.parent ?? context.active();
  const span = tracer.startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes, links: options.links }, parent);
  const ctx = trace.setSpan(parent, span);
  return context.with(ctx, () => work(span)).then(
    (v) => {
      span.end();
      return v;
    },
    (err: unknown) => {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      span.end();
      throw err;
    },
  );
}

/** A span started now and ended by the caller (callbacks that do not nest in a promise). */
export function startSpan(name: string, options: { kind?: SpanKind; attributes?: Attributes; parent?: Context; links?: Link[] } = {}): { span: Span; ctx: Context } | undefined {
  if (!enabled) return undefined;
  const parent = options.parent ?? context.active();
  const span = tracer.startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes, links: options.links }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Runs `fn` with `ctx` active (or just runs it without tracing). */
export function withContext<T>(ctx: Context | undefined, fn: () => T): T {
  if (!enabled || !ctx) return fn();
  return context.with(ctx, fn);
}

// ---- RPC spans -------------------------------------------------------------------------

interface RpcRequest {
  service: { typeName: string };
  method: { name: string; methodKind: string };
  header: Headers;
}

/** A SERVER span around a unary Connect call, parented by the caller's traceparent. */
export function traceServerCall<R>(req: RpcRequest, next: () => Promise<R>): Promise<R> {
  if (!enabled || req.method.methodKind !== "unary") return next();
  const parent = propagation.extract(ROOT_CONTEXT, req.header, headersGetter);
  const span = tracer.startSpan(
    `${req.service.typeName}/${req.method.name}`,
    { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": req.service.typeName, "rpc.method": req.method.name } },
    parent,
  );
  return context.with(trace.setSpan(parent, span), next).then(
    (res) => {
      ended(span, undefined);
      return res;
    },
    (err: unknown) => {
      ended(span, err);
      throw err;
    },
  );
}

/** The Connect server interceptor: traceServerCall for every call (a no-op when tracing is off). */
export function tracingInterceptor(): Interceptor {
  return (next) => (req) => (enabled ? traceServerCall(req, () => next(req)) : next(req));
}

/** A SERVER span for a grpc-js call: returns the context to run it in and its end, or undefined. */
export function startGrpcServerSpan(service: string, method: string, traceparent: unknown, tracestate: unknown): { ctx: Context; end(err?: unknown): void } | undefined {
  if (!enabled) return undefined;
  const parent = contextFromTraceparent(typeof traceparent === "string" ? traceparent : undefined, typeof tracestate === "string" ? tracestate : undefined);
  const span = tracer.startSpan(`${service}/${method}`, { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method } }, parent);
  return { ctx: trace.setSpan(parent, span), end: (err) => ended(span, err) };
}

/** A CLIENT span around an outbound Connect/gRPC call; its traceparent goes in the request's headers. */
export function traceClientCall<R>(req: RpcRequest, next: () => Promise<R>): Promise<R> {
  if (!enabled) return next();
  const parent = context.active();
  const span = tracer.startSpan(
    `${req.service.typeName}/${req.method.name}`,
    { kind: SpanKind.CLIENT, attributes: { "rpc.system": "grpc", "rpc.service": req.service.typeName, "rpc.method": req.method.name } },
    parent,
  );
  const ctx = trace.setSpan(parent, span);
  propagation.inject(ctx, req.header, { set: (h, k, v) => h.set(k, v) });
  return context.with(ctx, next).then(
    (res) => {
      ended(span, undefined);
      return res;
    },
    (err: unknown) => {
      ended(span, err);
      throw err;
    },
  );
}

/** A SERVER span around a plain HTTP route (payments' provider webhook), parented by its traceparent header. */
export function traceHttpRoute<R>(method: string, path: string, headers: Record<string, string | string[] | undefined>, work: () => R | Promise<R>): Promise<R> {
  if (!enabled) return Promise.resolve().then(work);
  const parent = propagation.extract(ROOT_CONTEXT, headers, recordGetter);
  const span = tracer.startSpan(`${method} ${path}`, { kind: SpanKind.SERVER, attributes: { "http.request.method": method, "url.path": path } }, parent);
  return context.with(trace.setSpan(parent, span), () => Promise.resolve().then(work)).then(
    (v) => {
      span.end();
      return v;
    },
    (err: unknown) => {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      span.end();
      throw err;
    },
  );
}

/** NATS headers carrying the active context's traceparent, or undefined (tracing off, nothing active). */
export function natsTraceHeaders(ctx: Context = context.active()): MsgHdrs | undefined {
  if (!enabled) return undefined;
  const tp = currentTraceparent(ctx);
  if (!tp) return undefined;
  const h = natsHeaders();
  h.set("traceparent", tp);
  return h;
}

// ---- JetStream consumers ----------------------------------------------------------------

/** A consumed message as traceConsume needs it. */
export interface TracedMessage {
  subject: string;
  headers: Record<string, string>;
  /** When JetStream stored it (ms since the epoch), if known. */
  publishedMs?: number;
}

/**
 * Runs a consumer's work on `msgs` in the trace their producer started: for one message, a
 * "JetStream <stream>" span from when the stream stored it to now (its time in the stream),
 * and in it a CONSUMER span for the work; for a batch, one CONSUMER span linked to each
 * message's producer span. Without tracing (or a traceparent), just `work()`.
 */
export function traceConsume<R>(stream: string, durable: string, msgs: TracedMessage[], work: () => Promise<R>): Promise<R> {
  if (!enabled) return work();
  const attributes = { "messaging.system": "nats", "messaging.consumer.group.name": durable, "messaging.operation.type": "process", "messaging.batch.message_count": msgs.length };
  if (msgs.length === 1) {
    const m = msgs[0]!;
    const parent = contextFromTraceparent(m.headers["traceparent"]);
    if (trace.getSpanContext(parent) === undefined) return inSpan(`process ${durable}`, { kind: SpanKind.CONSUMER, attributes: { ...attributes, "messaging.destination.name": m.subject } }, work);
    const now = Date.now();
    const stored = tracer.startSpan(
      `JetStream ${stream}`,
      { kind: SpanKind.INTERNAL, startTime: m.publishedMs !== undefined && m.publishedMs <= now ? m.publishedMs : now, attributes: { "messaging.system": "nats", "messaging.destination.name": m.subject, "messaging.consumer.group.name": durable } },
      parent,
    );
    stored.end(now);
    return inSpan(`process ${durable}`, { kind: SpanKind.CONSUMER, parent: trace.setSpan(parent, stored), attributes: { ...attributes, "messaging.destination.name": m.subject } }, work);
  }
  const links: Link[] = [];
  for (const m of msgs) {
    const c = trace.getSpanContext(contextFromTraceparent(m.headers["traceparent"]));
    if (c) links.push({ context: c });
  }
  return inSpan(`process ${durable}`, { kind: SpanKind.CONSUMER, parent: ROOT_CONTEXT, links, attributes }, work);
}

// ---- PostgreSQL ------------------------------------------------------------------------

interface Queryable {
  query: (...args: unknown[]) => unknown;
}
const patched = new WeakSet<object>();

/**
 * Makes each statement `client` runs while a span is active a child span ("pg SELECT").
 * Statements outside any span (pollers, sweeps) make none. Only the promise form is traced.
 */
export function traceClientQueries(client: Queryable): void {
  // Patched whether or not tracing is on yet (a pool's first clients connect before the
  // server sets tracing up); off, a statement costs one boolean check more.
  if (patched.has(client)) return;
  patched.add(client);
  const original = client.query;
  client.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === "string" ? first : typeof (first as { text?: unknown })?.text === "string" ? (first as { text: string }).text : undefined;
    if (!enabled) return original.apply(this, args);
    const parent = trace.getActiveSpan();
    if (!parent || text === undefined || typeof args.at(-1) === "function") return original.apply(this, args);
    const verb = /^\s*(?:WITH\b.*?\)\s*)?([A-Za-z]+)/s.exec(text)?.[1]?.toUpperCase() ?? "QUERY";
    const span = tracer.startSpan(`pg ${verb}`, { kind: SpanKind.CLIENT, attributes: { "db.system.name": "postgresql", "db.query.text": text.length > 300 ? `${text.slice(0, 297)}...` : text } });
    const result = original.apply(this, args) as Promise<unknown>;
    if (!result || typeof (result as Promise<unknown>).then !== "function") {
      span.end();
      return result;
    }
    return result.then(
      (v) => {
        span.end();
        return v;
      },
      (err: unknown) => {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
        span.end();
        throw err;
      },
    );
  };
}

export { SpanKind };

// The grpc-js side of a service's port. A service whose long-lived streams are its
// load (link: one bidi stream per kiosk, 100,000 per process) serves HTTP/2 with
// @grpc/grpc-js, which holds a stream in a fraction of what connect-node's per-call
// machinery costs (bench/RESULTS.md). Same contract and codecs: each method's
// (de)serialisers are toBinary/fromBinary of the generated protobuf-es schemas (no
// proto-loader); the same access rules (access.ts `authorize`), metrics and log line
// (observe.ts `observeCall`), request ids, and grpc.health.v1 and reflection from the
// same implementations as the Connect side (health.ts, reflection.ts).
//
// Two kinds of handlers:
//   - `GrpcBidiHandler`: the raw grpc-js duplex call, for streams that must cost little
//     (no async generator, no promise per message); it ends the call with ctx.end(err?).
//   - a Connect `ServiceImpl` (unary, server streaming, bidi over async iterables), for
//     the infrastructure services (health, reflection), which need no such care.
import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, isMessage, toBinary, type DescMessage, type DescMethod, type DescService, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { Health } from "@adminkiosk/proto/grpc/health/v1/health_pb";
import { ServerReflection as ServerReflectionV1 } from "@adminkiosk/proto/grpc/reflection/v1/reflection_pb";
import { ServerReflection as ServerReflectionV1alpha } from "@adminkiosk/proto/grpc/reflection/v1alpha/reflection_pb";
import { authorize, principalLogFields } from "./access.js";
import type { Admission } from "./admission.js";
import { healthImplementation, type HealthMonitor } from "./health.js";
import type { Logger } from "./logger.js";
import { observeCall, toConnectError, type RpcMetrics } from "./observe.js";
import type { Principal } from "./principal.js";
import { reflectionImplementations } from "./reflection.js";
import type { RequestInfo } from "./request.js";
import type { TokenVerifier } from "./tokens.js";
import { startGrpcServerSpan, withContext } from "./tracing.js";

/**
 * What a deserialiser hands a handler for bytes that are not the method's request
 * message (grpc-js would answer INTERNAL; it is the caller's fault, so the handler
 * ends the call with `error`, InvalidArgument naming the message type).
 */
export class Undecodable {
  readonly error: ConnectError;
  constructor(schema: DescMessage, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    this.error = new ConnectError(`the caller sent bytes that are not a ${schema.name} (${why})`, Code.InvalidArgument);
  }
}

export interface GrpcCallContext {
  /** Who calls (after the method's access rule admitted them); undefined for open methods. */
  readonly principal: Principal | undefined;
  readonly info: RequestInfo;
  /**
   * Ends the call once: OK without an error, else with the error's code, message, details
   * and metadata (what toConnectError makes of it). Records the call's metrics and log line.
   */
  end(err?: unknown): void;
  /** The call is open: its admission turn (if its method has admission control) goes to the next caller. */
  opened(): void;
}

export type GrpcBidiHandler<I extends DescMessage, O extends DescMessage> = (
  call: grpc.ServerDuplexStream<MessageShape<I> | Undecodable, MessageShape<O>>,
  ctx: GrpcCallContext,
) => void;

export interface GrpcServiceHandlers {
  service: DescService;
  /** Raw bidi handlers by the method's local name (e.g. `connect`). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  bidi: Record<string, GrpcBidiHandler<any, any>>;
}

export interface GrpcServerOptions {
  log: Logger;
  metrics: RpcMetrics;
  verifyToken: TokenVerifier;
  handlers: GrpcServiceHandlers[];
  health: HealthMonitor;
  /** Every service the process serves (health and reflection list them). */
  services: DescService[];
  readMaxBytes: number;
  writeMaxBytes: number;
  /** A call whose deadline is further away than this is refused (as connect-node does). */
  maxTimeoutMs: number;
  trustProxy: boolean;
  /**
   * Admission control (admission.ts) for these methods: a call waits for a turn before its
   * credential is checked, or is refused with UNAVAILABLE and grpc-retry-pushback-ms when the
   * accept queue is full; its handler gives the turn back with ctx.opened() (or by ending).
   */
  admission?: { methods: DescMethod[]; admission: Admission };
}

export interface GrpcConnections {
  /** Serves one HTTP/2 (prior knowledge) connection; `first` bytes were already read from it. */
  inject(connection: Duplex): void;
  /** GOAWAY on every connection: no new calls; connections close when their calls end. */
  drain(): void;
  /** Closes what is left at once. */
  destroy(): void;
}

/** The grpc status a ConnectError becomes: code, message, and metadata with any error details. */
export function grpcStatusOf(err: ConnectError): Partial<grpc.StatusObject> & { code: grpc.status; details: string } {
  const metadata = new grpc.Metadata();
  err.metadata.forEach((value, key) => {
    if (key.startsWith("grpc-") && key !== "grpc-retry-pushback-ms") return;
    if (key.endsWith("-bin")) metadata.set(key, Buffer.from(value, "base64"));
    else metadata.set(key, value);
  });
  const details = setTrailerStatus(new Headers(), err).get("grpc-status-details-bin");
  if (details && err.details.length > 0) metadata.set("grpc-status-details-bin", Buffer.from(details, "base64"));
  return { code: err.code as number as grpc.status, details: err.rawMessage, metadata };
}

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** A call's request info; its logger is made when first used (most long streams log twice). */
class CallInfo implements RequestInfo {
  principal: Principal | undefined = undefined;
  private bound: Logger | undefined;
  constructor(
    readonly id: string,
    readonly peer: string,
    private readonly base: Logger,
  ) {}
  get log(): Logger {
    return (this.bound ??= this.base.child(this.principal ? { requestId: this.id, ...principalLogFields(this.principal) } : { requestId: this.id }));
  }
  set log(l: Logger) {
    this.bound = l;
  }
}

function callInfo(o: GrpcServerOptions, metadata: grpc.Metadata, peer: string): CallInfo {
  const given = metadata.get("x-request-id")[0];
  const id = typeof given === "string" && requestIdPattern.test(given) ? given : randomUUID();
  let address = "";
  if (o.trustProxy) {
    const forwarded = metadata.get("x-forwarded-for").join(",");
    address = forwarded.split(",").at(-1)?.trim() ?? "";
  }
  // grpc-js reports "host:port" (IPv6 in brackets); the Connect side reports the address alone.
  address ||= peer.replace(/^\[(.*)\]:\d+$/, "$1").replace(/^([^:]*):\d+$/, "$1");
  return new CallInfo(id, address || "unknown", o.log);
}

function serializer(schema: DescMessage) {
  return (message: unknown): Buffer => {
    const m = isMessage(message, schema) ? message : create(schema, message as never);
    const bytes = toBinary(schema, m);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(schema: DescMessage) {
  return (bytes: Buffer): unknown => {
    try {
      return fromBinary(schema, bytes);
    } catch (err) {
      return new Undecodable(schema, err);
    }
  };
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

export function createGrpcConnections(o: GrpcServerOptions): GrpcConnections {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": o.readMaxBytes,
    "grpc.max_send_message_length": o.writeMaxBytes,
  });

  /**
   * Runs the access check and admission, then `run`. `end` ends the call (OK: undefined);
   * the call's metrics and log line are recorded once, however it ends.
   */
  const start: Start = (method, call, end, run) => {
    const info = callInfo(o, call.metadata, call.getPeer());
    let finished = false;
    // A span per unary call (streams are not spans: a kiosk's stream lives for days).
    const span = method.methodKind === "unary" ? startGrpcServerSpan(method.parent.typeName, method.name, call.metadata.get("traceparent")[0], call.metadata.get("tracestate")[0]) : undefined;
    const observed = observeCall(o.metrics, method, () => info.log, info.id);
    const finish = (err?: unknown): ConnectError | undefined => {
      if (finished) return err === undefined ? undefined : toConnectError(err, info.id);
      finished = true;
      const e = withContext(span?.ctx, () => observed(err));
      span?.end(e);
      return e;
    };
    let release: (() => void) | undefined;
    const opened = () => {
      const r = release;
      release = undefined;
      r?.();
    };
    (call as NodeJS.EventEmitter).once("cancelled", () => {
      opened();
      finish(new ConnectError("the caller cancelled the call", Code.Canceled));
    });
    const proceed = () => {
      const header = call.metadata.get("authorization")[0];
      authorize(method, typeof header === "string" ? header : undefined, o.verifyToken).then(
        (principal) => {
          if (finished) return opened(); // the caller left while its credential was checked
          info.principal = principal;
          const deadline = call.getDeadline();
          const timeoutMs = deadline instanceof Date ? deadline.getTime() - Date.now() : deadline - Date.now();
          if (Number.isFinite(timeoutMs) && timeoutMs > o.maxTimeoutMs) {
            opened();
            return end(finish(new ConnectError(`the deadline is ${Math.round(timeoutMs)} ms away; at most ${o.maxTimeoutMs} ms is allowed (send none for a long-lived stream)`, Code.InvalidArgument)));
          }
          withContext(span?.ctx, () => run({
            principal,
            info,
            end: (err) => {
              opened();
              end(finish(err));
            },
            opened,
          }));
        },
        (err: unknown) => {
          opened();
          end(finish(err));
        },
      );
    };
    if (!o.admission?.methods.includes(method)) return proceed();
    const turn = o.admission.admission.enter();
    if (turn instanceof ConnectError) return end(finish(turn));
    void turn.then((r) => {
      release = r;
      if (finished) return opened(); // gave up while it waited
      proceed();
    });
  };

  for (const { service, bidi } of o.handlers) {
    for (const method of service.methods) {
      const handler = bidi[method.localName];
      if (!handler) continue;
      if (method.methodKind !== "bidi_streaming") throw new Error(`${service.typeName}/${method.name}: only bidi methods take raw grpc-js handlers`);
      server.register(
        `/${service.typeName}/${method.name}`,
        (call: grpc.ServerDuplexStream<unknown, unknown>) =>
          start(method, call, (err) => endCall(call, err), (ctx) => handler(call as never, ctx)),
        serializer(method.output),
        deserializer(method.input),
        "bidi",
      );
    }
  }

  // Health and reflection, from the same implementations as the Connect side.
  const [reflectionV1, reflectionV1alpha] = reflectionImplementations(o.services);
  const infrastructure: [DescService, ServiceImpl<DescService>][] = [
    [Health, healthImplementation(o.health, o.services.map((s) => s.typeName)) as ServiceImpl<DescService>],
    [ServerReflectionV1, reflectionV1 as ServiceImpl<DescService>],
    [ServerReflectionV1alpha, reflectionV1alpha as ServiceImpl<DescService>],
  ];
  for (const [service, impl] of infrastructure) {
    for (const method of service.methods) registerImplementation(server, method, impl[method.localName] as never, start);
  }

  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  return {
    inject: (connection) => injector.injectConnection(connection),
    // A grace far beyond any shutdown: the caller decides when to destroy.
    drain: () => injector.drain(24 * 3600 * 1000),
    destroy: () => {
      injector.destroy();
      server.forceShutdown();
    },
  };
}

/** Ends a streaming grpc-js call: OK, or the error as a grpc status. */
function endCall(call: AnyCall, err: ConnectError | undefined) {
  if (!("end" in call)) return;
  if (err) call.emit("error", grpcStatusOf(err));
  else call.end();
}

type Start = (method: DescMethod, call: AnyCall, end: (err: ConnectError | undefined) => void, run: (ctx: GrpcCallContext) => void) => void;

/** A Connect handler (unary, server streaming or bidi over async iterables) served by grpc-js. */
function registerImplementation(server: grpc.Server, method: DescMethod, fn: (input: unknown, ctx: HandlerContext) => unknown, start: Start) {
  const path = `/${method.parent.typeName}/${method.name}`;
  const context = (call: AnyCall) => {
    const abort = new AbortController();
    (call as NodeJS.EventEmitter).once("cancelled", () => abort.abort(new ConnectError("the caller cancelled the call", Code.Canceled)));
    return { signal: abort.signal, abort } as unknown as HandlerContext & { abort: AbortController };
  };
  const decoded = (m: unknown) => {
    if (m instanceof Undecodable) throw m.error;
    return m;
  };
  switch (method.methodKind) {
    case "unary":
      server.register(
        path,
        (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
          start(
            method,
            call,
            (err) => {
              if (err) callback(grpcStatusOf(err) as grpc.ServerErrorResponse);
            },
            (ctx) => {
              Promise.resolve()
                .then(() => fn(decoded(call.request), context(call)))
                .then(
                  (res) => {
                    ctx.end();
                    callback(null, res);
                  },
                  (err: unknown) => ctx.end(err),
                );
            },
          ),
        serializer(method.output),
        deserializer(method.input),
        "unary",
      );
      return;
    case "server_streaming":
    case "bidi_streaming": {
      const bidi = method.methodKind === "bidi_streaming";
      server.register(
        path,
        (call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>) =>
          start(
            method,
            call,
            (err) => endCall(call, err),
            (ctx) => {
              const hctx = context(call);
              void (async () => {
                try {
                  // Not destroyed when the requests end: the status is still to be sent.
                  const input = bidi ? mapAsync((call as grpc.ServerDuplexStream<unknown, unknown>).iterator({ destroyOnReturn: false }), decoded) : decoded((call as grpc.ServerWritableStream<unknown, unknown>).request);
                  for await (const out of fn(input, hctx) as AsyncIterable<unknown>) {
                    if (!call.write(out)) await new Promise((r) => call.once("drain", r));
                  }
                  ctx.end();
                } catch (err) {
                  ctx.end(hctx.signal.aborted ? new ConnectError("the caller cancelled the call", Code.Canceled) : err);
                }
              })();
            },
          ),
        serializer(method.output),
        deserializer(method.input),
        bidi ? "bidi" : "serverStream",
      );
      return;
    }
    default:
      return;
  }
}

async function* mapAsync<T, U>(source: AsyncIterable<T>, f: (t: T) => U): AsyncIterable<U> {
  for await (const item of source) yield f(item);
}

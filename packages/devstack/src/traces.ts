// A small in-memory span store for local runs and tests (issue 19): services started with
// TRACING_OTLP_URL=http://127.0.0.1:7111/v1/traces export their spans here over OTLP/HTTP
// (JSON, what @opentelemetry/exporter-trace-otlp-http sends), and the last `maxTraces`
// traces are kept. No Jaeger needed to see where a sale's time went:
//   GET /api/traces?limit=20[&span=<name part>]   the latest traces (newest first), summarised
//   GET /api/traces/<traceId>                    one trace's spans
// `npm run traces` prints the latest sale's trace as a tree (traces-cli.ts); the admin web
// shows the same (web/src/pages/Traces.tsx, through the web server's /traces-api proxy).
import http from "node:http";

export const spanStorePort = 7111;

export interface StoredSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  service: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startMs: number;
  endMs: number;
  /** 2 = error. */
  status: number;
  statusMessage: string;
  attributes: Record<string, string | number | boolean>;
  links: { traceId: string; spanId: string }[];
}

export interface TraceSummary {
  traceId: string;
  root: string;
  services: string[];
  spans: number;
  startMs: number;
  durationMs: number;
  errors: number;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpAttribute {
  key: string;
  value?: OtlpValue;
}

const valueOf = (v: OtlpValue | undefined): string | number | boolean =>
  v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : undefined) ?? v?.doubleValue ?? v?.boolValue ?? "";
const attrs = (list: OtlpAttribute[] | undefined) => Object.fromEntries((list ?? []).map((a) => [a.key, valueOf(a.value)]));
const ms = (nanos: string | number | undefined) => Number(BigInt(String(nanos ?? 0)) / 1000n) / 1000;

/** The spans of an OTLP/HTTP JSON export request. */
export function spansFromOtlp(body: unknown): StoredSpan[] {
  const out: StoredSpan[] = [];
  const resourceSpans = (body as { resourceSpans?: unknown[] })?.resourceSpans ?? [];
  for (const rs of resourceSpans as { resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[]) {
    const service = String(attrs(rs.resource?.attributes)["service.name"] ?? "unknown");
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const status = (s["status"] ?? {}) as { code?: number; message?: string };
        out.push({
          traceId: String(s["traceId"] ?? ""),
          spanId: String(s["spanId"] ?? ""),
          parentSpanId: String(s["parentSpanId"] ?? ""),
          name: String(s["name"] ?? ""),
          service,
          kind: Number(s["kind"] ?? 0),
          startMs: ms(s["startTimeUnixNano"] as string),
          endMs: ms(s["endTimeUnixNano"] as string),
          status: Number(status.code ?? 0),
          statusMessage: String(status.message ?? ""),
          attributes: attrs(s["attributes"] as OtlpAttribute[]),
          links: ((s["links"] ?? []) as { traceId: string; spanId: string }[]).map((l) => ({ traceId: String(l.traceId), spanId: String(l.spanId) })),
        });
      }
    }
  }
  return out;
}

export interface SpanStore {
  readonly url: string;
  /** The OTLP/HTTP traces endpoint to give services as TRACING_OTLP_URL. */
  readonly otlpUrl: string;
  add(spans: StoredSpan[]): void;
  trace(traceId: string): StoredSpan[];
  /** Newest first; `span` keeps traces with a span whose name contains it. */
  traces(options?: { limit?: number; span?: string }): TraceSummary[];
  stop(): Promise<void>;
}

export function summarise(traceId: string, spans: StoredSpan[]): TraceSummary {
  const ids = new Set(spans.map((s) => s.spanId));
  const roots = spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId)).sort((a, b) => a.startMs - b.startMs);
  const startMs = Math.min(...spans.map((s) => s.startMs));
  const endMs = Math.max(...spans.map((s) => s.endMs));
  return {
    traceId,
    root: roots[0] ? `${roots[0].service}: ${roots[0].name}` : "",
    services: [...new Set(spans.map((s) => s.service))].sort(),
    spans: spans.length,
    startMs,
    durationMs: Math.round((endMs - startMs) * 1000) / 1000,
    errors: spans.filter((s) => s.status === 2).length,
  };
}

/** Starts the store's HTTP server on `port` (0: any free port). */
export async function startSpanStore(port = spanStorePort, host = "127.0.0.1", maxTraces = 1000): Promise<SpanStore> {
  // Insertion order is recency: a trace that gets a span again moves to the end.
  const byTrace = new Map<string, StoredSpan[]>();
  const add = (spans: StoredSpan[]) => {
    for (const s of spans) {
      const list = byTrace.get(s.traceId) ?? [];
      byTrace.delete(s.traceId);
      list.push(s);
      byTrace.set(s.traceId, list);
    }
    while (byTrace.size > maxTraces) byTrace.delete(byTrace.keys().next().value!);
  };
  const traces = (options: { limit?: number; span?: string } = {}) => {
    const out: TraceSummary[] = [];
    for (const [id, spans] of [...byTrace.entries()].reverse()) {
      if (options.span && !spans.some((s) => s.name.includes(options.span!))) continue;
      out.push(summarise(id, spans));
      if (out.length >= (options.limit ?? 20)) break;
    }
    return out;
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json", "access-control-allow-origin": "*" });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://store.invalid");
    if (req.method === "POST" && url.pathname === "/v1/traces") {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (!String(req.headers["content-type"] ?? "").includes("json")) return json(res, 415, { error: "send OTLP/HTTP JSON" });
        try {
          add(spansFromOtlp(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
          json(res, 200, {});
        } catch (err) {
          json(res, 400, { error: err instanceof Error ? err.message : String(err) });
        }
      });
      return;
    }
    if (req.method === "GET" && url.pathname === "/api/traces")
      return json(res, 200, { traces: traces({ limit: Number(url.searchParams.get("limit") ?? 20) || 20, span: url.searchParams.get("span") ?? undefined }) });
    const one = /^\/api\/traces\/([0-9a-f]{32})$/.exec(url.pathname);
    if (req.method === "GET" && one) return json(res, 200, { spans: byTrace.get(one[1]!) ?? [] });
    json(res, 404, { error: "not found" });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  const url = `http://${host}:${bound}`;
  return {
    url,
    otlpUrl: `${url}/v1/traces`,
    add,
    trace: (id) => byTrace.get(id) ?? [],
    traces,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A trace as an indented tree with each span's offset from the trace's start and its duration. */
export function formatTrace(spans: StoredSpan[]): string {
  if (spans.length === 0) return "(no spans)";
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, StoredSpan[]>();
  const roots: StoredSpan[] = [];
  for (const s of spans) {
    if (s.parentSpanId && ids.has(s.parentSpanId)) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const t0 = Math.min(...spans.map((s) => s.startMs));
  const lines: string[] = [];
  const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
  const walk = (s: StoredSpan, depth: number) => {
    const offset = `+${fmt(s.startMs - t0)}`.padStart(8);
    const duration = `${fmt(s.endMs - s.startMs)} ms`.padStart(10);
    const error = s.status === 2 ? `  ERROR ${s.statusMessage}` : "";
    lines.push(`${offset} ${duration}  ${"  ".repeat(depth)}${s.service}: ${s.name}${error}`);
    for (const c of (children.get(s.spanId) ?? []).sort((a, b) => a.startMs - b.startMs)) walk(c, depth + 1);
  };
  for (const r of roots.sort((a, b) => a.startMs - b.startMs)) walk(r, 0);
  return lines.join("\n");
}

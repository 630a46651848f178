// npm run traces [-- <trace id> | --span <name part>] — prints a trace from the span store
// npm start runs (traces.ts, :7111, or DEV_SPAN_STORE_URL) as a tree with timings: by default
// the latest sale's (the newest trace with a CreateOrder span), so the slow step of a sale
// is one command away. --list shows the latest traces.
import { formatTrace, spanStorePort, type StoredSpan, type TraceSummary } from "./traces.js";

const base = process.env["DEV_SPAN_STORE_URL"] ?? `http://127.0.0.1:${process.env["DEV_SPAN_STORE_PORT"] ?? spanStorePort}`;
const args = process.argv.slice(2);

async function get<T>(path: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`);
  } catch {
    throw new Error(`no span store at ${base}: is npm start running (with TRACING_SAMPLE_RATIO not 0)?`);
  }
  if (!res.ok) throw new Error(`${base}${path}: ${res.status}`);
  return (await res.json()) as T;
}

async function main() {
  if (args.includes("--list")) {
    const { traces } = await get<{ traces: TraceSummary[] }>("/api/traces?limit=30");
    for (const t of traces)
      console.log(`${t.traceId}  ${new Date(t.startMs).toISOString()}  ${`${t.durationMs.toFixed(1)} ms`.padStart(10)}  ${String(t.spans).padStart(4)} spans  ${t.errors ? `${t.errors} errors  ` : ""}${t.root}`);
    return;
  }
  let traceId = args.find((a) => /^[0-9a-f]{32}$/.test(a));
  if (!traceId) {
    const span = args[args.indexOf("--span") + 1] && args.includes("--span") ? args[args.indexOf("--span") + 1]! : "OrderService/CreateOrder";
    const { traces } = await get<{ traces: TraceSummary[] }>(`/api/traces?limit=1&span=${encodeURIComponent(span)}`);
    if (!traces[0]) throw new Error(`no trace with a span named like "${span}" yet (make a sale, or npm run traces -- --list)`);
    traceId = traces[0].traceId;
  }
  const { spans } = await get<{ spans: StoredSpan[] }>(`/api/traces/${traceId}`);
  const services = [...new Set(spans.map((s) => s.service))].sort().join(", ");
  console.log(`trace ${traceId}: ${spans.length} spans from ${services}\n   start   duration  span`);
  console.log(formatTrace(spans));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});

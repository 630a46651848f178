// Benchmark: the shared runtime's cost per call against bare connect-node, in one run.
// Both serve the same grpc.health.v1.Health/Check over HTTP/2 to the same client:
//   - bare: http2.createServer + connectNodeAdapter, nothing else;
//   - runtime: startService (one port for HTTP/1.1 + h2c, request ids, logs at "silent",
//     Prometheus metrics, deadline and access interceptors; tracing when TRACING_SAMPLE_RATIO
//     is set, exporting to TRACING_OTLP_URL when that is).
// Client and servers share this process, so absolute numbers understate a real server;
// the ratio is the point. Run: npm run bench:runtime
import http2 from "node:http2";
import os from "node:os";
import { createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { createLocalJWKSet } from "jose";
import { Health, HealthCheckResponse_ServingStatus } from "@adminkiosk/proto/grpc/health/v1/health_pb";
import { createLogger, createTokenVerifier, startService } from "@adminkiosk/runtime";

const calls = Number(process.env["BENCH_REQUESTS"] ?? 20_000);
const concurrency = Number(process.env["BENCH_CONCURRENCY"] ?? 32);
const rounds = 3;

async function callsPerSecond(url: string): Promise<number> {
  const client = createClient(Health, createGrpcTransport({ baseUrl: url }));
  for (let i = 0; i < 500; i++) await client.check({});
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < calls) await client.check({});
    }),
  );
  const rate = calls / ((performance.now() - t0) / 1000);
  const cpu = process.cpuUsage(cpu0);
  // CPU per call (client and server together): what a loaded machine's share of the CPU does not change.
  cpuPerCall.push((cpu.user + cpu.system) / calls);
  return rate;
}
const cpuPerCall: number[] = [];

const runtime = await startService(
  {
    name: "bench",
    log: createLogger("bench", "silent"),
    services: [],
    routes: () => {},
    verifyToken: createTokenVerifier({ keys: createLocalJWKSet({ keys: [] }), isRevoked: async () => false }),
    probes: [],
    config: {
      READ_MAX_BYTES: 1 << 20,
      MAX_TIMEOUT_MS: 60_000,
      HEALTH_PROBE_INTERVAL_MS: 2_000,
      SHUTDOWN_GRACE_MS: 100,
      // Tracing (off unless set): TRACING_SAMPLE_RATIO=1 traces every call; TRACING_OTLP_URL exports the spans too.
      TRACING_SAMPLE_RATIO: Number(process.env["TRACING_SAMPLE_RATIO"] ?? 0),
      TRACING_OTLP_URL: process.env["TRACING_OTLP_URL"] || undefined,
    },
  },
  "127.0.0.1",
  0,
);
const bare = http2.createServer(
  connectNodeAdapter({
    routes: (r) =>
      r.service(Health, {
        check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }),
        async *watch() {},
        list: () => ({}),
      }),
  }),
);
await new Promise<void>((resolve) => bare.listen(0, "127.0.0.1", () => resolve()));
const address = bare.address();
const bareUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;

const results = { bare: [] as number[], runtime: [] as number[] };
// Alternate the two so drift in machine load hits both alike.
for (let i = 0; i < rounds; i++) {
  results.bare.push(await callsPerSecond(bareUrl));
  results.runtime.push(await callsPerSecond(runtime.url));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
console.log(`\n${new Date().toISOString().slice(0, 10)} · ${os.cpus().length} × ${os.cpus()[0]?.model} · Node ${process.version}`);
console.log(`${calls} calls × ${rounds} rounds, concurrency ${concurrency}, one HTTP/2 connection, median of rounds\n`);
console.log("| server | calls/s (median) | rounds |\n|---|---|---|");
console.log(`| bare connect-node (baseline) | ${median(results.bare).toFixed(0)} | ${results.bare.map((x) => x.toFixed(0)).join(", ")} |`);
console.log(`| Admin Kiosk runtime | ${median(results.runtime).toFixed(0)} | ${results.runtime.map((x) => x.toFixed(0)).join(", ")} |`);
console.log(`\nruntime / bare: ${(median(results.runtime) / median(results.bare)).toFixed(2)}`);
// Rounds alternate bare, runtime: even entries are bare's.
const cpuBare = cpuPerCall.filter((_, i) => i % 2 === 0);
const cpuRuntime = cpuPerCall.filter((_, i) => i % 2 === 1);
console.log(`CPU per call (µs, median; client + server): bare ${median(cpuBare).toFixed(0)}, runtime ${median(cpuRuntime).toFixed(0)}`);
await runtime.close();
bare.close();
process.exit(0);

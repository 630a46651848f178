// Benchmark: what the shared runtime and auth cost per call, each beside a baseline
// measured in the same run on the same server.
//   1. WhoAmI (access-token check: EdDSA verify, ended-session check in Redis, one PostgreSQL read) vs Health/Check
//      (the same server, interceptors and HTTP/2 connection, no token, no database).
//   2. Login (scrypt + token signing + two writes) vs bare scrypt hashing in this process.
// Run: npm run bench:auth   (results: bench/RESULTS.md)
import os from "node:os";
import { scrypt } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { Health } from "@adminkiosk/proto/grpc/health/v1/health_pb";
import { benchAdmin, withStack } from "./stack.js";

const concurrency = Number(process.env["BENCH_CONCURRENCY"] ?? 32);
const requests = Number(process.env["BENCH_REQUESTS"] ?? 5000);
const logins = Number(process.env["BENCH_LOGINS"] ?? 100);

interface Result {
  name: string;
  count: number;
  seconds: number;
  p50: number;
  p99: number;
}

async function measure(name: string, count: number, parallel: number, call: () => Promise<unknown>): Promise<Result> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next++;
        const s = performance.now();
        await call();
        latencies.push(performance.now() - s);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { name, count, seconds, p50: at(0.5), p99: at(0.99) };
}

const row = (r: Result) =>
  `| ${r.name} | ${r.count} | ${(r.count / r.seconds).toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`;

await withStack({}, async ({ auth }) => {
    const transport = createGrpcTransport({ baseUrl: auth.url });
    const anonymous = createClient(AuthService, transport);
    const { tokens } = await anonymous.login(benchAdmin);
    const headers = { authorization: `Bearer ${tokens!.accessToken}` };
    const health = createClient(Health, transport);
    const authed = createClient(AuthService, transport);
    // Warm up both paths.
    await measure("warm-up", 500, concurrency, () => health.check({}));
    await measure("warm-up", 500, concurrency, () => authed.whoAmI({}, { headers }));

    const results = [
      await measure("Health/Check (baseline: runtime only)", requests, concurrency, () => health.check({})),
      await measure("AuthService/WhoAmI (token check + DB read)", requests, concurrency, () => authed.whoAmI({}, { headers })),
      await measure("scrypt N=2^15 in-process (baseline)", logins, 2, () =>
        new Promise((resolve, reject) => scrypt("pw", "salt-salt-salt", 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (e, k) => (e ? reject(e) : resolve(k)))),
      ),
      await measure("AuthService/Login (scrypt + sign + writes)", logins, 2, () => anonymous.login(benchAdmin)),
    ];
    const cpu = os.cpus()[0]?.model ?? "unknown CPU";
    console.log(`\n${new Date().toISOString().slice(0, 10)} · ${os.cpus().length} × ${cpu} · Node ${process.version} · concurrency ${concurrency} (logins: 2)\n`);
    console.log("| scenario | calls | calls/s | p50 ms | p99 ms |\n|---|---|---|---|---|");
    for (const r of results) console.log(row(r));
});

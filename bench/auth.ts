// Benchmark: what the shared runtime and auth cost per call, each beside a baseline
// measured in the same run on the same server.
//   1. WhoAmI (access-token check: EdDSA verify + one PostgreSQL lookup) vs Health/Check
//      (the same server, interceptors and HTTP/2 connection, no token, no database).
//   2. Login (scrypt + token signing + two writes) vs bare scrypt hashing in this process.
// Run: npm run bench:auth   (results: bench/RESULTS.md)
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { scrypt } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { Health } from "@adminkiosk/proto/grpc/health/v1/health_pb";
import { freePort, repoRoot, startNats, startPostgres, startRedis, startServiceProcess, testKeyEncryptionKey } from "@adminkiosk/devstack";
import { spawnSync } from "node:child_process";

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

async function main() {
  const dir = mkdtempSync(join(os.tmpdir(), "adminkiosk-bench-"));
  const stops: (() => Promise<void>)[] = [];
  try {
    await run(dir, stops);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

async function run(dir: string, stops: (() => Promise<void>)[]) {
  const pg = await startPostgres(join(dir, "pg"), await freePort());
  stops.push(() => pg.stop());
  const redis = await startRedis(join(dir, "redis"), await freePort());
  stops.push(() => redis.stop());
  const nats = await startNats(join(dir, "nats"), await freePort());
  stops.push(() => nats.stop());
  const email = "bench@adminkiosk.local";
  const password = "bench-password-123";
  const seeded = spawnSync(process.execPath, ["--import", "tsx", join(repoRoot, "services/auth/src/bootstrap-admin.ts")], {
    env: { ...process.env, DATABASE_URL: pg.url, ADMIN_EMAIL: email, ADMIN_PASSWORD: password },
    encoding: "utf8",
  });
  if (seeded.status !== 0) throw new Error(seeded.stderr);
  const port = await freePort();
  const auth = await startServiceProcess(
    repoRoot,
    "auth",
    port,
    {
      DATABASE_URL: pg.url,
      REDIS_URL: redis.url,
      NATS_URL: nats.url,
      AUTH_KEY_ENCRYPTION_KEY: testKeyEncryptionKey(),
      AUTH_PORT: String(port),
      LOG_LEVEL: "warn",
      LOGIN_RATE_PER_IP: "100000",
    },
    () => {},
  );
  stops.push(() => auth.stop());
  {
    const transport = createGrpcTransport({ baseUrl: auth.url });
    const anonymous = createClient(AuthService, transport);
    const { tokens } = await anonymous.login({ email, password });
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
      await measure("AuthService/Login (scrypt + sign + writes)", logins, 2, () => anonymous.login({ email, password })),
    ];
    const cpu = os.cpus()[0]?.model ?? "unknown CPU";
    console.log(`\n${new Date().toISOString().slice(0, 10)} · ${os.cpus().length} × ${cpu} · Node ${process.version} · concurrency ${concurrency} (logins: 2)\n`);
    console.log("| scenario | calls | calls/s | p50 ms | p99 ms |\n|---|---|---|---|---|");
    for (const r of results) console.log(row(r));
  }
}

await main();

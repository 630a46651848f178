// What the benchmarks stand on: PostgreSQL, Redis, NATS and a seeded auth process in a
// temporary directory, torn down by `withStack` however the benchmark ends.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import {
  freePort,
  repoRoot,
  seedFirstAdmin,
  startNats,
  startPostgres,
  startRedis,
  startServiceProcess,
  testKeyEncryptionKey,
  type ServiceProcess,
} from "@adminkiosk/devstack";

export const benchAdmin = { email: "bench@adminkiosk.local", password: "bench-password-123" };

/**
 * BENCH_CPU_PROF=orders,payments,catalog (or "all") runs those processes under `node --cpu-prof`:
 * each writes its threads' CPU.*.cpuprofile into BENCH_CPU_PROF_DIR/<name> (default
 * <tmp>/adminkiosk-cpuprof) when the stack stops it; the main thread's is the largest. Open
 * them in Chrome DevTools, or summarise them with bench/cpuprof.ts.
 */
export function profileArgs(name: string): string[] {
  const wanted = (process.env["BENCH_CPU_PROF"] ?? "").split(",").map((s) => s.trim());
  if (!wanted.includes(name) && !wanted.includes("all")) return [];
  const dir = process.env["BENCH_CPU_PROF_DIR"] ?? join(os.tmpdir(), "adminkiosk-cpuprof");
  // One folder per process: node writes a profile per thread (tsx's loader runs in one of its own).
  return ["--cpu-prof", "--cpu-prof-dir", join(dir, name)];
}

export interface BenchStack {
  /** The cluster's database; each service keeps its tables in its own schema. */
  databaseUrl: string;
  /** The key auth seals its signing keys with (bench/mint-devices.ts needs it). */
  keyEncryptionKey: string;
  redisUrl: string;
  natsUrl: string;
  auth: ServiceProcess;
  /** AUTH_URL and SERVICE_SECRET for a service that calls others as itself (orders). */
  serviceEnv(service: string): { AUTH_URL: string; SERVICE_SECRET: string };
  /** Starts another service as a process (on `port`, or a free one); it is stopped with the stack. */
  start(name: string, env: Record<string, string>, port?: number): Promise<ServiceProcess>;
  /** Runs `stop` when the stack comes down (before the servers it needs). */
  onStop(stop: () => Promise<void>): void;
}

export async function withStack(authEnv: Record<string, string>, bench: (stack: BenchStack) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), "adminkiosk-bench-"));
  const stops: (() => Promise<void>)[] = [];
  const start = async (name: string, env: Record<string, string>, fixedPort?: number) => {
    const port = fixedPort ?? (await freePort());
    const proc = await startServiceProcess(repoRoot, name, port, { LOG_LEVEL: "warn", ...env, [`${name.toUpperCase()}_PORT`]: String(port) }, (line) => {
      // BENCH_SERVICE_LOGS=1 shows what the services log (warnings and errors by default).
      if (process.env["BENCH_SERVICE_LOGS"]) console.error(`[${name}] ${line}`);
    }, { nodeArgs: profileArgs(name) });
    stops.push(() => proc.stop());
    return proc;
  };
  // Ctrl-C or a timeout's SIGTERM still tears everything down (services run detached).
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    void (async () => {
      for (const stop of stops.reverse()) await stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    })();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const pg = await startPostgres(join(dir, "pg"), await freePort());
    stops.push(() => pg.stop());
    const redis = await startRedis(join(dir, "redis"), await freePort());
    stops.push(() => redis.stop());
    const nats = await startNats(join(dir, "nats"), await freePort());
    stops.push(() => nats.stop());
    seedFirstAdmin(repoRoot, pg.url, benchAdmin.email, benchAdmin.password);
    const keyEncryptionKey = testKeyEncryptionKey();
    const ordersSecret = randomBytes(32).toString("base64url");
    const auth = await start("auth", {
      SERVICE_SECRETS: `orders=${ordersSecret}`,
      DATABASE_URL: pg.url,
      REDIS_URL: redis.url,
      NATS_URL: nats.url,
      AUTH_KEY_ENCRYPTION_KEY: keyEncryptionKey,
      LOGIN_RATE_PER_IP: "100000",
      ...authEnv,
    });
    const serviceEnv = (service: string) => {
      if (service !== "orders") throw new Error(`the bench stack has no secret for ${service}`);
      return { AUTH_URL: auth.url, SERVICE_SECRET: ordersSecret };
    };
    await bench({ databaseUrl: pg.url, keyEncryptionKey, redisUrl: redis.url, natsUrl: nats.url, auth, serviceEnv, start, onStop: (stop) => void stops.push(stop) });
  } finally {
    if (!interrupted) {
      for (const stop of stops.reverse()) await stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

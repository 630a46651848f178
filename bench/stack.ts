// What the benchmarks stand on: PostgreSQL, Redis, NATS and a seeded auth process in a
// temporary directory, torn down by `withStack` however the benchmark ends.
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

export interface BenchStack {
  /** PostgreSQL (each service uses its own schema in it). */
  databaseUrl: string;
  redisUrl: string;
  natsUrl: string;
  auth: ServiceProcess;
  /** Starts another service as a process; it is stopped with the stack. */
  start(name: string, env: Record<string, string>): Promise<ServiceProcess>;
  /** Runs `stop` when the stack comes down (before the servers it needs). */
  onStop(stop: () => Promise<void>): void;
}

export async function withStack(authEnv: Record<string, string>, bench: (stack: BenchStack) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), "adminkiosk-bench-"));
  const stops: (() => Promise<void>)[] = [];
  const start = async (name: string, env: Record<string, string>) => {
    const port = await freePort();
    const proc = await startServiceProcess(repoRoot, name, port, { LOG_LEVEL: "warn", ...env, [`${name.toUpperCase()}_PORT`]: String(port) }, () => {});
    stops.push(() => proc.stop());
    return proc;
  };
  try {
    const pg = await startPostgres(join(dir, "pg"), await freePort());
    stops.push(() => pg.stop());
    const redis = await startRedis(join(dir, "redis"), await freePort());
    stops.push(() => redis.stop());
    const nats = await startNats(join(dir, "nats"), await freePort());
    stops.push(() => nats.stop());
    seedFirstAdmin(repoRoot, pg.url, benchAdmin.email, benchAdmin.password);
    const auth = await start("auth", {
      DATABASE_URL: pg.url,
      REDIS_URL: redis.url,
      NATS_URL: nats.url,
      AUTH_KEY_ENCRYPTION_KEY: testKeyEncryptionKey(),
      LOGIN_RATE_PER_IP: "100000",
      ...authEnv,
    });
    await bench({ databaseUrl: pg.url, redisUrl: redis.url, natsUrl: nats.url, auth, start, onStop: (stop) => void stops.push(stop) });
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

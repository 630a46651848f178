// Starts one real PostgreSQL, NATS (JetStream) and Redis for the whole test run.
// Test files create their own databases / Redis DB numbers from these.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {} from "vitest";
import type { TestProject } from "vitest/node";
import { freePort, startNats, startPostgres, startRedis } from "@adminkiosk/devstack";

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), "adminkiosk-test-"));
  const [pgPort, natsPort, redisPort] = [await freePort(), await freePort(), await freePort()];
  const [pg, nats, redis] = await Promise.all([
    startPostgres(join(dir, "postgres"), pgPort),
    startNats(join(dir, "nats"), natsPort),
    // Many logical DBs, so every service a test starts gets its own (see isolatedRedisUrl).
    startRedis(join(dir, "redis"), redisPort, () => {}, ["--databases", "4096", "--save", ""]),
  ]);
  project.provide("infra", { databaseUrl: pg.url, natsUrl: nats.url, redisUrl: redis.url, tmpDir: dir });
  return async () => {
    await Promise.allSettled([pg.stop(), nats.stop(), redis.stop()]);
    rmSync(dir, { recursive: true, force: true });
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    infra: { databaseUrl: string; natsUrl: string; redisUrl: string; tmpDir: string };
  }
}

// Helpers for tests: a database per test file, a Redis DB number per file, and
// services started as real processes with test settings.
import { randomBytes } from "node:crypto";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { freePort } from "./infra.js";
import { startServiceProcess, type ServiceProcess } from "./services.js";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Creates a fresh database on the test cluster and returns its URL. */
export async function createDatabase(adminUrl: string, prefix: string): Promise<string> {
  const name = `${prefix}_${randomBytes(4).toString("hex")}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

let nextRedisDb = 1 + (process.pid % 8) * 2;
/** A Redis URL on its own logical DB, so files do not share keys (16 DBs by default). */
export function isolatedRedisUrl(redisUrl: string): string {
  const url = new URL(redisUrl);
  url.pathname = `/${nextRedisDb++ % 16}`;
  return url.toString();
}

export interface StartedService extends ServiceProcess {
  port: number;
  /** Everything the process printed (for "no secret is logged" checks). */
  output: string[];
}

export async function startTestService(name: string, env: Record<string, string>): Promise<StartedService> {
  const port = await freePort();
  const output: string[] = [];
  const portVar = `${name.toUpperCase()}_PORT`;
  const proc = await startServiceProcess(repoRoot, name, port, { LOG_LEVEL: "info", ...env, [portVar]: String(port) }, (line) => {
    output.push(line);
    if (process.env["TEST_SERVICE_LOGS"]) console.log(`[${name}] ${line}`);
  });
  return Object.assign(proc, { port, output });
}

export const testKeyEncryptionKey = () => randomBytes(32).toString("base64");

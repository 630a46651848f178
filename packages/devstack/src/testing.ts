// Helpers for tests: a database per test file, a Redis DB number per file, and
// services started as real processes with test settings.
import { randomBytes } from "node:crypto";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import pg from "pg";
import { freePort } from "./infra.js";
import { startProgramProcess, startServiceProcess, type ServiceProcess } from "./services.js";

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

/**
 * A Redis URL on a logical DB no other test uses (numbers handed out by a counter in
 * DB 0; the test Redis runs with 4096 DBs).
 */
export async function isolatedRedisUrl(redisUrl: string): Promise<string> {
  const redis = new Redis(redisUrl, { lazyConnect: true });
  try {
    await redis.connect();
    const n = await redis.incr("test:next-db");
    if (n >= 4096) throw new Error("out of Redis test databases");
    const url = new URL(redisUrl);
    url.pathname = `/${n}`;
    return url.toString();
  } finally {
    redis.disconnect();
  }
}

export interface StartedService extends ServiceProcess {
  port: number;
  /** Everything the process printed (for "no secret is logged" checks). */
  output: string[];
}

/** A service as a process, resolved once it has logged "listening" (so LOG_LEVEL must stay at info or below). */
export async function startTestService(name: string, env: Record<string, string>): Promise<StartedService> {
  const port = await freePort();
  const output: string[] = [];
  const portVar = `${name.toUpperCase()}_PORT`;
  const proc = await startServiceProcess(repoRoot, name, port, { LOG_LEVEL: "info", ...env, [portVar]: String(port) }, (line) => {
    output.push(line);
    if (process.env["TEST_SERVICE_LOGS"]) console.log(`[${name}] ${line}`);
  });
  // The port opens before the service has finished starting: it logs "listening" after its
  // first health probe, and only then installs its SIGTERM handler. A test that signals it
  // earlier (a slow machine widens that gap) would kill it instead of shutting it down.
  let exited = false;
  void proc.exited.then(() => (exited = true));
  await waitFor(`${name} to log "listening"`, () => {
    if (exited) throw new Error(`${name} exited while starting`);
    return output.some((line) => line.includes('"msg":"listening"')) || undefined;
  }, { timeout: 60_000, interval: 20 });
  return Object.assign(proc, { port, output });
}

/**
 * A program that is not a service (payments' provider simulator) as a real process:
 * `entry` relative to the repository, listening on `port` (given to it in `portVar`).
 */
export async function startTestProgram(name: string, entry: string, portVar: string, env: Record<string, string>, port?: number): Promise<StartedService> {
  const chosen = port ?? (await freePort());
  const output: string[] = [];
  const file = resolve(repoRoot, entry);
  const proc = await startProgramProcess(name, file, dirname(file), chosen, { LOG_LEVEL: "info", ...env, [portVar]: String(chosen) }, (line) => {
    output.push(line);
    if (process.env["TEST_SERVICE_LOGS"]) console.log(`[${name}] ${line}`);
  });
  return Object.assign(proc, { port: chosen, output });
}

export const testKeyEncryptionKey = () => randomBytes(32).toString("base64");

/**
 * How long a test waits for something that must happen: `expect.poll(fn, eventually)`,
 * `waitFor` below, the fixtures' own waits. Generous on purpose: on a slow machine a wait
 * that passes only takes longer; only a test that fails anyway waits the whole deadline.
 * Use it instead of a fixed sleep or a deadline of a few seconds.
 */
export const eventually = { timeout: 20_000, interval: 100 } as const;

/**
 * Calls `attempt` until it returns something other than undefined and returns that, every
 * `interval` ms for up to `timeout` ms (those of `eventually` unless given). An error from
 * `attempt` ends the wait at once unless `retry(err)` says it is worth another try. Past the
 * deadline it throws, naming `what` (with the last error as the cause).
 */
export async function waitFor<T>(
  what: string,
  attempt: () => Promise<T | undefined> | T | undefined,
  options: { timeout?: number; interval?: number; retry?: (err: unknown) => boolean } = {},
): Promise<T> {
  const { timeout = eventually.timeout, interval = eventually.interval, retry = () => false } = options;
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await attempt();
      if (value !== undefined) return value;
    } catch (err) {
      if (!retry(err)) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${timeout} ms`, lastError === undefined ? undefined : { cause: lastError });
    await new Promise((r) => setTimeout(r, interval));
  }
}

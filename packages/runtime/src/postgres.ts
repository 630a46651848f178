// PostgreSQL: one pool per service, its own schema, migrations by node-pg-migrate.
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { Gauge } from "prom-client";
import { runner } from "node-pg-migrate";
import type { Logger } from "./logger.js";
import { prepareRepeatedStatements } from "./prepared.js";
import { traceClientQueries } from "./tracing.js";

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/** The process's pools, for the pool gauge (read at scrape time). */
const pools = new Map<pg.Pool, string>();

/**
 * Each pool's clients by state (total, idle, waiting: callers queued for a client), read when
 * Prometheus scrapes. A service's server registers it (server.ts).
 */
export const poolGauge = new Gauge({
  name: "adminkiosk_pg_pool_clients",
  help: "PostgreSQL pool clients by pool (schema) and state: total (open), idle, waiting (callers queued for a client).",
  labelNames: ["pool", "state"],
  registers: [],
  collect() {
    this.reset();
    for (const [pool, name] of pools) {
      this.set({ pool: name, state: "total" }, pool.totalCount);
      this.set({ pool: name, state: "idle" }, pool.idleCount);
      this.set({ pool: name, state: "waiting" }, pool.waitingCount);
    }
  },
});

export function createPool(databaseUrl: string, schema: string, log: Logger, max = 10): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    // Every session sees its own schema first; no query names another service's tables.
    // Prepared statements (prepared.ts) keep their parse but are planned for each call's
    // values: with the generic plan PostgreSQL settles on after five runs, a 10k broadcast's
    // acks and results were applied seconds per batch (SUCCEEDED after 36 s, not 2 s).
    options: `-c search_path=${schema},public -c statement_timeout=30000 -c plan_cache_mode=force_custom_plan`,
    application_name: schema,
  });
  // An idle client losing its connection (PostgreSQL restarted) must not crash the process.
  pool.on("error", (err) => log.warn({ err: err.message }, "postgres connection lost"));
  // Nor one that is checked out: pg emits 'error' on it too (a statement in flight also
  // fails), and the pool listens only to idle clients. Released, a broken client is dropped.
  pool.on("connect", (client) => client.on("error", (err) => log.warn({ err: err.message }, "postgres connection lost (client in use)")));
  // A FATAL from the server (pg_terminate_backend, shutdown) answers the statement in flight,
  // but the client learns its socket closed only later; released in between, the pool would
  // hand the dead client to the next caller. Ending it at the FATAL makes release drop it.
  pool.on("connect", (client) => {
    const connection = (client as unknown as { connection: { on(event: "errorMessage", listener: (msg: { severity?: string }) => void): void } }).connection;
    connection.on("errorMessage", (msg) => {
      if (msg.severity === "FATAL" || msg.severity === "PANIC") void client.end().catch(() => {});
    });
  });
  // Statements made inside a span become its child spans (tracing.ts; nothing when tracing is off).
  pool.on("connect", (client) => traceClientQueries(client as never));
  // Repeated statements are parsed and planned once per connection (prepared.ts).
  pool.on("connect", (client) => prepareRepeatedStatements(client));
  pools.set(pool, schema);
  const end = pool.end.bind(pool);
  pool.end = ((...args: unknown[]) => {
    pools.delete(pool);
    return (end as (...a: unknown[]) => unknown)(...args);
  }) as typeof pool.end;
  return pool;
}

/** Migrations the runtime brings, which a service adds to its own with `migrate`'s options. */
const runtimeMigrations = {
  /** The `idempotency_keys` table of idempotency.ts. */
  idempotencyKeys: fileURLToPath(new URL("../migrations/idempotency", import.meta.url)),
  /** The `consumer_inbox` and `dead_letters` tables of consumer.ts. */
  consumerTables: fileURLToPath(new URL("../migrations/consumer", import.meta.url)),
};

export interface MigrateOptions {
  /** Also create the service's `idempotency_keys` table (runtime idempotency.ts). */
  idempotencyKeys?: boolean;
  /** Also create the `consumer_inbox` and `dead_letters` tables of a service running durable consumers (runtime consumer.ts). */
  consumerTables?: boolean;
}

/** Applies the service's pending migrations (an advisory lock serialises replicas). */
export async function migrate(databaseUrl: string, schema: string, dir: string, log: Logger, options: MigrateOptions = {}): Promise<void> {
  const dirs = [dir, ...(options.idempotencyKeys ? [runtimeMigrations.idempotencyKeys] : []), ...(options.consumerTables ? [runtimeMigrations.consumerTables] : [])];
  const applied = await runner({
    databaseUrl,
    // Globs, so the runtime's migrations sort in among the service's by their timestamps.
    dir: dirs.map((d) => `${d}/*.sql`),
    useGlob: true,
    direction: "up",
    schema,
    createSchema: true,
    migrationsSchema: schema,
    createMigrationsSchema: true,
    migrationsTable: "migrations",
    // One lock per service, so services migrate in parallel but replicas of one do not.
    lockValue: createHash("sha256").update(schema).digest().readInt32BE(0),
    checkOrder: true,
    log: () => {},
    logger: { debug: () => {}, info: () => {}, warn: (m: string) => log.warn(m), error: (m: string) => log.error(m) },
  });
  if (applied.length > 0) log.info({ schema, migrations: applied.map((m) => m.name) }, "migrations applied");
}

/** Runs `work` in a transaction: committed when it resolves, rolled back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

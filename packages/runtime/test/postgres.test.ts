// The service pool survives PostgreSQL dropping a connection that is checked out (a
// restart, a failover, an administrator's pg_terminate_backend): pg emits 'error' on
// such a client, and without a listener that is an uncaught exception that ends the
// whole process (the chaos run saw fleet exit this way when PostgreSQL restarted while
// it held a client between two statements).
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, waitFor } from "@adminkiosk/devstack";
import { createLogger, createPool } from "../src/index.js";

let url: string;
let pool: pg.Pool;

beforeAll(async () => {
  url = await createDatabase(inject("infra").databaseUrl, "runtime_pg");
  pool = createPool(url, "public", createLogger("test", "silent"), 2);
});
afterAll(async () => {
  await pool?.end();
});

describe("createPool", () => {
  it("a checked-out client whose connection is terminated does not crash the process; the pool serves on", async () => {
    const client = await pool.connect();
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      // Terminated between two statements: the client is idle but checked out.
      await admin.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
    } finally {
      await admin.end();
    }
    // The client notices (the next statement fails), and is given back broken.
    await expect(waitFor("the terminated client to fail", () => client.query("SELECT 1").then(() => undefined, () => true))).resolves.toBe(true);
    client.release();
    expect((await pool.query<{ one: number }>("SELECT 1 AS one")).rows[0]?.one).toBe(1);
  });

  it("a client whose statement the server cut off is not handed to the next caller", async () => {
    const client = await pool.connect();
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    // Given back the moment its statement fails, before its socket's close is read, and the
    // next caller asks at once.
    const next = client.query("SELECT pg_sleep(30)").then(
      () => {
        throw new Error("the sleep was not cut off");
      },
      (err: Error) => {
        client.release();
        return { cutOff: err.message, next: pool.query<{ one: number }>("SELECT 1 AS one").then((r) => r.rows[0]?.one, (e: Error) => e.message) };
      },
    );
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await waitFor("the sleep to run", async () => ((await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%'", [rows[0]!.pid])).rowCount ? true : undefined));
      await admin.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
    } finally {
      await admin.end();
    }
    const { cutOff, next: answer } = await next;
    expect(cutOff).toMatch(/terminating connection/);
    expect(await answer).toBe(1);
  });
});

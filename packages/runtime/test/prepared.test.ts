// A service pool runs the statements it repeats as prepared statements (prepared.ts): parsed
// and planned once per connection. A migration that changes a table under one (another
// replica's deploy) costs no call outside a transaction, and at most the transaction under way.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase } from "@adminkiosk/devstack";
import { createLogger, createPool } from "../src/index.js";

let url: string;
let pool: pg.Pool;

beforeAll(async () => {
  url = await createDatabase(inject("infra").databaseUrl, "runtime_prepared");
  // One connection, so every call below runs on the same session.
  pool = createPool(url, "public", createLogger("test", "silent"), 1);
  await pool.query("CREATE TABLE items (id int PRIMARY KEY, name text)");
  await pool.query("INSERT INTO items VALUES (1, 'coffee'), (2, 'tea')");
});
afterAll(async () => {
  await pool?.end();
});

const prepared = async () => (await pool.query<{ statement: string }>("SELECT statement FROM pg_prepared_statements")).rows.map((r) => r.statement);

describe("prepared statements", () => {
  it("a statement with parameters repeated on a pool is prepared once and answers as before", async () => {
    const text = "SELECT name FROM items WHERE id = $1";
    const names: string[] = [];
    for (const id of [1, 2, 1, 2, 1]) names.push((await pool.query<{ name: string }>(text, [id])).rows[0]!.name);
    expect(names).toEqual(["coffee", "tea", "coffee", "tea", "coffee"]);
    expect((await prepared()).filter((s) => s === text)).toHaveLength(1);
    // A text with its values written in stays unnamed, however often it runs.
    for (let i = 0; i < 5; i++) await pool.query("SELECT name FROM items WHERE id = 1");
    expect(await prepared()).not.toContain("SELECT name FROM items WHERE id = 1");
  });

  it("a table changed under a prepared SELECT * answers with the new columns; only a transaction already under way fails", async () => {
    const text = "SELECT * FROM items WHERE id = $1";
    for (let i = 0; i < 4; i++) await pool.query(text, [1]);
    expect(await prepared()).toContain(text);
    await pool.query("ALTER TABLE items ADD COLUMN price int NOT NULL DEFAULT 250");
    expect((await pool.query(text, [1])).rows[0]).toEqual({ id: 1, name: "coffee", price: 250 });
    expect((await pool.query(text, [2])).rows[0]).toEqual({ id: 2, name: "tea", price: 250 });

    // Inside a transaction the refusal has aborted it: the caller gets the refusal itself.
    await pool.query("ALTER TABLE items ADD COLUMN size text NOT NULL DEFAULT 'M'");
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await expect(client.query(text, [1])).rejects.toThrow(/cached plan must not change result type/);
      await client.query("ROLLBACK");
      expect((await client.query(text, [1])).rows[0]).toEqual({ id: 1, name: "coffee", price: 250, size: "M" });
    } finally {
      client.release();
    }
  });
});

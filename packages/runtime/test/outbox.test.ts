// The outbox's wake-up: a commit notifies its own schema's channel ("outbox.<schema>"), so
// services sharing one database wake only their own relay, and a relay publishes an event
// as soon as it commits — not at its next poll.
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, waitFor } from "@adminkiosk/devstack";
import { closeNats, connectNats, createLogger, createPool, enqueueEvent, inTransaction, startOutboxRelay, type NatsConnection, type OutboxRelay } from "../src/index.js";

const log = createLogger("test", "silent");
let url: string;
const pools: pg.Pool[] = [];
const relays: OutboxRelay[] = [];
let nats: Promise<NatsConnection>;

async function schemaWithOutbox(schema: string) {
  const pool = createPool(url, schema, log, 3);
  pools.push(pool);
  await pool.query(`CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), seq bigserial, subject text NOT NULL, payload bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz)`);
  return pool;
}

const event = (pool: pg.Pool, subject: string, text: string) =>
  inTransaction(pool, (tx) => enqueueEvent(tx, subject, StringValueSchema, create(StringValueSchema, { value: text })));

beforeAll(async () => {
  url = await createDatabase(inject("infra").databaseUrl, "runtime_outbox");
  nats = connectNats(inject("infra").natsUrl, "outbox-test", log);
});
afterAll(async () => {
  await Promise.all(relays.map((r) => r.stop()));
  await Promise.all(pools.map((p) => p.end()));
  await closeNats(nats);
});

describe("outbox wake-up", () => {
  it("a commit notifies its own schema's channel only", async () => {
    const a = await schemaWithOutbox("notify_a");
    const b = await schemaWithOutbox("notify_b");
    const listener = new pg.Client({ connectionString: url });
    await listener.connect();
    const heard: string[] = [];
    listener.on("notification", (n) => heard.push(n.channel));
    await listener.query(`LISTEN "outbox.notify_a"; LISTEN "outbox.notify_b"; LISTEN outbox`);
    try {
      await event(a, "t.a", "one");
      await event(b, "t.b", "two");
      // A session receives notifications in commit order: once b's is in, a's commit notified all it did.
      await waitFor("b's notification", () => (heard.includes("outbox.notify_b") ? true : undefined));
      expect(heard).toEqual(["outbox.notify_a", "outbox.notify_b"]);
    } finally {
      await listener.end();
    }
  });

  it("a relay publishes an event when it commits, not at its next poll", async () => {
    const pool = await schemaWithOutbox("relay_a");
    const name = `OUTBOX_TEST_${randomBytes(4).toString("hex").toUpperCase()}`;
    const subject = `${name.toLowerCase()}.event`;
    const nc = await nats;
    const got: string[] = [];
    const sub = nc.subscribe(subject, {
      callback: (_err, m) => {
        got.push(m.subject);
      },
    });
    await nc.flush();
    // Polls every 10 minutes: only the NOTIFY can make it publish within the test.
    relays.push(startOutboxRelay({ pool, nats, log, stream: { name, subjects: [`${name.toLowerCase()}.>`] }, pollMs: 600_000 }));
    await waitFor("the relay to listen", async () => {
      const { rows } = await pool.query("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'LISTEN \"outbox.relay_a\"%' AND state = 'idle'");
      return rows.length > 0 ? true : undefined;
    });
    await event(pool, subject, "sold");
    await waitFor("the event on NATS", () => (got.length > 0 ? true : undefined));
    expect(got).toEqual([subject]);
    await waitFor("the row marked published", async () => ((await pool.query("SELECT 1 FROM outbox WHERE published_at IS NULL")).rowCount === 0 ? true : undefined));
    sub.unsubscribe();
  });

  it("a relay listens on one client, and gives it back when stopped mid set-up", async () => {
    const pool = await schemaWithOutbox("relay_b");
    const name = `OUTBOX_TEST_${randomBytes(4).toString("hex").toUpperCase()}`;
    const stream = { name, subjects: [`${name.toLowerCase()}.>`] };
    const checkedOut = () => pool.totalCount - pool.idleCount;
    // Stopped while its listener is still connecting: nothing stays checked out, so a
    // service's pool.end() after it returns (a leaked client made it wait until killed).
    const early = startOutboxRelay({ pool, nats, log, stream, pollMs: 600_000 });
    await early.stop();
    expect(checkedOut()).toBe(0);
    // A poll every few milliseconds while the listener is set up does not open another one.
    const busy = startOutboxRelay({ pool, nats, log, stream, pollMs: 2 });
    const listening = async () =>
      (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN \"outbox.relay_b\"%'")).rows[0]!.n;
    await waitFor("the relay to listen", async () => ((await listening()) > 0 ? true : undefined));
    expect(await listening()).toBe(1);
    await busy.stop();
    expect(checkedOut()).toBe(0);
    await waitFor("the listening session to end", async () => ((await listening()) === 0 ? true : undefined));
  });
});

// The transactional outbox: an event that must follow a database change is written
// to the service's own `outbox` table in the same transaction, and a relay publishes
// it to JetStream afterwards with the row id as Nats-Msg-Id (JetStream drops
// duplicates within the stream's window; consumers dedupe by that id too). Nothing
// is lost between a commit and a publish, and NATS being down only delays events.
//
// Each service's migrations create the table:
//   CREATE TABLE outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), seq bigserial,
//     subject text NOT NULL, payload bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
//     published_at timestamptz);
//   CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
// and, for tracing (issue 19), `ALTER TABLE outbox ADD COLUMN traceparent text`: the W3C
// traceparent of the transaction that wrote the row, written and read only when tracing is on.
import { toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { Logger } from "./logger.js";
import { ensureStream, type NatsConnection } from "./nats.js";
import type { Pool, PoolClient } from "./postgres.js";
import { contextFromTraceparent, currentTraceparent, inSpan, SpanKind, tracingEnabled } from "./tracing.js";

/** The outbox's ids as PostgreSQL prints a uuid. */
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * PostgreSQL delivers a NOTIFY at commit, never for a rolled-back transaction. One channel per
 * schema ("outbox.<schema>", the writer's current_schema()): the services may share a
 * database, and a channel of their own wakes only their own relay (one shared channel woke
 * every service's relay for every event anywhere: 4 empty passes per sale in bench:orders).
 */
const notify = `pg_notify('outbox.' || current_schema(), '')`;

/** Adds an event to the outbox inside the caller's transaction; relays wake when it commits. */
export async function enqueueEvent<D extends DescMessage>(tx: PoolClient, subject: string, schema: D, message: MessageShape<D>) {
  // The transaction's trace goes with the row (column traceparent), so the relay's publish
  // and the consumers' work join it (tracing.ts). Without tracing the statement is as before.
  const traceparent = currentTraceparent();
  if (traceparent) {
    await tx.query(`WITH added AS (INSERT INTO outbox (subject, payload, traceparent) VALUES ($1, $2, $3) RETURNING 1) SELECT ${notify} FROM added`, [
      subject,
      Buffer.from(toBinary(schema, message)),
      traceparent,
    ]);
    return;
  }
  // One round trip: the insert and the notification (delivered at commit) in one statement.
  await tx.query(`WITH added AS (INSERT INTO outbox (subject, payload) VALUES ($1, $2) RETURNING 1) SELECT ${notify} FROM added`, [
    subject,
    Buffer.from(toBinary(schema, message)),
  ]);
}

/** An event for the outbox: its subject and message. */
export interface OutboxEvent<D extends DescMessage = DescMessage> {
  subject: string;
  schema: D;
  message: MessageShape<D>;
}

/**
 * One change and its event in one statement, so atomic with no transaction around them: one
 * round trip where BEGIN, the change, the event and COMMIT were four. `change` is an INSERT,
 * UPDATE or DELETE … RETURNING with parameters $1…$n; the event is queued only when it returned
 * a row, so the caller builds the event from the row it expects (e.g. with its own timestamps).
 * Answers the returned rows.
 */
export async function changeWithEvent<R extends object, D extends DescMessage>(db: Pool | PoolClient, change: { text: string; values: unknown[] }, event: OutboxEvent<D>): Promise<R[]> {
  const traceparent = currentTraceparent();
  const n = change.values.length;
  const { rows } = await db.query<R & { outbox_notified?: unknown }>(
    `WITH changed AS (${change.text}),
     added AS (INSERT INTO outbox (subject, payload${traceparent ? ", traceparent" : ""}) SELECT $${n + 1}, $${n + 2}${traceparent ? `, $${n + 3}` : ""} WHERE EXISTS (SELECT 1 FROM changed) RETURNING 1)
     SELECT changed.*, (SELECT ${notify} FROM added) AS outbox_notified FROM changed`,
    [...change.values, event.subject, Buffer.from(toBinary(event.schema, event.message)), ...(traceparent ? [traceparent] : [])],
  );
  return rows.map(({ outbox_notified: _, ...row }) => row as unknown as R);
}

/**
 * Adds many events of one schema to the outbox in one statement (in the order given, which is
 * the order they are published in), inside the caller's transaction: what a batch of changes
 * (10,000 alerts firing at once) writes instead of a round trip per event.
 */
export async function enqueueEvents<D extends DescMessage>(tx: PoolClient, schema: D, events: { subject: string; message: MessageShape<D> }[]) {
  if (events.length === 0) return;
  if (events.length === 1) return enqueueEvent(tx, events[0]!.subject, schema, events[0]!.message);
  const traceparent = currentTraceparent();
  await tx.query(
    `WITH added AS (INSERT INTO outbox (subject, payload${traceparent ? ", traceparent" : ""}) SELECT s, p${traceparent ? ", $3" : ""} FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS e(s, p, n) ORDER BY n RETURNING 1)
     SELECT ${notify} FROM (SELECT 1 FROM added LIMIT 1) AS any_added`,
    [events.map((e) => e.subject), events.map((e) => Buffer.from(toBinary(schema, e.message))), ...(traceparent ? [traceparent] : [])],
  );
}

export interface OutboxRelayOptions {
  pool: Pool;
  /** May still be connecting: events wait in the outbox until it is up. */
  nats: NatsConnection | Promise<NatsConnection>;
  log: Logger;
  /** The JetStream stream the events go to, created or updated at start. */
  stream: { name: string; subjects: string[] };
  batchSize?: number;
  /** How often to look for rows when nothing woke the relay (other replicas' writes). */
  pollMs?: number;
}

export interface OutboxRelay {
  /** Publishes what is pending now; resolves when the outbox is empty (or an error stopped the pass). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export function startOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { pool, nats, log, stream } = options;
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? 100));
  const pollMs = options.pollMs ?? 1_000;
  let js: JetStreamClient | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let failures = 0;

  const connectStream = async () => {
    if (js) return js;
    const nc = await Promise.race([nats, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("nats is not connected yet")), 2_000).unref())]);
    await ensureStream(nc, stream);
    js = jetstream(nc, { timeout: 5_000 });
    return js;
  };

  // One batch: lock pending rows (SKIP LOCKED lets replicas share the work), publish in order, mark them.
  // Two round trips: BEGIN with the SELECT, and the UPDATE with the COMMIT (simple-protocol
  // multi-statement queries; the only values are the batch size and the rows' own uuids).
  const publishBatch = async (): Promise<number> => {
    // Tracing on (set up once the server starts): every service with an outbox has the traceparent column (its migrations).
    const traced = tracingEnabled();
    const client = await pool.connect();
    try {
      const results = (await client.query(
        `BEGIN; SELECT id, subject, payload${traced ? ", traceparent" : ""} FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT ${batchSize} FOR UPDATE SKIP LOCKED`,
      )) as unknown as [unknown, { rows: { id: string; subject: string; payload: Buffer; traceparent?: string | null }[] }];
      const rows = results[1].rows;
      if (rows.length === 0) {
        await client.query("COMMIT");
        return 0;
      }
      const stream = await connectStream();
      // Sent in order on one connection; the acks are awaited together.
      await Promise.all(
        rows.map((row) =>
          traced && row.traceparent
            ? tracedPublish(stream, options.stream.name, row as { id: string; subject: string; payload: Buffer; traceparent: string })
            : stream.publish(row.subject, row.payload, { msgID: row.id }),
        ),
      );
      const ids = rows.map((r) => {
        if (!uuid.test(r.id)) throw new Error(`outbox: row id ${JSON.stringify(r.id)} is not a uuid`);
        return `'${r.id}'`;
      });
      await client.query(`UPDATE outbox SET published_at = now() WHERE id IN (${ids.join(", ")}); COMMIT`);
      return rows.length;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  };

  const drain = async () => {
    do {
      again = false;
      try {
        // The stream exists from the first pass on, so consumers can attach before any event.
        await connectStream();
        while (!stopped && (await publishBatch()) === batchSize);
        if (failures > 0) log.info({ stream: stream.name }, "outbox publishing again");
        failures = 0;
      } catch (err) {
        js = undefined;
        if (failures++ === 0) log.warn({ err, stream: stream.name }, "outbox publish failed; will retry");
        return;
      }
    } while (again && !stopped);
  };

  const pass = () => {
    if (running) {
      again = true;
      return running;
    }
    running = drain().finally(() => {
      running = undefined;
    });
    return running;
  };

  const onWake = () => void pass();
  // Commits anywhere (this replica or another) wake the relay; the poll covers a lost listener.
  // One listening client at a time: a poll while one is being set up waits for it, and a client
  // set up when the relay has stopped (or that failed to listen) goes back to the pool — a
  // client kept checked out made the service's pool.end() wait until it was killed.
  /** Drops the listening client (set while one listens). */
  let listener: (() => void) | undefined;
  let listening: Promise<void> | undefined;
  const listen = () => {
    if (stopped || listener || listening) return listening;
    listening = (async () => {
      let client: PoolClient | undefined;
      let dropped = false;
      // Destroyed rather than returned (it listens), once: an error can reach both the
      // client's "error" event and the query in flight.
      const drop = (c: PoolClient, err?: Error) => {
        if (dropped) return;
        dropped = true;
        listener = undefined;
        c.release(err ?? true);
      };
      try {
        client = await pool.connect();
        const c = client;
        c.on("notification", onWake);
        c.on("error", (err) => drop(c, err));
        const { rows } = await c.query<{ schema: string }>("SELECT current_schema() AS schema");
        await c.query(`LISTEN ${c.escapeIdentifier(`outbox.${rows[0]!.schema}`)}`);
        if (stopped) drop(c);
        else listener = () => drop(c);
      } catch (err) {
        // PostgreSQL is down: the poll below retries listening too.
        if (client) drop(client, err instanceof Error ? err : undefined);
      } finally {
        listening = undefined;
      }
    })();
    return listening;
  };
  void listen();
  const timer = setInterval(() => {
    void listen();
    onWake();
  }, pollMs);
  timer.unref();
  // Old published rows are kept a week for inspection, then removed.
  const cleanup = setInterval(() => {
    pool.query("DELETE FROM outbox WHERE published_at < now() - interval '7 days'").catch(() => {});
  }, 3_600_000);
  cleanup.unref();
  void pass();

  return {
    flush: async () => {
      await pass();
      if (running) await running;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await listening;
      listener?.();
      clearInterval(cleanup);
      await running;
    },
  };
}

/**
 * Publishes an outbox row in the trace of the transaction that wrote it: an "outbox relay"
 * span, and in it a PRODUCER span whose traceparent goes in the message's headers.
 */
function tracedPublish(js: JetStreamClient, streamName: string, row: { id: string; subject: string; payload: Buffer; traceparent: string }) {
  return inSpan(`outbox relay ${row.subject}`, { parent: contextFromTraceparent(row.traceparent), attributes: { "messaging.message.id": row.id } }, () =>
    inSpan(
      `JetStream publish ${streamName}`,
      { kind: SpanKind.PRODUCER, attributes: { "messaging.system": "nats", "messaging.destination.name": row.subject, "messaging.message.id": row.id, "messaging.operation.type": "send" } },
      async () => {
        const h = natsHeaders();
        const tp = currentTraceparent();
        if (tp) h.set("traceparent", tp);
        return js.publish(row.subject, row.payload, { msgID: row.id, headers: h });
      },
    ),
  );
}

// Back-in-stock requests: a buyer's contact for a product sold out at a kiosk, kept until catalog
// restocks it there (catalog.stock.<kiosk>.restocked on stream CATALOG, the runtime's durable
// consumer). The restock claims the waiting requests (UPDATE … RETURNING, so one restock or
// two at once hand each request over once), forgets their contacts and, in the same
// transaction, queues one customers.back_in_stock.<request>.ready event per request for
// notifications, which sends the message through its own channels (email, SMS).
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { StockRestockedEventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/events_pb";
import { BackInStockReadyEventSchema } from "@adminkiosk/proto/adminkiosk/customers/v1/events_pb";
import {
  catalogSubjects,
  customersSubjects,
  decodeEvent,
  enqueueEvents,
  startConsumer,
  type DurableConsumer,
  type Logger,
  type NatsConnection,
  type Pool,
  type PoolClient,
} from "@adminkiosk/runtime";

export interface BackInStockRow {
  request_id: string;
  kiosk_id: string;
  sku: string;
  email: string | null;
  phone: string | null;
  state: "waiting" | "notified" | "expired";
  created_at: Date;
  notified_at: Date | null;
}
const columns = "request_id, kiosk_id, sku, email, phone, state, created_at, notified_at";

/** One waiting request per kiosk, product and contact: asking twice keeps the first. */
export async function addRequest(pool: Pool, r: { kioskId: string; sku: string; email?: string; phone?: string }): Promise<BackInStockRow> {
  const { rows: existing } = await pool.query<BackInStockRow>(
    `SELECT ${columns} FROM back_in_stock_requests WHERE kiosk_id = $1 AND sku = $2 AND state = 'waiting'
     AND email IS NOT DISTINCT FROM $3 AND phone IS NOT DISTINCT FROM $4 LIMIT 1`,
    [r.kioskId, r.sku, r.email ?? null, r.phone ?? null],
  );
  if (existing[0]) return existing[0];
  const { rows } = await pool.query<BackInStockRow>(
    `INSERT INTO back_in_stock_requests (kiosk_id, sku, email, phone) VALUES ($1, $2, $3, $4) RETURNING ${columns}`,
    [r.kioskId, r.sku, r.email ?? null, r.phone ?? null],
  );
  return rows[0]!;
}

export async function listRequests(pool: Pool, f: { kioskId?: string; sku?: string; limit: number }): Promise<BackInStockRow[]> {
  const params: unknown[] = [];
  const clauses = ["true"];
  if (f.kioskId) clauses.push(`kiosk_id = $${params.push(f.kioskId)}`);
  if (f.sku) clauses.push(`sku = $${params.push(f.sku)}`);
  const { rows } = await pool.query<BackInStockRow>(
    `SELECT ${columns} FROM back_in_stock_requests WHERE ${clauses.join(" AND ")} ORDER BY created_at DESC LIMIT $${params.push(f.limit)}`,
    params,
  );
  return rows;
}

/** A restock with units available: the waiting requests become events, their contacts go. */
export async function restocked(tx: PoolClient, kioskId: string, sku: string, available: bigint): Promise<number> {
  if (available <= 0n) return 0;
  const { rows } = await tx.query<{ request_id: string; email: string | null; phone: string | null }>(
    `WITH claimed AS (
       SELECT request_id, email, phone FROM back_in_stock_requests WHERE kiosk_id = $1 AND sku = $2 AND state = 'waiting' FOR UPDATE
     )
     UPDATE back_in_stock_requests r SET state = 'notified', notified_at = now(), email = NULL, phone = NULL
     FROM claimed WHERE r.request_id = claimed.request_id RETURNING r.request_id, claimed.email, claimed.phone`,
    [kioskId, sku],
  );
  await enqueueEvents(
    tx,
    BackInStockReadyEventSchema,
    rows.map((r) => ({
      subject: customersSubjects.backInStockReady(r.request_id),
      message: create(BackInStockReadyEventSchema, { requestId: r.request_id, kioskId, sku, email: r.email ?? "", phone: r.phone ?? "", available, time: timestampNow() }),
    })),
  );
  return rows.length;
}

export function startRestockConsumer(o: { pool: Pool; nats: NatsConnection | Promise<NatsConnection>; log: Logger; durable: string; since?: Date }): DurableConsumer {
  return startConsumer({
    pool: o.pool,
    nats: o.nats,
    log: o.log,
    stream: catalogSubjects.stream.name,
    durable: o.durable,
    filter: catalogSubjects.allRestocks,
    since: o.since,
    async apply(tx, msg) {
      const e = decodeEvent(StockRestockedEventSchema, msg);
      if (!e.kioskId || !e.sku) return;
      await restocked(tx, e.kioskId, e.sku, e.available);
    },
  });
}

/** Requests waiting past the limit are expired and their contacts forgotten. */
export async function expireRequests(pool: Pool, ttlMs: number): Promise<void> {
  await pool.query(
    `UPDATE back_in_stock_requests SET state = 'expired', email = NULL, phone = NULL
     WHERE state = 'waiting' AND created_at < now() - make_interval(secs => $1::double precision / 1000)`,
    [ttlMs],
  );
}

/** A member's erasure also forgets their waiting requests (matched by their contacts). */
export async function forgetContacts(tx: PoolClient | Pool, contacts: string[]): Promise<void> {
  if (contacts.length === 0) return;
  await tx.query("UPDATE back_in_stock_requests SET state = 'expired', email = NULL, phone = NULL WHERE state = 'waiting' AND (email = ANY($1) OR phone = ANY($1))", [contacts]);
}

/** A member's waiting back-in-stock requests, found by their contacts (export). */
export async function requestsByContact(pool: Pool, contacts: (string | null)[]): Promise<BackInStockRow[]> {
  const known = contacts.filter((c): c is string => !!c);
  if (known.length === 0) return [];
  const { rows } = await pool.query<BackInStockRow>(
    `SELECT ${columns} FROM back_in_stock_requests WHERE email = ANY($1) OR phone = ANY($1) ORDER BY created_at`,
    [known],
  );
  return rows;
}

// Back-in-stock requests: a buyer's contact for a product sold out at a kiosk, kept until catalog
// restocks it there (catalog.stock.<kiosk>.restocked on stream CATALOG, the runtime's durable
// consumer) — or, if the request says so, at a kiosk within nearby_km of it or in its group, by
// fleet's registry (stream FLEET: kiosk_places, customers' copy of kiosks' groups and
// locations). The restock claims the waiting requests it meets (rows locked, state re-checked,
// so one restock or two at once, here and nearby, hand each request over once), forgets their
// contacts and, in the same transaction, queues one customers.back_in_stock.<request>.ready
// event per request, naming where, for notifications, which sends the message through its own
// channels (email, SMS).
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { StockRestockedEventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/events_pb";
import { KioskRegistryEventSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/events_pb";
import { BackInStockReadyEventSchema } from "@adminkiosk/proto/adminkiosk/customers/v1/events_pb";
import {
  catalogSubjects,
  customersSubjects,
  fleetSubjects,
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
  nearby_km: number;
  same_group: boolean;
  notified_kiosk_id: string | null;
}
const columns = "request_id, kiosk_id, sku, email, phone, state, created_at, notified_at, nearby_km, same_group, notified_kiosk_id";

/** One waiting request per kiosk, product and contact: asking twice keeps the first, with the newer scope. */
export async function addRequest(pool: Pool, r: { kioskId: string; sku: string; email?: string; phone?: string; nearbyKm: number; sameGroup: boolean }): Promise<BackInStockRow> {
  const { rows: existing } = await pool.query<BackInStockRow>(
    `UPDATE back_in_stock_requests SET nearby_km = $5, same_group = $6
     WHERE request_id = (SELECT request_id FROM back_in_stock_requests WHERE kiosk_id = $1 AND sku = $2 AND state = 'waiting'
       AND email IS NOT DISTINCT FROM $3 AND phone IS NOT DISTINCT FROM $4 LIMIT 1) AND state = 'waiting'
     RETURNING ${columns}`,
    [r.kioskId, r.sku, r.email ?? null, r.phone ?? null, r.nearbyKm, r.sameGroup],
  );
  if (existing[0]) return existing[0];
  const { rows } = await pool.query<BackInStockRow>(
    `INSERT INTO back_in_stock_requests (kiosk_id, sku, email, phone, nearby_km, same_group) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${columns}`,
    [r.kioskId, r.sku, r.email ?? null, r.phone ?? null, r.nearbyKm, r.sameGroup],
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

/** Great-circle distance in km between kiosk places a and b (haversine; NULL when either has no location). */
const distanceSql = (a: string, b: string) =>
  `2 * 6371 * asin(sqrt(power(sin(radians(${b}.latitude - ${a}.latitude) / 2), 2) + cos(radians(${a}.latitude)) * cos(radians(${b}.latitude)) * power(sin(radians(${b}.longitude - ${a}.longitude) / 2), 2)))`;

/**
 * A restock with units available at `kioskId`: the waiting requests it meets — made there, or
 * made at a kiosk within their nearby_km of it, or of its group when they asked for the group —
 * become events naming where, and their contacts go.
 */
export async function restocked(tx: PoolClient, kioskId: string, sku: string, available: bigint): Promise<number> {
  if (available <= 0n) return 0;
  const { rows } = await tx.query<{ request_id: string; email: string | null; phone: string | null; asked_at: string; distance_km: number | null; address: string | null }>(
    `WITH here AS (SELECT group_id, latitude, longitude, address FROM kiosk_places WHERE kiosk_id = $1 AND NOT deleted),
     claimed AS (
       SELECT r.request_id, r.email, r.phone, r.kiosk_id AS asked_at,
              CASE WHEN r.kiosk_id = $1 THEN 0 ELSE ${distanceSql("a", "h")} END AS distance_km, h.address
       FROM back_in_stock_requests r
       LEFT JOIN kiosk_places a ON a.kiosk_id = r.kiosk_id AND NOT a.deleted
       LEFT JOIN here h ON true
       WHERE r.sku = $2 AND r.state = 'waiting' AND (r.kiosk_id = $1 OR r.nearby_km > 0 OR r.same_group)
         AND (r.kiosk_id = $1
              OR (r.same_group AND a.group_id <> '' AND a.group_id = h.group_id)
              OR (r.nearby_km > 0 AND ${distanceSql("a", "h")} <= r.nearby_km))
       FOR UPDATE OF r
     )
     UPDATE back_in_stock_requests r SET state = 'notified', notified_at = now(), notified_kiosk_id = $1, email = NULL, phone = NULL
     FROM claimed WHERE r.request_id = claimed.request_id
     RETURNING r.request_id, claimed.email, claimed.phone, claimed.asked_at, claimed.distance_km, claimed.address`,
    [kioskId, sku],
  );
  await enqueueEvents(
    tx,
    BackInStockReadyEventSchema,
    rows.map((r) => ({
      subject: customersSubjects.backInStockReady(r.request_id),
      message: create(BackInStockReadyEventSchema, {
        requestId: r.request_id,
        kioskId,
        requestedKioskId: r.asked_at,
        distanceKm: r.distance_km ?? 0,
        kioskAddress: r.address ?? "",
        sku,
        email: r.email ?? "",
        phone: r.phone ?? "",
        available,
        time: timestampNow(),
      }),
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

/**
 * fleet's registry events (stream FLEET): each kiosk's group and location as of its newest
 * change (an event older than what is held changes nothing; one without a location keeps the
 * one held — bulk label changes carry none).
 */
export function startFleetConsumer(o: { pool: Pool; nats: NatsConnection | Promise<NatsConnection>; log: Logger; durable: string; since?: Date }): DurableConsumer {
  return startConsumer({
    pool: o.pool,
    nats: o.nats,
    log: o.log,
    stream: fleetSubjects.stream.name,
    durable: o.durable,
    filter: fleetSubjects.allKiosks,
    since: o.since,
    async apply(tx, msg) {
      const e = decodeEvent(KioskRegistryEventSchema, msg);
      if (!e.kioskId) return;
      const at = e.time ? timestampDate(e.time) : new Date();
      const l = e.location;
      const located = !!l && (l.latitude !== 0 || l.longitude !== 0);
      await tx.query(
        `INSERT INTO kiosk_places (kiosk_id, group_id, latitude, longitude, address, deleted, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (kiosk_id) DO UPDATE SET group_id = EXCLUDED.group_id, deleted = EXCLUDED.deleted, changed_at = EXCLUDED.changed_at,
           latitude = CASE WHEN $8 THEN EXCLUDED.latitude ELSE kiosk_places.latitude END,
           longitude = CASE WHEN $8 THEN EXCLUDED.longitude ELSE kiosk_places.longitude END,
           address = CASE WHEN $8 THEN EXCLUDED.address ELSE kiosk_places.address END
         WHERE kiosk_places.changed_at <= EXCLUDED.changed_at`,
        [e.kioskId, e.groupId, located ? l!.latitude : null, located ? l!.longitude : null, located ? l!.address : "", e.deleted, at, located],
      );
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

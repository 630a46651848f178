// Offline sales (docs/offline.md): a kiosk's sales made from its lease while the network
// was gone, uploaded in order by SyncOfflineSales. Each is applied once by (kiosk,
// idempotency key) — the order row is its record, as for CreateOrder — in steps that are
// each idempotent, so a sync cut off half-way and sent again carries on where it stopped:
//   1. claim the key with a new order (+ offline_sales: lease, sold time, payment, the
//      provisional tickets);
//   2. commit against the lease at catalog (CommitLeaseSale, once per order id): the
//      units and seats leave the lease as sold. A lease that ended first (revoked,
//      returned, expired) or does not hold what the sale names: nothing is sold, the order
//      FAILS with the reason, its provisional tickets are recorded void, and a conflict
//      goes to the operator queue (never a second sale of a seat);
//   3. cash: completed now, final tickets signed with the ticket key and a receipt. A card
//      authorised offline: captured now through payments (key order-<id>, so once); the
//      completion worker completes it when the payment succeeds, and a decline becomes a
//      conflict (the goods are gone: sold at catalog, the provisional tickets stay valid
//      until an operator resolves it).
import { randomUUID } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { CallOptions } from "@connectrpc/connect";
import { ConflictKind, ConflictResolution, ConflictState, type OfflineConflictSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/offline_pb";
import { ReceiptSchema, type Order } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { aborted, inTransaction, keyReused, kindCodeName, storedRefusalOf, type Logger, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { publish } from "./events.js";
import { toLine, toOrder } from "./messages.js";
import { buildReceipt } from "./receipt.js";
import { paymentKeyFor } from "./sale.js";
import { orders, tickets, type OrderRow } from "./store.js";
import type { TicketSigner } from "./tickets.js";
import type { Upstream } from "./upstream.js";

type Db = Pool | PoolClient;

export interface OfflineDeps {
  pool: Pool;
  upstream: Upstream;
  signer: TicketSigner;
  log: Logger;
}

export interface ProvisionalTicket {
  ticket_id: string;
  event_id: string;
  seat_id: string;
  qr_payload: string;
}

export interface OfflineSaleInput {
  kioskId: string;
  idempotencyKey: string;
  /** Which field names the key in errors (sales[i].idempotency_key). */
  keyField: string;
  requestHash: Buffer;
  leaseId: string;
  soldAt: Date;
  items: { sku: string; quantity: bigint }[];
  seats: { eventId: string; seatId: string }[];
  paymentMethod: string;
  kioskTotalMinor: bigint;
  currency: string;
  tickets: ProvisionalTicket[];
  call: CallOptions;
}

export interface OfflineRow {
  order_id: string;
  kiosk_id: string;
  lease_id: string;
  sold_at: Date;
  payment_method: string;
  kiosk_total_minor: string;
  provisional_tickets: ProvisionalTicket[];
  synced_at: Date;
}

type ConflictKindName = "lease_ended" | "payment_declined" | "not_in_lease";

export interface ConflictRow {
  id: string;
  order_id: string;
  kiosk_id: string;
  kind: ConflictKindName;
  code: string;
  message: string;
  amount_minor: string;
  currency: string;
  state: "open" | "resolved";
  resolution: "refunded" | "written_off" | null;
  resolved_by: string;
  note: string;
  created_at: Date;
  resolved_at: Date | null;
  idempotency_key: string;
  lease_id: string;
  payment_method: string;
}

const conflictKinds: Record<ConflictKindName, ConflictKind> = {
  lease_ended: ConflictKind.LEASE_ENDED,
  payment_declined: ConflictKind.PAYMENT_DECLINED,
  not_in_lease: ConflictKind.NOT_IN_LEASE,
};
export const resolutionNames = new Map([
  [ConflictResolution.REFUNDED, "refunded" as const],
  [ConflictResolution.WRITTEN_OFF, "written_off" as const],
]);

export function toConflict(c: ConflictRow): MessageInitShape<typeof OfflineConflictSchema> {
  return {
    conflictId: c.id,
    orderId: c.order_id,
    kioskId: c.kiosk_id,
    idempotencyKey: c.idempotency_key,
    leaseId: c.lease_id,
    kind: conflictKinds[c.kind],
    code: c.code,
    message: c.message,
    amountMinor: BigInt(c.amount_minor),
    currency: c.currency,
    paymentMethod: c.payment_method,
    state: c.state === "open" ? ConflictState.OPEN : ConflictState.RESOLVED,
    resolution: c.resolution === "refunded" ? ConflictResolution.REFUNDED : c.resolution === "written_off" ? ConflictResolution.WRITTEN_OFF : ConflictResolution.UNSPECIFIED,
    resolvedBy: c.resolved_by,
    note: c.note,
    createTime: timestampFromDate(c.created_at),
    resolveTime: c.resolved_at ? timestampFromDate(c.resolved_at) : undefined,
  };
}

const conflictSelect = `SELECT c.*, o.idempotency_key, s.lease_id::text AS lease_id, s.payment_method
  FROM offline_conflicts c JOIN orders o ON o.id = c.order_id JOIN offline_sales s ON s.order_id = c.order_id`;

export const offlineStore = {
  async byOrder(db: Db, orderId: string): Promise<OfflineRow | undefined> {
    const { rows } = await db.query<OfflineRow>("SELECT * FROM offline_sales WHERE order_id = $1", [orderId]);
    return rows[0];
  },
  async conflictOf(db: Db, orderId: string): Promise<ConflictRow | undefined> {
    const { rows } = await db.query<ConflictRow>(`${conflictSelect} WHERE c.order_id = $1 ORDER BY c.created_at DESC LIMIT 1`, [orderId]);
    return rows[0];
  },
  async conflict(db: Db, id: string, options: { forUpdate?: boolean } = {}): Promise<ConflictRow | undefined> {
    const { rows } = await db.query<ConflictRow>(`${conflictSelect} WHERE c.id = $1${options.forUpdate ? " FOR UPDATE OF c" : ""}`, [id]);
    return rows[0];
  },
  async conflicts(db: Db, f: { kioskId?: string; state?: "open" | "resolved" }, page: { limit: number; before?: { at: string; id: string } }): Promise<ConflictRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.kioskId !== undefined) where.push(`c.kiosk_id = $${params.push(f.kioskId)}`);
    if (f.state !== undefined) where.push(`c.state = $${params.push(f.state)}`);
    if (page.before) where.push(`(c.created_at, c.id) < ($${params.push(page.before.at)}::timestamptz, $${params.push(page.before.id)}::uuid)`);
    const { rows } = await db.query<ConflictRow>(
      `${conflictSelect} ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY c.created_at DESC, c.id DESC LIMIT $${params.push(page.limit)}`,
      params,
    );
    return rows;
  },
  async sales(db: Db, f: { kioskId?: string }, page: { limit: number; before?: { at: string; id: string } }): Promise<OfflineRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.kioskId !== undefined) where.push(`kiosk_id = $${params.push(f.kioskId)}`);
    if (page.before) where.push(`(synced_at, order_id) < ($${params.push(page.before.at)}::timestamptz, $${params.push(page.before.id)}::uuid)`);
    const { rows } = await db.query<OfflineRow>(
      `SELECT * FROM offline_sales ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY synced_at DESC, order_id DESC LIMIT $${params.push(page.limit)}`,
      params,
    );
    return rows;
  },
  /** Records a conflict once per order and kind; answers the row. */
  async addConflict(tx: PoolClient, c: { orderId: string; kioskId: string; kind: ConflictKindName; code: string; message: string; amountMinor: string; currency: string }) {
    await tx.query(
      `INSERT INTO offline_conflicts (order_id, kiosk_id, kind, code, message, amount_minor, currency) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (order_id, kind) DO NOTHING`,
      [c.orderId, c.kioskId, c.kind, c.code, c.message.slice(0, 500), c.amountMinor, c.currency],
    );
  },
};

export interface OfflineResult {
  order: Order;
  conflictId?: string;
}

const cash = "cash";

/** Applies one offline sale (see the file's comment); safe to call again with the same sale. */
export async function applyOfflineSale(deps: OfflineDeps, sale: OfflineSaleInput): Promise<OfflineResult> {
  const { pool } = deps;
  let row = await inTransaction(pool, async (tx) => {
    const created = await orders.insert(tx, { id: randomUUID(), kioskId: sale.kioskId, key: sale.idempotencyKey, hash: sale.requestHash });
    if (!created) return undefined;
    await tx.query(
      `INSERT INTO offline_sales (order_id, kiosk_id, lease_id, sold_at, payment_method, kiosk_total_minor, provisional_tickets) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [created.id, sale.kioskId, sale.leaseId, sale.soldAt, sale.paymentMethod, sale.kioskTotalMinor.toString(), JSON.stringify(sale.tickets)],
    );
    await publish.created(tx, toOrder({ row: created, lines: [], tickets: [] }));
    return created;
  });
  if (!row) {
    row = await orders.byKey(pool, sale.kioskId, sale.idempotencyKey);
    if (!row) throw aborted("the order for this idempotency key is being created; retry");
    // The key was used for an online sale, or for another offline sale.
    if (!row.request_hash.equals(sale.requestHash) || !(await offlineStore.byOrder(pool, row.id))) throw keyReused(sale.keyField);
    if (row.state !== "created") return answer(pool, row.id);
  }
  const orderId = row.id;

  // 2. Against the lease (idempotent by the order id).
  let taken;
  try {
    taken = await deps.upstream.leases.commitLeaseSale(
      { leaseId: sale.leaseId, kioskId: sale.kioskId, saleId: orderId, items: sale.items, seats: sale.seats, soldTime: timestampFromDate(sale.soldAt) },
      sale.call,
    );
  } catch (err) {
    const refusal = storedRefusalOf(err);
    if (!refusal) throw err; // catalog unreachable: the kiosk syncs again later
    const code = refusal.info?.reason ?? kindCodeName(refusal.kind);
    const kind: ConflictKindName = code === "NOT_IN_LEASE" || refusal.kind !== "failedPrecondition" ? "not_in_lease" : "lease_ended";
    await inTransaction(pool, async (tx) => {
      const locked = await orders.byId(tx, orderId, { forUpdate: true });
      if (!locked || locked.state !== "created") return;
      await orders.setFailed(tx, orderId, { code, message: `sold offline, not honoured: ${refusal.message}` });
      // The provisional tickets admit no one: their seats went back (or were never the lease's).
      const voided = await tickets.insertAll(
        tx,
        sale.tickets.map((t) => ({ id: randomUUID(), order_id: orderId, event_id: t.event_id, seat_id: t.seat_id, qr_payload: t.qr_payload })),
      );
      if (voided.length > 0) await tx.query("UPDATE tickets SET void = true WHERE order_id = $1", [orderId]);
      await offlineStore.addConflict(tx, {
        orderId,
        kioskId: sale.kioskId,
        kind,
        code,
        message: `${refusal.message} — nothing was sold${sale.paymentMethod === cash ? "; the customer paid cash and is owed it back" : "; the card was not captured"}`,
        amountMinor: sale.kioskTotalMinor.toString(),
        currency: sale.currency,
      });
      await publish.failed(tx, toOrder((await orders.full(tx, orderId))!));
    });
    deps.log.warn({ orderId, kioskId: sale.kioskId, leaseId: sale.leaseId, code }, "an offline sale could not be honoured; it is in the conflict queue");
    return answer(pool, orderId);
  }
  const lines = [
    ...taken.items.map((i) => ({ sku: i.sku, quantity: i.quantity.toString(), event_id: "", seat_id: "", tier_id: "", unit_price_minor: i.unitPriceMinor.toString(), tax_rate_basis_points: i.taxRateBasisPoints })),
    ...taken.seats.map((s) => ({ sku: "", quantity: "1", event_id: s.eventId, seat_id: s.seatId, tier_id: s.tierId, unit_price_minor: s.priceMinor.toString(), tax_rate_basis_points: 0 })),
  ].map((l, i) => ({ ...l, line_number: i + 1 }));
  const recorded = await orders.setReserved(pool, orderId, taken.currency, taken.totalMinor, lines);

  // 3. Payment.
  if (sale.paymentMethod === cash) {
    await completeOffline(deps, orderId, "");
    return answer(pool, orderId);
  }
  if (row.payment_intent_id === "") {
    let intent;
    try {
      ({ paymentIntent: intent } = await deps.upstream.payments.createPaymentIntent(
        {
          idempotencyKey: paymentKeyFor(orderId),
          orderId,
          kioskId: sale.kioskId,
          amountMinor: BigInt(recorded.total_minor),
          currency: recorded.currency,
          description: `Order ${orderId} (sold offline)`,
          paymentMethod: sale.paymentMethod,
        },
        sale.call,
      ));
    } catch (err) {
      const refusal = storedRefusalOf(err);
      if (!refusal) throw err;
      await declineOffline(deps, orderId, refusal.info?.reason ?? kindCodeName(refusal.kind), refusal.message);
      return answer(pool, orderId);
    }
    if (intent) await orders.setPaymentStarted(pool, orderId, intent.paymentIntentId);
  }
  return answer(pool, orderId);
}

async function answer(pool: Pool, orderId: string): Promise<OfflineResult> {
  const full = await orders.full(pool, orderId);
  if (!full) throw new Error(`order ${orderId} vanished`);
  const conflict = await offlineStore.conflictOf(pool, orderId);
  return { order: toOrder(full), conflictId: conflict?.id };
}

/**
 * An offline sale committed against its lease and paid (cash now, or its card captured):
 * COMPLETED, with a receipt and final tickets signed with the ticket key (replacing the
 * provisional ones in the order; those stay verifiable until their delegation's seats are
 * scanned). Idempotent: nothing to do once the order is no longer open.
 */
export async function completeOffline(deps: Pick<OfflineDeps, "pool" | "signer">, orderId: string, paymentIntentId: string, tx?: PoolClient): Promise<boolean> {
  const work = async (tx: PoolClient) => {
    const locked = await orders.byId(tx, orderId, { forUpdate: true });
    if (!locked || (locked.state !== "created" && locked.state !== "pending_payment")) return false;
    const lines = await orders.linesOf(tx, [orderId]);
    const now = new Date();
    const iat = Math.floor(now.getTime() / 1000);
    const issued = await Promise.all(
      lines
        .filter((l) => l.seat_id !== "")
        .map(async (line) => {
          const id = randomUUID();
          const qr = await deps.signer.sign({ tid: id, oid: orderId, kid: locked.kiosk_id, ev: line.event_id, seat: line.seat_id, iat });
          return { id, order_id: orderId, event_id: line.event_id, seat_id: line.seat_id, qr_payload: qr };
        }),
    );
    const ticketRows = await tickets.insertAll(tx, issued);
    const receipt = buildReceipt({ receiptNumber: await orders.nextReceiptNumber(tx), kioskId: locked.kiosk_id, orderId, lines: lines.map(toLine), currency: locked.currency, issuedAt: now });
    const completed = await orders.setCompleted(tx, orderId, paymentIntentId, Buffer.from(toBinary(ReceiptSchema, receipt)), now);
    await publish.completed(tx, toOrder({ row: completed, lines, tickets: ticketRows }));
    return true;
  };
  return tx ? work(tx) : inTransaction(deps.pool, work);
}

/**
 * The card taken offline was declined on capture: the units and seats are sold (they left
 * with the customer), so the order FAILS with the provider's code, its provisional tickets
 * are kept (valid until an operator resolves the conflict), and the conflict is queued.
 */
export async function declineOffline(deps: Pick<OfflineDeps, "pool">, orderId: string, code: string, message: string, tx?: PoolClient): Promise<boolean> {
  const work = async (tx: PoolClient) => {
    const locked = await orders.byId(tx, orderId, { forUpdate: true });
    if (!locked || (locked.state !== "created" && locked.state !== "pending_payment")) return false;
    const offline = (await offlineStore.byOrder(tx, orderId))!;
    await orders.setFailed(tx, orderId, { code, message: `sold offline; the card was declined on capture: ${message}` });
    await tickets.insertAll(
      tx,
      offline.provisional_tickets.map((t) => ({ id: randomUUID(), order_id: orderId, event_id: t.event_id, seat_id: t.seat_id, qr_payload: t.qr_payload })),
    );
    await offlineStore.addConflict(tx, {
      orderId,
      kioskId: locked.kiosk_id,
      kind: "payment_declined",
      code,
      message: `${message} — the goods and seats are sold; collect the money or write it off`,
      amountMinor: locked.total_minor,
      currency: locked.currency,
    });
    await publish.failed(tx, toOrder((await orders.full(tx, orderId))!));
    return true;
  };
  return tx ? work(tx) : inTransaction(deps.pool, work);
}

/** An operator's decision on an open conflict. REFUNDED voids the sale's tickets. */
export async function resolveConflict(pool: Pool, id: string, resolution: "refunded" | "written_off", note: string, by: string): Promise<ConflictRow | undefined> {
  return inTransaction(pool, async (tx) => {
    const c = await offlineStore.conflict(tx, id, { forUpdate: true });
    if (!c) return undefined;
    if (c.state === "resolved") {
      if (c.resolution !== resolution) throw new ResolvedOtherwise(c.resolution ?? "");
      return c;
    }
    if (resolution === "written_off" && c.kind !== "payment_declined") throw new NothingToWriteOff();
    if (resolution === "refunded") await tx.query("UPDATE tickets SET void = true WHERE order_id = $1", [c.order_id]);
    await tx.query("UPDATE offline_conflicts SET state = 'resolved', resolution = $2, note = $3, resolved_by = $4, resolved_at = now() WHERE id = $1", [id, resolution, note, by]);
    return (await offlineStore.conflict(tx, id))!;
  });
}

export class ResolvedOtherwise extends Error {
  constructor(readonly resolution: string) {
    super(`the conflict was already resolved (${resolution})`);
  }
}
export class NothingToWriteOff extends Error {
  constructor() {
    super("only a declined card's conflict can be written off: nothing was sold for this one; refund the customer");
  }
}

export const isOfflineOrder = async (db: Db, order: OrderRow) => (await offlineStore.byOrder(db, order.id)) !== undefined;

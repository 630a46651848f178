// Offline sales (docs/offline.md): a kiosk's sales made from its lease while the network
// was gone, uploaded in order by SyncOfflineSales. Each is applied once by (kiosk,
// idempotency key) — the order row is its record, as for CreateOrder — in steps that are
// each idempotent, so a sync cut off half-way and sent again carries on where it stopped:
//   1. claim the key with a new order (+ offline_sales: lease, sold time, payment, the
//      provisional tickets);
//   2. commit against the lease at catalog (CommitLeaseSale, once per order id): the
//      units and seats leave the lease as sold. A lease revoked meanwhile still commits
//      (the buyer took the goods; its seats were quarantined for it): the sale goes on as
//      below and a conflict tells the operator, who accepts it or refunds the order. A
//      lease returned or expired first, or one that does not hold what the sale names:
//      nothing is sold, the order FAILS with the reason, its provisional tickets are
//      recorded void, and a conflict goes to the operator queue (never a second sale of a
//      seat);
//   3. cash: completed now, final tickets signed with the ticket key and a receipt. A card
//      authorised offline: captured now through payments (key order-<id>, so once); the
//      completion worker completes it when the payment succeeds, and a decline becomes a
//      conflict (the goods are gone: sold at catalog, the provisional tickets stay valid
//      until an operator resolves it).
import { randomUUID } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { CallOptions } from "@connectrpc/connect";
import { LeaseState } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { ConflictKind, ConflictResolution, ConflictState, type OfflineConflictSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/offline_pb";
import { ReceiptSchema, type Order } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { aborted, inTransaction, keyReused, kindCodeName, storedRefusalOf, type Logger, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { publish } from "./events.js";
import { toLine, toOrder } from "./messages.js";
import { buildReceipt } from "./receipt.js";
import { paymentKeyFor } from "./sale.js";
import { orders, tickets } from "./store.js";
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
  lease_id: string | null;
  sold_at: Date;
  payment_method: string;
  kiosk_total_minor: string;
  provisional_tickets: ProvisionalTicket[];
  synced_at: Date;
}

type ConflictKindName = "lease_ended" | "payment_declined" | "not_in_lease" | "rejected";
export type ResolutionName = "refunded" | "written_off" | "accepted";

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
  resolution: ResolutionName | null;
  sold: boolean;
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
  rejected: ConflictKind.REJECTED,
};
export const resolutionNames = new Map<ConflictResolution, ResolutionName>([
  [ConflictResolution.REFUNDED, "refunded"],
  [ConflictResolution.WRITTEN_OFF, "written_off"],
  [ConflictResolution.ACCEPTED, "accepted"],
]);
const resolutions: Record<ResolutionName, ConflictResolution> = { refunded: ConflictResolution.REFUNDED, written_off: ConflictResolution.WRITTEN_OFF, accepted: ConflictResolution.ACCEPTED };

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
    resolution: c.resolution ? resolutions[c.resolution] : ConflictResolution.UNSPECIFIED,
    sold: c.sold,
    resolvedBy: c.resolved_by,
    note: c.note,
    createTime: timestampFromDate(c.created_at),
    resolveTime: c.resolved_at ? timestampFromDate(c.resolved_at) : undefined,
  };
}

const conflictSelect = `SELECT c.*, o.idempotency_key, coalesce(s.lease_id::text, '') AS lease_id, s.payment_method
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
  async addConflict(tx: Db, c: { orderId: string; kioskId: string; kind: ConflictKindName; code: string; message: string; amountMinor: string; currency: string; sold?: boolean }) {
    await tx.query(
      `INSERT INTO offline_conflicts (order_id, kiosk_id, kind, code, message, amount_minor, currency, sold) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (order_id, kind) DO NOTHING`,
      [c.orderId, c.kioskId, c.kind, c.code, c.message.slice(0, 1000), c.amountMinor, c.currency, c.sold ?? false],
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
  if (taken.leaseState === LeaseState.REVOKED) {
    // Sold before the kiosk knew of the revocation, and the buyer has it: recorded as sold
    // (catalog took the units off stock and sold the seats it had quarantined for the lease).
    const units = taken.items.map((i) => `${i.quantity} × ${i.sku}`);
    const seats = taken.seats.map((s) => `seat ${s.seatId}`);
    const short = taken.shortfalls.map(
      (x) => `${x.quantity} × ${x.sku} could not come off stock (${x.onHand} on hand, ${x.reserved} of them reserved by other sales): the shelf holds fewer than the books say — count it`,
    );
    await offlineStore.addConflict(pool, {
      orderId,
      kioskId: sale.kioskId,
      kind: "lease_ended",
      code: "LEASE_REVOKED",
      sold: true,
      message: [
        `sold offline under lease ${sale.leaseId} after it was revoked (${taken.leaseEndReason}); recorded as sold: ${[...units, ...seats].join(", ")} left with the buyer`,
        ...short,
        `${sale.paymentMethod === cash ? "cash taken" : "the card is captured"}. Accept it, or refund the order (money back, units restocked, seats freed) and resolve REFUNDED`,
      ].join(". "),
      amountMinor: sale.kioskTotalMinor.toString(),
      currency: sale.currency,
    });
    deps.log.warn({ orderId, kioskId: sale.kioskId, leaseId: sale.leaseId, shortfalls: short.length }, "an offline sale synced after its lease was revoked; recorded as sold, in the conflict queue");
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

export interface RejectedSaleInput {
  kioskId: string;
  /** Valid (printable, ≤ 255): otherwise the sale cannot be recorded, only answered. */
  idempotencyKey: string | undefined;
  requestHash: Buffer;
  /** A UUID, or null when the sale's was not one. */
  leaseId: string | null;
  soldAt: Date | undefined;
  paymentMethod: string;
  kioskTotalMinor: bigint;
  currency: string;
  tickets: ProvisionalTicket[];
  /** Why, naming the field (as the error would have). */
  reason: string;
}

export const rejectedCode = "INVALID_OFFLINE_SALE";

/**
 * A sale that can never be applied (SyncOfflineSales with reject_invalid): recorded once by
 * (kiosk, key) as a FAILED order with a 'rejected' conflict, so the operator sees it and the
 * kiosk's queue moves on. Nothing is sold and no card captured. Answers undefined when it
 * cannot be recorded: no valid key, or the key already names another sale.
 */
export async function rejectOfflineSale(deps: Pick<OfflineDeps, "pool" | "log">, sale: RejectedSaleInput): Promise<OfflineResult | undefined> {
  const { pool } = deps;
  const key = sale.idempotencyKey;
  if (key === undefined) {
    deps.log.warn({ kioskId: sale.kioskId, reason: sale.reason }, "an offline sale without a usable idempotency key was rejected, not recorded");
    return undefined;
  }
  const created = await inTransaction(pool, async (tx) => {
    const row = await orders.insert(tx, { id: randomUUID(), kioskId: sale.kioskId, key, hash: sale.requestHash });
    if (!row) return undefined;
    await tx.query(
      `INSERT INTO offline_sales (order_id, kiosk_id, lease_id, sold_at, payment_method, kiosk_total_minor, provisional_tickets) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [row.id, sale.kioskId, sale.leaseId, sale.soldAt ?? new Date(), sale.paymentMethod.slice(0, 255), sale.kioskTotalMinor.toString(), JSON.stringify(sale.tickets)],
    );
    await publish.created(tx, toOrder({ row, lines: [], tickets: [] }));
    await orders.setFailed(tx, row.id, { code: rejectedCode, message: `sold offline, rejected: ${sale.reason}`.slice(0, 500) });
    await offlineStore.addConflict(tx, {
      orderId: row.id,
      kioskId: sale.kioskId,
      kind: "rejected",
      code: rejectedCode,
      message: `${sale.reason} — nothing was sold${sale.paymentMethod === cash ? "; if the customer paid cash they are owed it back" : "; the card was not captured"}`,
      amountMinor: sale.kioskTotalMinor.toString(),
      currency: sale.currency.slice(0, 3),
    });
    await publish.failed(tx, toOrder((await orders.full(tx, row.id))!));
    return row;
  });
  if (created) {
    deps.log.warn({ orderId: created.id, kioskId: sale.kioskId, reason: sale.reason }, "an offline sale was rejected; it is in the conflict queue");
    return answer(pool, created.id);
  }
  const existing = await orders.byKey(pool, sale.kioskId, key);
  if (existing && existing.request_hash.equals(sale.requestHash) && (await offlineStore.byOrder(pool, existing.id))) return answer(pool, existing.id);
  deps.log.warn({ kioskId: sale.kioskId, key, reason: sale.reason }, "an offline sale was rejected; its key names another sale, so it is not recorded");
  return undefined;
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
      sold: true,
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

/**
 * An operator's decision on an open conflict (docs/offline.md, the resolution policy):
 * - ACCEPTED: a sale recorded as sold under a revoked lease stands (money kept, tickets valid).
 * - REFUNDED: the customer has their money back. A sale recorded as sold and paid must be
 *   refunded first (RefundOrder: the payment refunded or the cash handed back, units back
 *   in stock, seats freed, tickets void); otherwise nothing was collected, and the sale's
 *   tickets are voided here.
 * - WRITTEN_OFF: the money is not collected and the loss accepted (a declined card, a
 *   rejected sale): tickets stay valid, stock stays as it is.
 */
export async function resolveConflict(pool: Pool, id: string, resolution: ResolutionName, note: string, by: string): Promise<ConflictRow | undefined> {
  return inTransaction(pool, async (tx) => {
    const c = await offlineStore.conflict(tx, id, { forUpdate: true });
    if (!c) return undefined;
    if (c.state === "resolved") {
      if (c.resolution !== resolution) throw new ResolvedOtherwise(c.resolution ?? "");
      return c;
    }
    const order = (await orders.byId(tx, c.order_id, { forUpdate: true }))!;
    const honoured = c.kind === "lease_ended" && c.sold;
    if (resolution === "accepted" && !honoured) throw new CannotResolve("only a sale recorded as sold under a revoked lease can be accepted; this one was not sold");
    if (resolution === "written_off" && c.kind !== "payment_declined" && c.kind !== "rejected")
      throw new CannotResolve(honoured ? "the sale was paid: accept it, or refund the order and resolve REFUNDED" : NothingToWriteOff.text);
    if (resolution === "refunded" && honoured && order.state !== "refunded" && order.state !== "failed")
      throw new CannotResolve(`the sale is recorded as sold and paid: refund order ${c.order_id} first (RefundOrder gives the money back and restocks), then resolve REFUNDED`);
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
export class CannotResolve extends Error {}
export class NothingToWriteOff extends CannotResolve {
  static readonly text = "only a declined card's or a rejected sale's conflict can be written off: nothing was sold for this one; refund the customer";
  constructor() {
    super(NothingToWriteOff.text);
  }
}

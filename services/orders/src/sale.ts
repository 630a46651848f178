// A sale as CreateOrder runs it: claim the kiosk's idempotency key with a new order,
// reserve at catalog (reservation id = order id), start the payment at payments
// (idempotency key derived from the order id), answer PENDING_PAYMENT. Every step is
// idempotent, so a retry of an interrupted sale carries on where it stopped; the
// completion worker (completion.ts) finishes it when the payment's outcome arrives.
import { randomUUID } from "node:crypto";
import type { CallOptions } from "@connectrpc/connect";
import type { ReservedSeat, ReservationItem } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import type { Order } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { aborted, inTransaction, kindCodeName, replayRefusal, requireSameRequest, storedRefusalOf, type Logger, type Pool } from "@adminkiosk/runtime";
import { createdEvent, publish } from "./events.js";
import { toOrder } from "./messages.js";
import type { PaymentStarts } from "./payment-starts.js";
import { orders, type LineRow, type OrderRow } from "./store.js";
import type { Upstream } from "./upstream.js";

export interface SaleDeps {
  pool: Pool;
  upstream: Upstream;
  log: Logger;
  holdSeconds: number;
  /** Shared with the completion worker (payment-starts.ts); without it the worker retries later. */
  paymentStarts?: PaymentStarts;
}

export interface SaleRequest {
  kioskId: string;
  idempotencyKey: string;
  requestHash: Buffer;
  items: { sku: string; quantity: bigint }[];
  seats: { eventId: string; seatId: string }[];
  paymentMethod: string;
  /** Options for the calls to catalog and payments: the request id and the kiosk's remaining deadline (runtime callOptions). */
  call: CallOptions;
}

export const paymentKeyFor = (orderId: string) => `order-${orderId}`;

export async function createSale(deps: SaleDeps, req: SaleRequest): Promise<Order> {
  const { pool } = deps;
  // The new order and its created event (notifications alerts on orders stuck in it), together
  // in one statement: the row is known before it is written, so the event is built from it.
  const fresh = orders.newRow({ id: randomUUID(), kioskId: req.kioskId, key: req.idempotencyKey, hash: req.requestHash, at: new Date() });
  let row: OrderRow | undefined = (await orders.insertWithEvent(pool, fresh, createdEvent(toOrder({ row: fresh, lines: [], tickets: [] })))) ? fresh : undefined;
  if (!row) {
    row = await orders.byKey(pool, req.kioskId, req.idempotencyKey);
    if (!row) throw aborted("the order for this idempotency key is being created; retry");
    requireSameRequest(row.request_hash, req.requestHash);
    // The order is the key's record: a refusal it failed with is answered again.
    if (row.failure_kind !== null) replayRefusal({ kind: row.failure_kind, message: row.failure_message });
    if (row.state !== "created") return answer(pool, row.id);
    // An earlier attempt stopped half-way (or runs right now): carry on; each step is idempotent.
    // Unless the abandoned-order sweeper failed it meanwhile (abandoned.ts): then that is the answer.
    if (!(await orders.touchCreated(pool, row.id))) return answer(pool, row.id);
  }
  const reserved = await reserve(deps, row, req);
  const started = await startPayment(deps, row, reserved, req);
  // Answered from what this call wrote when it wrote the lines and nothing moved the order on
  // since; otherwise (a retry, or the worker was quicker) read back.
  if (started.wrote && started.row.state === "pending_payment")
    return toOrder({ row: started.row, lines: reserved.lines.map((l) => ({ ...l, order_id: row.id, refunded_quantity: "0" })), tickets: [] });
  return answer(pool, row.id);
}

async function answer(pool: Pool, id: string): Promise<Order> {
  const full = await orders.full(pool, id);
  if (!full) throw new Error(`order ${id} vanished`);
  return toOrder(full);
}

/** What catalog reserved for the order: its currency, total and priced lines (recorded with the payment's start). */
interface Reserved {
  currency: string;
  totalMinor: bigint;
  lines: Omit<LineRow, "order_id" | "refunded_quantity">[];
}

async function reserve(deps: SaleDeps, row: OrderRow, req: SaleRequest): Promise<Reserved> {
  let reservation;
  try {
    ({ reservation } = await deps.upstream.reservations.reserve(
      { reservationId: row.id, kioskId: req.kioskId, items: req.items.map((i) => ({ sku: i.sku, quantity: i.quantity })), seats: req.seats, ttlSeconds: deps.holdSeconds },
      req.call,
    ));
  } catch (err) {
    await refuse(deps, row.id, err);
    throw err;
  }
  if (!reservation) throw new Error("catalog answered no reservation");
  const lines = [
    ...reservation.items.map((i: ReservationItem) => ({ sku: i.sku, quantity: i.quantity.toString(), event_id: "", seat_id: "", tier_id: "", unit_price_minor: i.unitPriceMinor.toString(), tax_rate_basis_points: i.taxRateBasisPoints })),
    ...reservation.seats.map((s: ReservedSeat) => ({ sku: "", quantity: "1", event_id: s.eventId, seat_id: s.seatId, tier_id: s.tierId, unit_price_minor: s.priceMinor.toString(), tax_rate_basis_points: 0 })),
  ].map((l, i) => ({ ...l, line_number: i + 1 }));
  return { currency: reservation.currency, totalMinor: reservation.totalMinor, lines };
}

async function startPayment(deps: SaleDeps, order: OrderRow, reserved: Reserved, req: SaleRequest): Promise<{ row: OrderRow; wrote: boolean }> {
  const orderId = order.id;
  // The payment's event may come back before its intent is recorded below: the completion
  // worker of this process waits for this instead of retrying later.
  const done = deps.paymentStarts?.begin(orderId);
  try {
    let intent;
    try {
      ({ paymentIntent: intent } = await deps.upstream.payments.createPaymentIntent(
        {
          idempotencyKey: paymentKeyFor(orderId),
          orderId,
          kioskId: order.kiosk_id,
          amountMinor: reserved.totalMinor,
          currency: reserved.currency,
          description: `Order ${orderId}`,
          paymentMethod: req.paymentMethod,
        },
        req.call,
      ));
    } catch (err) {
      // The order keeps what was reserved for it, whatever becomes of it (a retry, or FAILED).
      await orders.setReserved(deps.pool, orderId, reserved.currency, reserved.totalMinor, reserved.lines);
      const refusal = storedRefusalOf(err);
      if (refusal) {
        await deps.upstream.reservations
          .releaseReservation({ reservationId: orderId, reason: `payment refused: ${refusal.message}`.slice(0, 200) }, req.call)
          .catch((releaseErr: unknown) => deps.log.warn({ err: releaseErr, orderId }, "releasing the reservation of a refused payment failed; its hold will expire"));
      }
      await refuse(deps, orderId, err);
      throw err;
    }
    if (!intent) throw new Error("payments answered no payment intent");
    const started = await orders.setReservedAndPaymentStarted(deps.pool, orderId, intent.paymentIntentId, {
      currency: reserved.currency,
      total: reserved.totalMinor,
      lines: reserved.lines,
    });
    if (!started) throw new Error(`order ${orderId} vanished`);
    return started;
  } finally {
    done?.();
  }
}

/** A stored refusal (runtime idempotency.ts) fails the order for good, kept for retries; anything else leaves it to a retry. */
async function refuse(deps: SaleDeps, orderId: string, err: unknown) {
  const refusal = storedRefusalOf(err);
  if (!refusal) return;
  const code = refusal.info?.reason ?? kindCodeName(refusal.kind);
  await inTransaction(deps.pool, async (tx) => {
    const row = await orders.byId(tx, orderId, { forUpdate: true });
    if (!row || row.state !== "created") return;
    await orders.setFailed(tx, orderId, { code, message: refusal.message, kind: refusal.kind });
    const full = await orders.full(tx, orderId);
    await publish.failed(tx, toOrder(full!));
  });
}

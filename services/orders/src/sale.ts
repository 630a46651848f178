// A sale as CreateOrder runs it: claim the kiosk's idempotency key with a new order,
// reserve at catalog (reservation id = order id), start the payment at payments
// (idempotency key derived from the order id), answer PENDING_PAYMENT. Every step is
// idempotent, so a retry of an interrupted sale carries on where it stopped; the
// completion worker (completion.ts) finishes it when the payment's outcome arrives.
import { randomUUID } from "node:crypto";
import { Code, ConnectError, type CallOptions } from "@connectrpc/connect";
import type { ReservedSeat, ReservationItem } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import type { Order } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { ErrorInfoSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { inTransaction, invalidArgument, type Logger, type Pool } from "@adminkiosk/runtime";
import { publish } from "./events.js";
import { toOrder } from "./messages.js";
import { orders, type OrderRow } from "./store.js";
import type { Upstream } from "./upstream.js";

export interface SaleDeps {
  pool: Pool;
  upstream: Upstream;
  log: Logger;
  holdSeconds: number;
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

/** Refusals that answer the request itself: kept with the order, so a retry gets them again. */
const refusals = new Set([Code.InvalidArgument, Code.NotFound, Code.AlreadyExists, Code.FailedPrecondition, Code.ResourceExhausted, Code.PermissionDenied, Code.OutOfRange]);

export const paymentKeyFor = (orderId: string) => `order-${orderId}`;

export async function createSale(deps: SaleDeps, req: SaleRequest): Promise<Order> {
  const { pool } = deps;
  let row = await orders.insert(pool, { id: randomUUID(), kioskId: req.kioskId, key: req.idempotencyKey, hash: req.requestHash });
  if (!row) {
    row = await orders.byKey(pool, req.kioskId, req.idempotencyKey);
    if (!row) throw new ConnectError("the order for this idempotency key is being created; retry", Code.Aborted);
    if (!row.request_hash.equals(req.requestHash)) throw invalidArgument("idempotency_key", "was already used for a different order by this kiosk");
    if (row.failure_rpc_code !== null) throw new ConnectError(row.failure_message, row.failure_rpc_code as Code);
    if (row.state !== "created") return answer(pool, row.id);
    // An earlier attempt stopped half-way (or runs right now): carry on; each step is idempotent.
  }
  await reserve(deps, row, req);
  await startPayment(deps, row.id, req);
  return answer(pool, row.id);
}

async function answer(pool: Pool, id: string): Promise<Order> {
  const full = await orders.full(pool, id);
  if (!full) throw new ConnectError(`order ${id} vanished`, Code.Internal);
  return toOrder(full);
}

async function reserve(deps: SaleDeps, row: OrderRow, req: SaleRequest) {
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
  if (!reservation) throw new ConnectError("catalog answered no reservation", Code.Internal);
  const lines = [
    ...reservation.items.map((i: ReservationItem) => ({ sku: i.sku, quantity: i.quantity.toString(), event_id: "", seat_id: "", tier_id: "", unit_price_minor: i.unitPriceMinor.toString(), tax_rate_basis_points: i.taxRateBasisPoints })),
    ...reservation.seats.map((s: ReservedSeat) => ({ sku: "", quantity: "1", event_id: s.eventId, seat_id: s.seatId, tier_id: s.tierId, unit_price_minor: s.priceMinor.toString(), tax_rate_basis_points: 0 })),
  ].map((l, i) => ({ ...l, line_number: i + 1 }));
  await inTransaction(deps.pool, (tx) => orders.setReserved(tx, row.id, reservation.currency, reservation.totalMinor, lines));
}

async function startPayment(deps: SaleDeps, orderId: string, req: SaleRequest) {
  const order = await orders.byId(deps.pool, orderId);
  if (!order) throw new ConnectError(`order ${orderId} vanished`, Code.Internal);
  let intent;
  try {
    ({ paymentIntent: intent } = await deps.upstream.payments.createPaymentIntent(
      {
        idempotencyKey: paymentKeyFor(orderId),
        orderId,
        kioskId: order.kiosk_id,
        amountMinor: BigInt(order.total_minor),
        currency: order.currency,
        description: `Order ${orderId}`,
        paymentMethod: req.paymentMethod,
      },
      req.call,
    ));
  } catch (err) {
    const e = ConnectError.from(err);
    if (refusals.has(e.code)) {
      await deps.upstream.reservations
        .releaseReservation({ reservationId: orderId, reason: `payment refused: ${e.rawMessage}`.slice(0, 200) }, req.call)
        .catch((releaseErr: unknown) => deps.log.warn({ err: releaseErr, orderId }, "releasing the reservation of a refused payment failed; its hold will expire"));
    }
    await refuse(deps, orderId, err);
    throw err;
  }
  if (!intent) throw new ConnectError("payments answered no payment intent", Code.Internal);
  await orders.setPaymentStarted(deps.pool, orderId, intent.paymentIntentId);
}

/** A refusal fails the order for good (kept for retries); anything else leaves it to a retry. */
async function refuse(deps: SaleDeps, orderId: string, err: unknown) {
  const e = ConnectError.from(err);
  if (!refusals.has(e.code)) return;
  const code = e.findDetails(ErrorInfoSchema)[0]?.reason ?? Code[e.code];
  await inTransaction(deps.pool, async (tx) => {
    const row = await orders.byId(tx, orderId, { forUpdate: true });
    if (!row || row.state !== "created") return;
    await orders.setFailed(tx, orderId, { code, message: e.rawMessage, rpcCode: e.code });
    const full = await orders.full(tx, orderId);
    await publish.failed(tx, toOrder(full!));
  });
}

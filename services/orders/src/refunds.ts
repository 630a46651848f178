// Operators' refunds of completed orders: full, or by lines. The refund is recorded
// first (the lines' refunded quantities are taken under the order's lock, so two
// refunds cannot together refund more than was sold), then refunded at payments under
// a key derived from the refund (a retry refunds once), then the products go back to
// the kiosk's stock at catalog (Restock, "refund of order …") and refunded tickets are
// void. A retry of an interrupted refund with the same key carries on.
import type { CallOptions } from "@connectrpc/connect";
import type { Order } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { failedPrecondition, inTransaction, invalid, notFound, refusalOf, requireSameRequest, type Logger, type Pool } from "@adminkiosk/runtime";
import { publish } from "./events.js";
import { toOrder } from "./messages.js";
import { orders, refunds, tickets, type RefundRow } from "./store.js";
import type { Upstream } from "./upstream.js";

export interface RefundDeps {
  pool: Pool;
  upstream: Upstream;
  log: Logger;
}

export interface RefundRequest {
  scope: string;
  requestedBy: string;
  idempotencyKey: string;
  requestHash: Buffer;
  orderId: string;
  lines: { lineNumber: number; quantity: bigint }[];
  reason: string;
  /** Options for the calls to payments and catalog (runtime callOptions: request id, deadline). */
  call: CallOptions;
}

export async function refundOrder(deps: RefundDeps, req: RefundRequest): Promise<{ order: Order; refundMinor: bigint }> {
  const { pool } = deps;
  const sameRequest = (prior: RefundRow) => {
    requireSameRequest(prior.request_hash, req.requestHash);
    return prior;
  };
  const existing = await refunds.byKey(pool, req.scope, req.idempotencyKey);
  let refund: RefundRow;
  if (existing) {
    refund = sameRequest(existing);
  } else {
    refund = await inTransaction(pool, async (tx) => {
      const full = await orders.full(tx, req.orderId, { forUpdate: true });
      if (!full) throw notFound(`order ${req.orderId} not found`);
      // A concurrent retry with this key may have recorded the refund while we waited for the lock.
      const raced = await refunds.byKey(tx, req.scope, req.idempotencyKey);
      if (raced) return sameRequest(raced);
      const { row, lines } = full;
      if (row.state !== "completed" && row.state !== "partially_refunded")
        throw failedPrecondition(`order ${req.orderId} is ${row.state.replace("_", " ")}; only completed orders can be refunded`);
      const wanted =
        req.lines.length > 0
          ? req.lines.map((l, i) => {
              const line = lines.find((x) => x.line_number === l.lineNumber);
              if (!line) throw invalid(`lines[${i}].line_number`, `order ${req.orderId} has no line ${l.lineNumber}`);
              const left = BigInt(line.quantity) - BigInt(line.refunded_quantity);
              if (l.quantity < 1n || l.quantity > left) throw invalid(`lines[${i}].quantity`, `must be between 1 and ${left} (not yet refunded on line ${l.lineNumber})`);
              return { line, quantity: l.quantity };
            })
          : lines.map((line) => ({ line, quantity: BigInt(line.quantity) - BigInt(line.refunded_quantity) })).filter((w) => w.quantity > 0n);
      if (wanted.length === 0) throw failedPrecondition(`order ${req.orderId} is refunded in full already`);
      if (new Set(wanted.map((w) => w.line.line_number)).size !== wanted.length) throw invalid("lines", "must name each line once");
      const amount = wanted.reduce((sum, w) => sum + w.quantity * BigInt(w.line.unit_price_minor), 0n);
      for (const w of wanted)
        await tx.query("UPDATE order_lines SET refunded_quantity = refunded_quantity + $3 WHERE order_id = $1 AND line_number = $2", [req.orderId, w.line.line_number, w.quantity]);
      await tx.query("UPDATE orders SET refunded_minor = refunded_minor + $2, updated_at = now() WHERE id = $1", [req.orderId, amount]);
      return refunds.insert(tx, {
        scope: req.scope,
        idempotency_key: req.idempotencyKey,
        request_hash: req.requestHash,
        order_id: req.orderId,
        amount_minor: amount.toString(),
        lines: wanted.map((w) => ({ line: w.line.line_number, quantity: w.quantity.toString() })),
        reason: req.reason,
        requested_by: req.requestedBy,
      });
    });
  }
  if (refund.state === "requested") await carryOut(deps, refund, req);
  const full = await orders.full(pool, refund.order_id);
  return { order: toOrder(full!), refundMinor: BigInt(refund.amount_minor) };
}

async function carryOut(deps: RefundDeps, refund: RefundRow, req: RefundRequest) {
  const { pool, upstream } = deps;
  const order = await orders.full(pool, refund.order_id);
  if (!order) throw notFound(`order ${refund.order_id} not found`);
  const caller = req.call;
  // A sale paid in cash offline (docs/offline.md) has no payment to refund: the money is
  // handed back at the kiosk; the record, the restock and the void tickets follow as for a card.
  if (order.row.payment_intent_id !== "") {
    try {
      await upstream.payments.refundPayment(
        { idempotencyKey: `order-refund-${refund.id}`, paymentIntentId: order.row.payment_intent_id, amountMinor: BigInt(refund.amount_minor), reason: `order ${refund.order_id}: ${refund.reason}`.slice(0, 200) },
        caller,
      );
    } catch (err) {
      const refusal = refusalOf(err);
      if (refusal && (refusal.kind === "failedPrecondition" || refusal.kind === "invalid" || refusal.kind === "outOfRange")) {
        // payments refused: undo the record, so the order is as it was.
        await inTransaction(pool, async (tx) => {
          await orders.byId(tx, refund.order_id, { forUpdate: true });
          for (const l of refund.lines)
            await tx.query("UPDATE order_lines SET refunded_quantity = refunded_quantity - $3 WHERE order_id = $1 AND line_number = $2", [refund.order_id, l.line, l.quantity]);
          await tx.query("UPDATE orders SET refunded_minor = refunded_minor - $2 WHERE id = $1", [refund.order_id, refund.amount_minor]);
          await refunds.remove(tx, refund.id);
        });
        throw failedPrecondition(`payments refused the refund: ${refusal.message}`);
      }
      throw err;
    }
  }
  // Products go back on the kiosk's shelf. Seats stay sold: catalog cannot sell a sold
  // seat again, and the void ticket no longer admits.
  const byLine = new Map(order.lines.map((l) => [l.line_number, l]));
  const restocks = refund.lines.map((l) => ({ line: byLine.get(l.line)!, quantity: BigInt(l.quantity) })).filter((r) => r.line.sku !== "");
  for (const r of restocks)
    await upstream.inventory.restock({ kioskId: order.row.kiosk_id, sku: r.line.sku, quantity: r.quantity, reason: `refund of order ${refund.order_id}` }, caller);
  await inTransaction(pool, async (tx) => {
    const full = await orders.full(tx, refund.order_id, { forUpdate: true });
    if (!full) return;
    const seats = refund.lines.map((l) => byLine.get(l.line)!).filter((l) => l.seat_id !== "");
    await tickets.voidSeats(tx, refund.order_id, seats.map((s) => ({ eventId: s.event_id, seatId: s.seat_id })));
    const refundedAll = full.lines.every((l) => l.refunded_quantity === l.quantity);
    await tx.query("UPDATE orders SET state = $2, updated_at = now() WHERE id = $1", [refund.order_id, refundedAll ? "refunded" : "partially_refunded"]);
    await refunds.markSucceeded(tx, refund.id);
    await publish.refunded(tx, toOrder((await orders.full(tx, refund.order_id))!), BigInt(refund.amount_minor), refund.reason);
  });
}

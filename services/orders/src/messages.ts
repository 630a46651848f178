// orders' rows as the contract's messages.
import { create, fromBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { OrderLineSchema, OrderSchema, OrderState, ReceiptSchema, type Order, type OrderLine } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import type { FullOrder, LineRow, OrderStateName } from "./store.js";

export const orderStates: Record<OrderStateName, OrderState> = {
  created: OrderState.CREATED,
  pending_payment: OrderState.PENDING_PAYMENT,
  completed: OrderState.COMPLETED,
  failed: OrderState.FAILED,
  partially_refunded: OrderState.PARTIALLY_REFUNDED,
  refunded: OrderState.REFUNDED,
};

export const stateFromEnum = (state: OrderState) => (Object.keys(orderStates) as OrderStateName[]).find((name) => orderStates[name] === state);

export function toLine(l: LineRow): OrderLine {
  const quantity = BigInt(l.quantity);
  const unit = BigInt(l.unit_price_minor);
  return create(OrderLineSchema, {
    lineNumber: l.line_number,
    sku: l.sku,
    quantity,
    eventId: l.event_id,
    seatId: l.seat_id,
    tierId: l.tier_id,
    unitPriceMinor: unit,
    taxRateBasisPoints: l.tax_rate_basis_points,
    totalMinor: quantity * unit,
    refundedQuantity: BigInt(l.refunded_quantity),
  });
}

export function toOrder({ row, lines, tickets }: FullOrder): Order {
  return create(OrderSchema, {
    orderId: row.id,
    kioskId: row.kiosk_id,
    state: orderStates[row.state],
    lines: lines.map(toLine),
    totalMinor: BigInt(row.total_minor),
    currency: row.currency,
    paymentIntentId: row.payment_intent_id,
    failureCode: row.failure_code,
    failureMessage: row.failure_message,
    tickets: tickets.map((t) => ({ ticketId: t.id, eventId: t.event_id, seatId: t.seat_id, qrPayload: t.qr_payload, void: t.void })),
    receipt: row.receipt ? fromBinary(ReceiptSchema, row.receipt) : undefined,
    refundedMinor: BigInt(row.refunded_minor),
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
    completeTime: row.completed_at ? timestampFromDate(row.completed_at) : undefined,
  });
}

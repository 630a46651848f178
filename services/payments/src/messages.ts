// Rows as the contract's messages.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  PaymentIntentSchema,
  PaymentIntentState,
  RefundSchema,
  RefundState,
  type PaymentIntent,
  type Refund,
} from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import type { IntentRow, IntentState, RefundRow } from "./store.js";

export const intentStates: Record<IntentState, PaymentIntentState> = {
  requires_payment: PaymentIntentState.REQUIRES_PAYMENT,
  processing: PaymentIntentState.PROCESSING,
  succeeded: PaymentIntentState.SUCCEEDED,
  failed: PaymentIntentState.FAILED,
  canceled: PaymentIntentState.CANCELED,
  partially_refunded: PaymentIntentState.PARTIALLY_REFUNDED,
  refunded: PaymentIntentState.REFUNDED,
};

const refundStates: Record<RefundRow["state"], RefundState> = {
  pending: RefundState.PENDING,
  succeeded: RefundState.SUCCEEDED,
  failed: RefundState.FAILED,
};

export function toPaymentIntent(row: IntentRow): PaymentIntent {
  return create(PaymentIntentSchema, {
    paymentIntentId: row.id,
    orderId: row.order_id,
    kioskId: row.kiosk_id,
    amountMinor: BigInt(row.amount_minor),
    currency: row.currency,
    state: intentStates[row.state],
    refundedMinor: BigInt(row.refunded_minor),
    description: row.description,
    failureCode: row.failure_code,
    failureMessage: row.failure_message,
    cancellationReason: row.cancellation_reason,
    providerChargeId: row.provider_charge_id ?? "",
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
  });
}

export function toRefund(row: RefundRow): Refund {
  return create(RefundSchema, {
    refundId: row.id,
    paymentIntentId: row.intent_id,
    amountMinor: BigInt(row.amount_minor),
    currency: row.currency,
    reason: row.reason,
    state: refundStates[row.state],
    failureCode: row.failure_code,
    requestedBy: row.requested_by,
    providerRefundId: row.provider_refund_id ?? "",
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
  });
}

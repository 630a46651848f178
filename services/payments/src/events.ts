// What payments publishes for orders (and notifications, ai): one event per outcome of
// an intent, on payments.intent.<payment_intent_id>.<kind> in the stream PAYMENTS,
// written to the outbox in the transaction of the change.
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import {
  PaymentCanceledEventSchema,
  PaymentFailedEventSchema,
  PaymentRefundedEventSchema,
  PaymentSucceededEventSchema,
} from "@adminkiosk/proto/adminkiosk/payments/v1/events_pb";
import { enqueueEvent, paymentsSubjects, type OutboxEvent, type PoolClient } from "@adminkiosk/runtime";
import { toPaymentIntent, toRefund } from "./messages.js";
import type { IntentRow, RefundRow } from "./store.js";

export const paymentsStream = paymentsSubjects.stream;


/** The succeeded event of an intent (written with its change: store.ts succeedWithEvent). */
export const succeededEvent = (intent: IntentRow): OutboxEvent<typeof PaymentSucceededEventSchema> => ({
  subject: paymentsSubjects.intent(intent.id, "succeeded"),
  schema: PaymentSucceededEventSchema,
  message: create(PaymentSucceededEventSchema, { paymentIntent: toPaymentIntent(intent), time: timestampNow() }),
});

export const publish = {
  failed: (tx: PoolClient, intent: IntentRow) =>
    enqueueEvent(tx, paymentsSubjects.intent(intent.id, "failed"), PaymentFailedEventSchema, create(PaymentFailedEventSchema, {
      paymentIntent: toPaymentIntent(intent),
      failureCode: intent.failure_code,
      failureMessage: intent.failure_message,
      time: timestampNow(),
    })),
  canceled: (tx: PoolClient, intent: IntentRow) =>
    enqueueEvent(tx, paymentsSubjects.intent(intent.id, "canceled"), PaymentCanceledEventSchema, create(PaymentCanceledEventSchema, {
      paymentIntent: toPaymentIntent(intent),
      reason: intent.cancellation_reason,
      time: timestampNow(),
    })),
  refunded: (tx: PoolClient, intent: IntentRow, refund: RefundRow) =>
    enqueueEvent(tx, paymentsSubjects.intent(intent.id, "refunded"), PaymentRefundedEventSchema, create(PaymentRefundedEventSchema, {
      paymentIntent: toPaymentIntent(intent),
      refund: toRefund(refund),
      time: timestampNow(),
    })),
};

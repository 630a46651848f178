// What orders publishes (stream ORDERS, through the outbox, in the transaction of the
// change): orders.order.<order_id>.created|completed|failed|refunded.
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { OrderCompletedEventSchema, OrderCreatedEventSchema, OrderFailedEventSchema, OrderRefundedEventSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/events_pb";
import type { Order } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { enqueueEvent, ordersSubjects, type OutboxEvent, type PoolClient } from "@adminkiosk/runtime";

export const ordersStream = ordersSubjects.stream;


/** An order's created event, for a statement that writes the order with it (store.ts insertWithEvent). */
export const createdEvent = (order: Order): OutboxEvent<typeof OrderCreatedEventSchema> => ({
  subject: ordersSubjects.order(order.orderId, "created"),
  schema: OrderCreatedEventSchema,
  message: create(OrderCreatedEventSchema, { order, time: timestampNow() }),
});

/** An order's completed event, for a statement that completes the order with it (store.ts completeWithEvent). */
export const completedEvent = (order: Order): OutboxEvent<typeof OrderCompletedEventSchema> => ({
  subject: ordersSubjects.order(order.orderId, "completed"),
  schema: OrderCompletedEventSchema,
  message: create(OrderCompletedEventSchema, { order, time: timestampNow() }),
});

export const publish = {
  created: (tx: PoolClient, order: Order) =>
    enqueueEvent(tx, ordersSubjects.order(order.orderId, "created"), OrderCreatedEventSchema, create(OrderCreatedEventSchema, { order, time: timestampNow() })),
  completed: (tx: PoolClient, order: Order) =>
    enqueueEvent(tx, ordersSubjects.order(order.orderId, "completed"), OrderCompletedEventSchema, create(OrderCompletedEventSchema, { order, time: timestampNow() })),
  failed: (tx: PoolClient, order: Order) =>
    enqueueEvent(tx, ordersSubjects.order(order.orderId, "failed"), OrderFailedEventSchema, create(OrderFailedEventSchema, { order, failureCode: order.failureCode, time: timestampNow() })),
  refunded: (tx: PoolClient, order: Order, refundMinor: bigint, reason: string) =>
    enqueueEvent(tx, ordersSubjects.order(order.orderId, "refunded"), OrderRefundedEventSchema, create(OrderRefundedEventSchema, { order, refundMinor, reason, time: timestampNow() })),
};

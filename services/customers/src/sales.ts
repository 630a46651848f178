// Completed orders from stream ORDERS (the runtime's durable consumer: each message applied once
// with its inbox row, so a redelivery grants nothing twice): kept as the sale a member's points
// and purchase history come from, and the order reviews are checked against.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { OrderCompletedEventSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/events_pb";
import { decodeEvent, ordersSubjects, startConsumer, type DurableConsumer, type Logger, type NatsConnection, type Pool, type PoolClient } from "@adminkiosk/runtime";
import type { Order } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { grantPoints, lockOrder } from "./members.js";

/** Records the completed sale and grants its member's points if a member is attached. */
export async function recordSale(tx: PoolClient, order: Order, completedAt: Date, minorPerPoint: number): Promise<void> {
  await lockOrder(tx, order.orderId);
  const lines = order.lines
    .filter((l) => l.sku && !l.seatId)
    .map((l) => ({ sku: l.sku, quantity: l.quantity.toString(), total_minor: l.totalMinor.toString() }));
  // An order completes once; the same event again (another Nats-Msg-Id) changes nothing.
  const { rowCount } = await tx.query(
    `INSERT INTO sales (order_id, kiosk_id, total_minor, currency, lines, completed_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id) DO NOTHING`,
    [order.orderId, order.kioskId, order.totalMinor.toString(), order.currency, JSON.stringify(lines), completedAt],
  );
  if (rowCount) await grantPoints(tx, order.orderId, minorPerPoint);
}

export function startOrdersConsumer(o: { pool: Pool; nats: NatsConnection | Promise<NatsConnection>; log: Logger; durable: string; since?: Date; minorPerPoint: number }): DurableConsumer {
  return startConsumer({
    pool: o.pool,
    nats: o.nats,
    log: o.log,
    // orders creates the stream; until it has, the consumer retries (logged once).
    stream: ordersSubjects.stream.name,
    durable: o.durable,
    filter: ordersSubjects.allOrders,
    since: o.since,
    async apply(tx, msg) {
      if (ordersSubjects.parseOrder(msg.subject)?.kind !== "completed") return;
      const { order, time } = decodeEvent(OrderCompletedEventSchema, msg);
      if (!order?.orderId || !order.kioskId) return;
      const completedAt = order.completeTime ? timestampDate(order.completeTime) : time ? timestampDate(time) : new Date();
      await recordSale(tx, order, completedAt, o.minorPerPoint);
    },
  });
}

/** Sales no member was attached to, older than the match window, go (a review can then no longer be written for them). */
export async function pruneUnattachedSales(pool: Pool, windowMs: number): Promise<void> {
  await pool.query(
    `DELETE FROM sales s WHERE received_at < now() - make_interval(secs => $1::double precision / 1000)
     AND NOT EXISTS (SELECT 1 FROM member_orders mo WHERE mo.order_id = s.order_id)`,
    [windowMs],
  );
}

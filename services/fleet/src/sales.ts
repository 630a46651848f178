// A small projection of commerce into fleet, for the query language's sales_1h, sales_24h
// and revenue_24h: every completed order from stream ORDERS (orders' outbox) as one row,
// kept two days; failed orders too (kiosk_order_failures), for the rollout gates' payment
// failure rate and conversion. The runtime's durable consumer applies each message once (its
// inbox row in the same transaction); a repeated order id changes nothing. Each new row is
// also added to the kiosk's counts per time bucket (kiosk_facts, facts.ts) for rollout gates.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { OrderCompletedEventSchema, OrderFailedEventSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/events_pb";
import { addFacts } from "./facts.js";
import { decodeEvent, ordersSubjects, startConsumer, type DurableConsumer, type Logger, type NatsConnection, type Pool } from "@adminkiosk/runtime";

export const salesKeptHours = 48;

export function startSalesProjection(o: {
  pool: Pool;
  nats: NatsConnection | Promise<NatsConnection>;
  log: Logger;
  durable: string;
  sweepMs?: number;
  /** kiosk_facts' bucket width, and the SKU whose units are compared with ai's forecast (ROLLOUT_AUTO_SKU). */
  facts: { bucketMs: number; forecastSku: string };
}): { consumer: DurableConsumer; stop(): Promise<void> } {
  const consumer = startConsumer({
    pool: o.pool,
    nats: o.nats,
    log: o.log,
    // orders creates the stream; until it has, the consumer retries (logged once).
    stream: ordersSubjects.stream.name,
    durable: o.durable,
    filter: ordersSubjects.allOrders,
    async apply(tx, msg) {
      if (msg.subject.endsWith(".failed")) {
        // Failed orders feed the rollout gates' payment failure rate and conversion.
        const { order, failureCode, time } = decodeEvent(OrderFailedEventSchema, msg);
        if (!order?.kioskId) return;
        const at = time ? timestampDate(time) : new Date(msg.publishedMs ?? Date.now());
        if (at.getTime() < Date.now() - salesKeptHours * 3600_000) return;
        const code = failureCode || order.failureCode;
        const { rowCount } = await tx.query("INSERT INTO kiosk_order_failures (order_id, kiosk_id, failed_at, failure_code) VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO NOTHING", [
          order.orderId,
          order.kioskId,
          at,
          code,
        ]);
        if (rowCount) await addFacts(tx, o.facts.bucketMs, [{ kioskId: order.kioskId, at, failed_orders: 1, payment_failures: code === "HOLD_EXPIRED" ? 0 : 1 }]);
        return;
      }
      if (!msg.subject.endsWith(".completed")) return;
      const { order, time } = decodeEvent(OrderCompletedEventSchema, msg);
      if (!order?.kioskId) return;
      const at = order.completeTime ? timestampDate(order.completeTime) : time ? timestampDate(time) : new Date(msg.publishedMs ?? Date.now());
      if (at.getTime() < Date.now() - salesKeptHours * 3600_000) return;
      const { rowCount } = await tx.query(
        "INSERT INTO kiosk_sales (order_id, kiosk_id, completed_at, total_minor, currency) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id) DO NOTHING",
        [order.orderId, order.kioskId, at, order.totalMinor.toString(), order.currency],
      );
      const units = order.lines.filter((l) => l.sku === o.facts.forecastSku).reduce((a, l) => a + Number(l.quantity), 0);
      if (rowCount) await addFacts(tx, o.facts.bucketMs, [{ kioskId: order.kioskId, at, sales: 1, forecast_units: units }]);
    },
  });
  const sweep = setInterval(() => {
    o.pool
      .query(
        `WITH s AS (DELETE FROM kiosk_sales WHERE completed_at < now() - interval '${salesKeptHours} hours'),
              f AS (DELETE FROM kiosk_facts WHERE bucket < now() - interval '${salesKeptHours + 1} hours')
         DELETE FROM kiosk_order_failures WHERE failed_at < now() - interval '${salesKeptHours} hours'`,
      )
      .catch((err: unknown) => o.log.warn({ err }, "could not drop old sales"));
  }, o.sweepMs ?? 600_000);
  sweep.unref();
  return {
    consumer,
    async stop() {
      clearInterval(sweep);
      await consumer.stop();
    },
  };
}

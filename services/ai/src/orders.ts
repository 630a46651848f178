// Completed orders from stream ORDERS into ai's sales history and order baskets (the runtime's durable
// consumer: one transaction per message with its inbox row, so a redelivery adds nothing twice).
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { OrderCompletedEventSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/events_pb";
import { decodeEvent, ordersSubjects, startConsumer, type DurableConsumer, type Logger, type NatsConnection, type Pool } from "@adminkiosk/runtime";
import { baskets } from "./recommend.js";
import { sales } from "./store.js";

export function startOrdersConsumer(pool: Pool, nats: NatsConnection | Promise<NatsConnection>, log: Logger, durable = "ai-orders"): DurableConsumer {
  return startConsumer({
    pool,
    nats,
    log,
    // orders creates the stream; until it has, the consumer retries (logged once).
    stream: ordersSubjects.stream.name,
    durable,
    filter: ordersSubjects.allOrders,
    async apply(tx, msg) {
      if (!msg.subject.endsWith(".completed")) return;
      const { order, time } = decodeEvent(OrderCompletedEventSchema, msg);
      if (!order) return;
      const when = order.completeTime ? timestampDate(order.completeTime) : time ? timestampDate(time) : new Date();
      const day = when.toISOString().slice(0, 10);
      const basket: string[] = [];
      for (const line of order.lines) {
        // Ticket lines (seats) are not stock: the demand model forecasts products.
        if (!line.sku || line.seatId || line.quantity <= 0n || line.unitPriceMinor <= 0n) continue;
        basket.push(line.sku);
        await sales.addSale(tx, order.kioskId, line.sku, day, Number(line.quantity), Number(line.unitPriceMinor), when.getUTCHours());
      }
      // The order's products as one basket ("bought together" recommendations).
      await baskets.record(tx, [{ orderId: order.orderId, kioskId: order.kioskId, skus: basket, completedAt: when }], "orders");
    },
  });
}

// A projection of catalog's stock into fleet, for the query language's stock("SKU"): each
// kiosk × SKU's latest level from stream CATALOG (catalog.stock.<kiosk>.level, catalog's
// outbox, published with every change of on-hand units or threshold). Each event carries the
// whole level, so applying one again changes nothing, and one older than the row (a late
// redelivery) is ignored; the runtime's durable consumer also applies each message once
// (its inbox row in the same transaction).
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { StockLevelChangedEventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/events_pb";
import { catalogSubjects, decodeEvent, startConsumer, type DurableConsumer, type Logger, type NatsConnection, type Pool } from "@adminkiosk/runtime";

export function startStockProjection(o: { pool: Pool; nats: NatsConnection | Promise<NatsConnection>; log: Logger; durable: string }): { consumer: DurableConsumer; stop(): Promise<void> } {
  const consumer = startConsumer({
    pool: o.pool,
    nats: o.nats,
    log: o.log,
    // catalog creates the stream; until it has, the consumer retries (logged once).
    stream: catalogSubjects.stream.name,
    durable: o.durable,
    filter: catalogSubjects.allStockLevels,
    async apply(tx, msg) {
      const { level } = decodeEvent(StockLevelChangedEventSchema, msg);
      if (!level?.kioskId || !level.sku) return;
      const at = level.updateTime ? timestampDate(level.updateTime) : new Date(msg.publishedMs ?? Date.now());
      await tx.query(
        `INSERT INTO kiosk_stock (kiosk_id, sku, on_hand, available, low_stock_threshold, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (kiosk_id, sku) DO UPDATE SET on_hand = EXCLUDED.on_hand, available = EXCLUDED.available,
           low_stock_threshold = EXCLUDED.low_stock_threshold, updated_at = EXCLUDED.updated_at
         WHERE kiosk_stock.updated_at <= EXCLUDED.updated_at`,
        [level.kioskId, level.sku, level.onHand.toString(), level.available.toString(), level.lowStockThreshold.toString(), at],
      );
    },
  });
  return { consumer, stop: () => consumer.stop() };
}

/** The SKUs fleet knows stock of, for completion: a skip scan of the (sku, …) index, one probe per SKU. */
export async function knownSkus(pool: Pool, max = 500): Promise<string[]> {
  const { rows } = await pool.query<{ sku: string }>(
    `WITH RECURSIVE s(sku) AS (
       (SELECT sku FROM kiosk_stock ORDER BY sku LIMIT 1)
       UNION ALL
       SELECT (SELECT t.sku FROM kiosk_stock t WHERE t.sku > s.sku ORDER BY t.sku LIMIT 1) FROM s WHERE s.sku IS NOT NULL
     ) SELECT sku FROM s WHERE sku IS NOT NULL LIMIT $1`,
    [max],
  );
  return rows.map((r) => r.sku);
}

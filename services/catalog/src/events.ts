// What catalog publishes on NATS (stream CATALOG, through its outbox): low and
// replenished stock per kiosk, every restock, every stock level change (on hand or
// threshold), and reservations that expired unpaid.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { ReservationSchema, StockLevelSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { ReservationExpiredEventSchema, StockLevelChangedEventSchema, StockLowEventSchema, StockReplenishedEventSchema, StockRestockedEventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/events_pb";
import { catalogSubjects, enqueueEvent, enqueueEvents, type PoolClient } from "@adminkiosk/runtime";

export const catalogStream = catalogSubjects.stream;

export interface StockChange {
  kioskId: string;
  sku: string;
  onHandBefore: bigint;
  thresholdBefore: bigint;
  onHand: bigint;
  threshold: bigint;
}

/** Publishes (in the caller's transaction) when a change moves stock across its threshold. */
export async function publishStockCrossing(tx: PoolClient, c: StockChange): Promise<"low" | "replenished" | undefined> {
  const wasLow = c.onHandBefore <= c.thresholdBefore;
  const isLow = c.onHand <= c.threshold;
  if (wasLow === isLow) return undefined;
  const event = { kioskId: c.kioskId, sku: c.sku, onHand: c.onHand, lowStockThreshold: c.threshold, time: timestampNow() };
  if (isLow) await enqueueEvent(tx, catalogSubjects.stockLow(c.kioskId), StockLowEventSchema, create(StockLowEventSchema, event));
  else await enqueueEvent(tx, catalogSubjects.stockReplenished(c.kioskId), StockReplenishedEventSchema, create(StockReplenishedEventSchema, event));
  return isLow ? "low" : "replenished";
}

/** The SKU's level at the kiosks after a change of on-hand units or thresholds (in the caller's transaction), one statement. */
export async function publishStockLevels(tx: PoolClient, levels: MessageInitShape<typeof StockLevelSchema>[]) {
  await enqueueEvents(
    tx,
    StockLevelChangedEventSchema,
    levels.map((level) => ({ subject: catalogSubjects.stockLevel(level.kioskId ?? ""), message: create(StockLevelChangedEventSchema, { level }) })),
  );
}

/** Every restock (in the caller's transaction): customers' back-in-stock requests wait for it. */
export async function publishRestocked(tx: PoolClient, r: { kioskId: string; sku: string; quantity: bigint; onHand: bigint; reserved: bigint }) {
  const event = create(StockRestockedEventSchema, { kioskId: r.kioskId, sku: r.sku, quantity: r.quantity, onHand: r.onHand, available: r.onHand - r.reserved, time: timestampNow() });
  await enqueueEvent(tx, catalogSubjects.stockRestocked(r.kioskId), StockRestockedEventSchema, event);
}

/** The expired reservations' events (in the caller's transaction), in one statement. */
export async function publishReservationsExpired(tx: PoolClient, reservations: MessageInitShape<typeof ReservationSchema>[]) {
  await enqueueEvents(
    tx,
    ReservationExpiredEventSchema,
    reservations.map((reservation) => ({
      subject: catalogSubjects.reservationExpired(reservation.reservationId ?? ""),
      message: create(ReservationExpiredEventSchema, { reservation, expireTime: reservation.expireTime }),
    })),
  );
}

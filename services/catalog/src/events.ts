// What catalog publishes on NATS (stream CATALOG, through its outbox): low and
// replenished stock per kiosk, and reservations that expired unpaid.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { ReservationSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { ReservationExpiredEventSchema, StockLowEventSchema, StockReplenishedEventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/events_pb";
import { catalogSubjects, enqueueEvent, type PoolClient } from "@adminkiosk/runtime";

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

export async function publishReservationExpired(tx: PoolClient, reservation: MessageInitShape<typeof ReservationSchema>) {
  await enqueueEvent(
    tx,
    catalogSubjects.reservationExpired(reservation.reservationId ?? ""),
    ReservationExpiredEventSchema,
    create(ReservationExpiredEventSchema, { reservation, expireTime: reservation.expireTime }),
  );
}

// Buyers' ratings in recommendations (issue 22). customers publishes each moderation decision
// (customers.review.<id>.moderated on stream CUSTOMERS); ai keeps the newest per review
// (review_ratings, the runtime's durable consumer: one transaction per message with its inbox
// row, so a redelivery changes nothing) and recommend.ts multiplies a product's score by
//
//   mean_f    = approved ratings' mean for the product across the fleet      (N_f ratings)
//   mean_k    = (S_k + c · mean_f) / (N_k + c)                               (S_k, N_k: at the kiosk; c = ratingShrinkage)
//   factor    = 1 + ratingWeight · (mean_k − 3) / 2    when N_f ≥ minRatings, else 1
//
// so a product rated 5 everywhere scores ×1.5, one rated 1 ×0.5, one rated 3 (or with fewer
// than minRatings approved ratings) is unchanged; a kiosk's own ratings count for more the
// more it has. Pending and rejected reviews never count.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ReviewState } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { ReviewModeratedEventSchema } from "@adminkiosk/proto/adminkiosk/customers/v1/events_pb";
import { customersSubjects, decodeEvent, startConsumer, type DurableConsumer, type Logger, type NatsConnection, type Pool, type PoolClient } from "@adminkiosk/runtime";

/** Approved ratings a product needs (fleet-wide) before they move its score. */
export const minRatings = 3;
/** Pseudo-ratings at the fleet's mean mixed into a kiosk's own. */
export const ratingShrinkage = 3;
/** How far ratings move a score: ±ratingWeight at a mean of 5 or 1. */
export const ratingWeight = 0.5;

export interface RatingCounts {
  fleetCount: number;
  fleetSum: number;
  kioskCount: number;
  kioskSum: number;
}

export function ratingFactor(c: RatingCounts | undefined): number {
  if (!c || c.fleetCount < minRatings) return 1;
  const fleetMean = c.fleetSum / c.fleetCount;
  const mean = (c.kioskSum + ratingShrinkage * fleetMean) / (c.kioskCount + ratingShrinkage);
  return 1 + (ratingWeight * (mean - 3)) / 2;
}

/** Approved ratings per product, fleet-wide and at `kioskId`. */
export async function ratingCounts(db: Pool | PoolClient, kioskId: string): Promise<Map<string, RatingCounts>> {
  const { rows } = await db.query<{ sku: string; n: number; s: number; nk: number; sk: number }>(
    `SELECT sku, count(*)::int AS n, sum(rating)::int AS s, count(*) FILTER (WHERE kiosk_id = $1)::int AS nk, coalesce(sum(rating) FILTER (WHERE kiosk_id = $1), 0)::int AS sk
     FROM review_ratings WHERE approved GROUP BY sku`,
    [kioskId],
  );
  return new Map(rows.map((r) => [r.sku, { fleetCount: r.n, fleetSum: r.s, kioskCount: r.nk, kioskSum: r.sk }]));
}

export function startReviewConsumer(o: { pool: Pool; nats: NatsConnection | Promise<NatsConnection>; log: Logger; durable: string; since?: Date }): DurableConsumer {
  return startConsumer({
    pool: o.pool,
    nats: o.nats,
    log: o.log,
    // customers creates the stream; until it has, the consumer retries (logged once).
    stream: customersSubjects.stream.name,
    durable: o.durable,
    filter: customersSubjects.allReviews,
    since: o.since,
    async apply(tx, msg) {
      const e = decodeEvent(ReviewModeratedEventSchema, msg);
      if (!e.reviewId || !e.sku || e.rating < 1 || e.rating > 5) return;
      if (e.state !== ReviewState.APPROVED && e.state !== ReviewState.REJECTED) return;
      await tx.query(
        `INSERT INTO review_ratings (review_id, kiosk_id, sku, rating, approved, moderated_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (review_id) DO UPDATE SET approved = EXCLUDED.approved, rating = EXCLUDED.rating, moderated_at = EXCLUDED.moderated_at
         WHERE review_ratings.moderated_at <= EXCLUDED.moderated_at`,
        [e.reviewId, e.kioskId, e.sku, e.rating, e.state === ReviewState.APPROVED, e.time ? timestampDate(e.time) : new Date()],
      );
    },
  });
}

// Ratings and short reviews of a product bought at a kiosk: written by the kiosk for one of its
// own completed orders (the sale customers learned from orders' events) or by the buyer through
// the receipt's review link (a token notifications signed for the order), one per order and
// product, pending until an operator approves or rejects it. Each decision is published
// (customers.review.<id>.moderated, in the decision's transaction) for ai's recommendations.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ReviewModeratedEventSchema } from "@adminkiosk/proto/adminkiosk/customers/v1/events_pb";
import { ReviewState } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { customersSubjects, enqueueEvent, failedPrecondition, inTransaction, notFound, type Pool } from "@adminkiosk/runtime";

export interface ReviewRow {
  review_id: string;
  order_id: string;
  kiosk_id: string;
  sku: string;
  rating: number;
  text: string;
  state: "pending" | "approved" | "rejected";
  created_at: Date;
  moderated_at: Date | null;
  moderated_by: string;
}
const columns = "review_id, order_id, kiosk_id, sku, rating, text, state, created_at, moderated_at, moderated_by";

export async function submit(pool: Pool, r: { kioskId: string; orderId: string; sku: string; rating: number; text: string }): Promise<ReviewRow> {
  const { rows: sale } = await pool.query<{ kiosk_id: string; skus: string[] }>(
    "SELECT kiosk_id, ARRAY(SELECT l->>'sku' FROM jsonb_array_elements(lines) l) AS skus FROM sales WHERE order_id = $1",
    [r.orderId],
  );
  // Another kiosk's order is not this kiosk's to review; an order not (yet) completed has nothing to review.
  if (!sale[0] || sale[0].kiosk_id !== r.kioskId) throw notFound(`order ${r.orderId} not found among this kiosk's completed orders`);
  if (!sale[0].skus.includes(r.sku)) throw failedPrecondition(`sku: order ${r.orderId} has no ${r.sku}`);
  const { rows } = await pool.query<ReviewRow>(
    `INSERT INTO reviews (order_id, kiosk_id, sku, rating, text) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id, sku) DO NOTHING RETURNING ${columns}`,
    [r.orderId, r.kioskId, r.sku, r.rating, r.text],
  );
  if (!rows[0]) throw failedPrecondition(`order_id: order ${r.orderId}'s ${r.sku} was already reviewed`);
  return rows[0];
}

export async function list(pool: Pool, f: { sku?: string; state?: ReviewRow["state"]; limit: number; after?: { createdAt: string; reviewId: string } }) {
  const params: unknown[] = [];
  const clauses = ["true"];
  if (f.sku) clauses.push(`sku = $${params.push(f.sku)}`);
  if (f.state) clauses.push(`state = $${params.push(f.state)}`);
  if (f.after) clauses.push(`(created_at, review_id) < ($${params.push(f.after.createdAt)}::timestamptz, $${params.push(f.after.reviewId)}::uuid)`);
  const { rows } = await pool.query<ReviewRow>(
    `SELECT ${columns} FROM reviews WHERE ${clauses.join(" AND ")} ORDER BY created_at DESC, review_id DESC LIMIT $${params.push(f.limit)}`,
    params,
  );
  return rows;
}

export async function summary(pool: Pool, sku: string): Promise<{ count: number; average: number }> {
  const { rows } = await pool.query<{ n: number; avg: number | null }>(
    "SELECT count(*)::int AS n, avg(rating)::float8 AS avg FROM reviews WHERE sku = $1 AND state = 'approved'",
    [sku],
  );
  return { count: rows[0]!.n, average: rows[0]!.avg ?? 0 };
}

export async function moderate(pool: Pool, reviewId: string, state: "approved" | "rejected", by: string): Promise<ReviewRow> {
  return inTransaction(pool, async (tx) => {
    const { rows } = await tx.query<ReviewRow>(
      `UPDATE reviews SET state = $2, moderated_at = clock_timestamp(), moderated_by = $3 WHERE review_id = $1 RETURNING ${columns}`,
      [reviewId, state, by],
    );
    const r = rows[0];
    if (!r) throw notFound(`review ${reviewId} not found`);
    const event = create(ReviewModeratedEventSchema, {
      reviewId: r.review_id,
      kioskId: r.kiosk_id,
      sku: r.sku,
      rating: r.rating,
      state: state === "approved" ? ReviewState.APPROVED : ReviewState.REJECTED,
      time: timestampFromDate(r.moderated_at ?? new Date()),
    });
    await enqueueEvent(tx, customersSubjects.reviewModerated(r.review_id), ReviewModeratedEventSchema, event);
    return r;
  });
}

export interface SaleForReview {
  order_id: string;
  kiosk_id: string;
  completed_at: Date;
  lines: { sku: string; quantity: string }[];
}

/** The completed sale a review link names (its kiosk must be the token's), with its products' reviews so far. */
export async function invitation(pool: Pool, orderId: string, kioskId: string): Promise<{ sale: SaleForReview; reviews: ReviewRow[] }> {
  const { rows } = await pool.query<SaleForReview>("SELECT order_id, kiosk_id, completed_at, lines FROM sales WHERE order_id = $1", [orderId]);
  const sale = rows[0];
  if (!sale || sale.kiosk_id !== kioskId) throw notFound(`token: order ${orderId} is not known to customers (not completed yet, or too old to review)`);
  const { rows: written } = await pool.query<ReviewRow>(`SELECT ${columns} FROM reviews WHERE order_id = $1 ORDER BY created_at`, [orderId]);
  return { sale, reviews: written };
}

/** A review through the link: one per order and product; the same again answers the one written (created false). */
export async function submitWithLink(pool: Pool, r: { kioskId: string; orderId: string; sku: string; rating: number; text: string }): Promise<{ review: ReviewRow; created: boolean }> {
  const { sale } = await invitation(pool, r.orderId, r.kioskId);
  if (!sale.lines.some((l) => l.sku === r.sku)) throw failedPrecondition(`sku: order ${r.orderId} has no ${r.sku}`);
  const { rows } = await pool.query<ReviewRow>(
    `INSERT INTO reviews (order_id, kiosk_id, sku, rating, text) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id, sku) DO NOTHING RETURNING ${columns}`,
    [r.orderId, r.kioskId, r.sku, r.rating, r.text],
  );
  if (rows[0]) return { review: rows[0], created: true };
  const { rows: existing } = await pool.query<ReviewRow>(`SELECT ${columns} FROM reviews WHERE order_id = $1 AND sku = $2`, [r.orderId, r.sku]);
  return { review: existing[0]!, created: false };
}

/** The reviews of a member's orders (export). */
export async function ofOrders(pool: Pool, orderIds: string[]): Promise<ReviewRow[]> {
  if (orderIds.length === 0) return [];
  const { rows } = await pool.query<ReviewRow>(`SELECT ${columns} FROM reviews WHERE order_id = ANY($1::uuid[]) ORDER BY created_at`, [orderIds]);
  return rows;
}

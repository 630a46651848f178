// Ratings and short reviews of a product bought at a kiosk: written by the kiosk for one of its
// own completed orders (the sale customers learned from orders' events), one per order and
// product, pending until an operator approves or rejects it.
import { failedPrecondition, notFound, type Pool } from "@adminkiosk/runtime";

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
  const { rows } = await pool.query<ReviewRow>(
    `UPDATE reviews SET state = $2, moderated_at = now(), moderated_by = $3 WHERE review_id = $1 RETURNING ${columns}`,
    [reviewId, state, by],
  );
  if (!rows[0]) throw notFound(`review ${reviewId} not found`);
  return rows[0];
}

/** The reviews of a member's orders (export). */
export async function ofOrders(pool: Pool, orderIds: string[]): Promise<ReviewRow[]> {
  if (orderIds.length === 0) return [];
  const { rows } = await pool.query<ReviewRow>(`SELECT ${columns} FROM reviews WHERE order_id = ANY($1::uuid[]) ORDER BY created_at`, [orderIds]);
  return rows;
}

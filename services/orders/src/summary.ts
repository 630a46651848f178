// Sales summaries: completed orders (less what was refunded) per kiosk and per product,
// by currency, over a time range of completion.
import type { Pool } from "@adminkiosk/runtime";

export interface SalesSummary {
  kiosks: { kioskId: string; currency: string; orderCount: number; netMinor: bigint; refundedMinor: bigint }[];
  products: { sku: string; currency: string; quantity: bigint; netMinor: bigint }[];
}

export async function salesSummary(pool: Pool, f: { from: Date; to: Date; kioskId?: string }): Promise<SalesSummary> {
  const params: unknown[] = [f.from, f.to];
  const byKiosk = f.kioskId === undefined ? "" : ` AND o.kiosk_id = $${params.push(f.kioskId)}`;
  const sold = `o.completed_at >= $1 AND o.completed_at < $2 AND o.state IN ('completed', 'partially_refunded', 'refunded')${byKiosk}`;
  const [kiosks, products] = await Promise.all([
    pool.query<{ kiosk_id: string; currency: string; orders: number; net: string; refunded: string }>(
      `SELECT o.kiosk_id, o.currency, count(*)::int AS orders, sum(o.total_minor - o.refunded_minor)::text AS net, sum(o.refunded_minor)::text AS refunded
       FROM orders o WHERE ${sold} GROUP BY o.kiosk_id, o.currency ORDER BY o.kiosk_id, o.currency`,
      params,
    ),
    pool.query<{ sku: string; currency: string; quantity: string; net: string }>(
      `SELECT CASE WHEN l.sku <> '' THEN l.sku ELSE 'event:' || l.event_id END AS sku, o.currency,
              sum(l.quantity - l.refunded_quantity)::text AS quantity, sum((l.quantity - l.refunded_quantity) * l.unit_price_minor)::text AS net
       FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE ${sold} GROUP BY 1, 2 ORDER BY 1, 2`,
      params,
    ),
  ]);
  return {
    kiosks: kiosks.rows.map((r) => ({ kioskId: r.kiosk_id, currency: r.currency, orderCount: r.orders, netMinor: BigInt(r.net), refundedMinor: BigInt(r.refunded) })),
    products: products.rows.map((r) => ({ sku: r.sku, currency: r.currency, quantity: BigInt(r.quantity), netMinor: BigInt(r.net) })),
  };
}

// Sales summaries: completed orders (less what was refunded) per kiosk and per product,
// by currency, over a time range of completion.
import type { Pool } from "@adminkiosk/runtime";

export interface SalesSummary {
  kiosks: { kioskId: string; currency: string; orderCount: number; netMinor: bigint; refundedMinor: bigint }[];
  products: ProductTotal[];
}

interface ProductTotal {
  sku: string;
  currency: string;
  quantity: bigint;
  netMinor: bigint;
}

/** One day (in `timeZone`) in one currency; a day without sales has currency "" and zeros. */
export interface SalesDay {
  date: string;
  startTime: Date;
  currency: string;
  orderCount: number;
  netMinor: bigint;
  products: ProductTotal[];
}

/** The longest range a daily series may span (one point per day and currency). */
export const maxSeriesDays = 366;

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

/**
 * Net sales per calendar day in `timeZone` (an IANA name PostgreSQL knows) over [from, to):
 * every day of the range in order, once per currency sold that day, or once with no currency.
 * Days are PostgreSQL's: `completed_at AT TIME ZONE tz`, so a day of a DST change has 23 or 25 hours.
 */
export async function salesByDay(pool: Pool, f: { from: Date; to: Date; kioskId?: string; timeZone: string }): Promise<SalesDay[]> {
  const params: unknown[] = [f.from, f.to, f.timeZone];
  const byKiosk = f.kioskId === undefined ? "" : ` AND o.kiosk_id = $${params.push(f.kioskId)}`;
  const sold = `o.completed_at >= $1 AND o.completed_at < $2 AND o.state IN ('completed', 'partially_refunded', 'refunded')${byKiosk}`;
  const day = `(o.completed_at AT TIME ZONE $3)::date`;
  const [days, products] = await Promise.all([
    pool.query<{ day: string; start_time: Date; currency: string | null; orders: number; net: string }>(
      `WITH days AS (
         SELECT d::date AS day FROM generate_series(($1::timestamptz AT TIME ZONE $3)::date, (($2::timestamptz - interval '1 microsecond') AT TIME ZONE $3)::date, interval '1 day') d
       ), sold AS (
         SELECT ${day} AS day, o.currency, count(*)::int AS orders, sum(o.total_minor - o.refunded_minor) AS net
         FROM orders o WHERE ${sold} GROUP BY 1, 2
       )
       SELECT days.day::text AS day, days.day::timestamp AT TIME ZONE $3 AS start_time, sold.currency, coalesce(sold.orders, 0) AS orders, coalesce(sold.net, 0)::text AS net
       FROM days LEFT JOIN sold ON sold.day = days.day ORDER BY days.day, sold.currency`,
      params,
    ),
    pool.query<{ day: string; sku: string; currency: string; quantity: string; net: string }>(
      `SELECT ${day}::text AS day, CASE WHEN l.sku <> '' THEN l.sku ELSE 'event:' || l.event_id END AS sku, o.currency,
              sum(l.quantity - l.refunded_quantity)::text AS quantity, sum((l.quantity - l.refunded_quantity) * l.unit_price_minor)::text AS net
       FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE ${sold} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      params,
    ),
  ]);
  return days.rows.map((r) => ({
    date: r.day,
    startTime: r.start_time,
    currency: r.currency ?? "",
    orderCount: r.orders,
    netMinor: BigInt(r.net),
    products: products.rows
      .filter((p) => p.day === r.day && p.currency === r.currency)
      .map((p) => ({ sku: p.sku, currency: p.currency, quantity: BigInt(p.quantity), netMinor: BigInt(p.net) })),
  }));
}

/** Whether `timeZone` is an IANA time zone name (Node's ICU knows the same names PostgreSQL does). */
export function isTimeZone(timeZone: string): boolean {
  if (timeZone.length > 64 || !/^[A-Za-z0-9_+\-/]+$/.test(timeZone)) return false;
  try {
    new Intl.DateTimeFormat("en", { timeZone });
    return true;
  } catch {
    return false;
  }
}

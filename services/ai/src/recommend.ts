// "Bought together" recommendations from order baskets. Each completed order's product SKUs
// are recorded once (baskets, keyed by order id) with counts kept in the same transaction:
// baskets per kiosk, baskets holding each SKU, and each ordered pair, per kiosk and for the
// fleet (kiosk_id ''). A recommendation for a cart is, per candidate product j,
//
//   conf(i → j) = (n_ij(kiosk) + m · conf_fleet(i → j)) / (n_i(kiosk) + m)      (m = shrinkage)
//   score(j)    = 1 − Π_i (1 − conf(i → j))        over the cart's products i ("noisy or")
//
// so a kiosk with little history of the cart's products leans on the fleet's pairs, and one
// with plenty on its own. Candidates bought together more often than on their own (lift > 1)
// come first; best sellers (the kiosk's, shrunk to the fleet's) fill the rest. Each score is
// multiplied by the product's rating factor (ratings.ts: approved buyers' ratings, at the kiosk
// shrunk to the fleet's, ×0.5 for a mean of 1 to ×1.5 for 5, once it has 3). Cart items are
// never recommended; where ai knows what the kiosk sells (catalog's stock, the product
// index), only those products are.
import { inTransaction, type Logger, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { ratingCounts, ratingFactor } from "./ratings.js";

type Db = Pool | PoolClient;

/** Pseudo-baskets of fleet evidence mixed into a kiosk's own. */
export const shrinkage = 5;
/** Lift a pair needs to count as bought together. */
export const minLift = 1.2;
/**
 * Baskets of more distinct products than this (a bulk purchase) count for popularity but not
 * for pairs: n products make n·(n−1) pair rows, and such a basket says little about what goes
 * together.
 */
export const maxPairedBasket = 20;

export interface Basket {
  orderId: string;
  kioskId: string;
  skus: string[];
  completedAt: Date;
}

export const baskets = {
  /** Records baskets not seen before (by order id) and their counts. Returns how many were new. */
  async record(db: Db, list: Basket[], source: string): Promise<number> {
    const usable = list.map((b) => ({ ...b, skus: [...new Set(b.skus)].sort() })).filter((b) => b.skus.length > 0);
    if (usable.length === 0) return 0;
    const { rows } = await db.query<{ added: string }>(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS t(order_id, kiosk_id, skus, completed_at)
       ),
       ins AS (
         INSERT INTO baskets (order_id, kiosk_id, skus, completed_at, source)
         SELECT order_id, kiosk_id, string_to_array(skus, ','), completed_at, $5 FROM input
         ON CONFLICT (order_id) DO NOTHING RETURNING kiosk_id, skus
       ),
       scoped AS (SELECT v.k, ins.skus FROM ins, LATERAL (VALUES (ins.kiosk_id), ('')) AS v(k)),
       totals AS (
         INSERT INTO basket_totals (kiosk_id, baskets) SELECT k, count(*) FROM scoped GROUP BY k
         ON CONFLICT (kiosk_id) DO UPDATE SET baskets = basket_totals.baskets + EXCLUDED.baskets RETURNING 1
       ),
       items AS (
         INSERT INTO basket_items (kiosk_id, sku, baskets) SELECT k, s, count(*) FROM scoped, unnest(skus) AS s GROUP BY k, s
         ON CONFLICT (kiosk_id, sku) DO UPDATE SET baskets = basket_items.baskets + EXCLUDED.baskets RETURNING 1
       ),
       pairs AS (
         INSERT INTO basket_pairs (kiosk_id, sku, other, baskets)
         SELECT k, a, b, count(*) FROM scoped, unnest(skus) AS a, unnest(skus) AS b WHERE a <> b AND cardinality(skus) <= $6 GROUP BY k, a, b
         ON CONFLICT (kiosk_id, sku, other) DO UPDATE SET baskets = basket_pairs.baskets + EXCLUDED.baskets RETURNING 1
       )
       SELECT (SELECT count(*) FROM ins) AS added, (SELECT count(*) FROM totals) + (SELECT count(*) FROM items) + (SELECT count(*) FROM pairs) AS touched`,
      [usable.map((b) => b.orderId), usable.map((b) => b.kioskId), usable.map((b) => b.skus.join(",")), usable.map((b) => b.completedAt.toISOString()), source, maxPairedBasket],
    );
    return Number(rows[0]!.added);
  },
};

/**
 * Deletes up to `limit` baskets completed before `before` (oldest first) and takes them out of
 * the counts, in one statement (so one transaction); rows whose count reaches 0 go. Returns how
 * many baskets went. Pairs are taken out only for baskets that were paired (maxPairedBasket).
 */
export async function pruneBaskets(db: Db, before: Date, limit: number): Promise<number> {
  const { rows } = await db.query<{ pruned: string }>(
    `WITH gone AS (
       DELETE FROM baskets WHERE order_id IN (SELECT order_id FROM baskets WHERE completed_at < $1 ORDER BY completed_at LIMIT $2)
       RETURNING kiosk_id, skus
     ),
     scoped AS (SELECT v.k, gone.skus FROM gone, LATERAL (VALUES (gone.kiosk_id), ('')) AS v(k)),
     totals AS (
       UPDATE basket_totals t SET baskets = t.baskets - g.n FROM (SELECT k, count(*) AS n FROM scoped GROUP BY k) g WHERE t.kiosk_id = g.k RETURNING 1
     ),
     items AS (
       UPDATE basket_items t SET baskets = t.baskets - g.n
       FROM (SELECT k, s, count(*) AS n FROM scoped, unnest(skus) AS s GROUP BY k, s) g WHERE t.kiosk_id = g.k AND t.sku = g.s RETURNING 1
     ),
     pairs AS (
       UPDATE basket_pairs t SET baskets = t.baskets - g.n
       FROM (SELECT k, a, b, count(*) AS n FROM scoped, unnest(skus) AS a, unnest(skus) AS b WHERE a <> b AND cardinality(skus) <= $3 GROUP BY k, a, b) g
       WHERE t.kiosk_id = g.k AND t.sku = g.a AND t.other = g.b RETURNING 1
     )
     SELECT (SELECT count(*) FROM gone) AS pruned, (SELECT count(*) FROM totals) + (SELECT count(*) FROM items) + (SELECT count(*) FROM pairs) AS touched`,
    [before.toISOString(), limit, maxPairedBasket],
  );
  const pruned = Number(rows[0]!.pruned);
  if (pruned > 0) {
    await db.query("DELETE FROM basket_pairs WHERE baskets <= 0");
    await db.query("DELETE FROM basket_items WHERE baskets <= 0");
    await db.query("DELETE FROM basket_totals WHERE baskets <= 0");
  }
  return pruned;
}

/** Prunes baskets older than `retentionDays` every `intervalMs`, on one replica at a time. */
export function startBasketPruner(o: { pool: Pool; log: Logger; retentionDays: number; intervalMs: number }): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const pass = async () => {
    const before = new Date(Date.now() - o.retentionDays * 86_400_000);
    let total = 0;
    for (;;) {
      const pruned = await inTransaction(o.pool, async (tx) => {
        const { rows } = await tx.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock(hashtext('ai:baskets')) AS ok");
        return rows[0]!.ok ? pruneBaskets(tx, before, 10_000) : 0;
      });
      total += pruned;
      if (pruned < 10_000) break;
    }
    if (total > 0) o.log.info({ pruned: total, before }, "old order baskets pruned");
  };
  const tick = () => {
    running = pass()
      .catch((err: unknown) => o.log.warn({ err }, "pruning old order baskets failed; retrying at the next pass"))
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(tick, o.intervalMs);
        timer.unref();
      });
  };
  timer = setTimeout(tick, Math.min(o.intervalMs, 10_000));
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

export interface Recommended {
  sku: string;
  score: number;
  lift: number;
  reason: "here" | "fleet" | "popular";
}

export interface RecommendInput {
  kioskId: string;
  cart: string[];
  limit: number;
  /** Products the kiosk may be offered (undefined: any). */
  allowed?: (sku: string) => boolean;
}

export async function recommend(db: Db, input: RecommendInput): Promise<{ items: Recommended[]; kioskBaskets: number; fleetBaskets: number }> {
  const { kioskId, cart, limit } = input;
  const inCart = new Set(cart);
  const [totals, items, pairs, ratings] = await Promise.all([
    db.query<{ kiosk_id: string; baskets: string }>("SELECT kiosk_id, baskets FROM basket_totals WHERE kiosk_id IN ($1, '')", [kioskId]),
    db.query<{ kiosk_id: string; sku: string; baskets: string }>("SELECT kiosk_id, sku, baskets FROM basket_items WHERE kiosk_id IN ($1, '')", [kioskId]),
    cart.length === 0
      ? Promise.resolve({ rows: [] as { kiosk_id: string; sku: string; other: string; baskets: string }[] })
      : db.query<{ kiosk_id: string; sku: string; other: string; baskets: string }>(
          "SELECT kiosk_id, sku, other, baskets FROM basket_pairs WHERE kiosk_id IN ($1, '') AND sku = ANY($2::text[]) AND other <> ALL($2::text[])",
          [kioskId, cart],
        ),
    ratingCounts(db, kioskId),
  ]);
  const rated = (sku: string) => ratingFactor(ratings.get(sku));
  const total = (k: string) => Number(totals.rows.find((r) => r.kiosk_id === k)?.baskets ?? 0);
  const kioskBaskets = total(kioskId);
  const fleetBaskets = total("");
  const count = new Map<string, number>();
  for (const r of items.rows) count.set(`${r.kiosk_id}|${r.sku}`, Number(r.baskets));
  const n = (k: string, sku: string) => count.get(`${k}|${sku}`) ?? 0;
  const pair = new Map<string, number>();
  for (const r of pairs.rows) pair.set(`${r.kiosk_id}|${r.sku}|${r.other}`, Number(r.baskets));
  const np = (k: string, i: string, j: string) => pair.get(`${k}|${i}|${j}`) ?? 0;

  /** How often j sells at this kiosk, the fleet's share mixed in where the kiosk has few baskets. */
  const popularity = (j: string) => {
    const fleet = fleetBaskets > 0 ? n("", j) / fleetBaskets : 0;
    return (n(kioskId, j) + shrinkage * fleet) / (kioskBaskets + shrinkage);
  };
  const allowed = (sku: string) => !inCart.has(sku) && (input.allowed?.(sku) ?? true);

  const candidates = new Set(pairs.rows.map((r) => r.other).filter(allowed));
  const together: Recommended[] = [];
  for (const j of candidates) {
    let none = 1;
    let best = 0;
    let ownWeight = 0;
    for (const i of cart) {
      const fleetConf = n("", i) > 0 ? np("", i, j) / n("", i) : 0;
      const conf = (np(kioskId, i, j) + shrinkage * fleetConf) / (n(kioskId, i) + shrinkage);
      none *= 1 - conf;
      if (conf > best) {
        best = conf;
        ownWeight = n(kioskId, i) / (n(kioskId, i) + shrinkage);
      }
    }
    const base = popularity(j);
    const lift = base > 0 ? best / base : 0;
    if (lift < minLift) continue;
    together.push({ sku: j, score: (1 - none) * rated(j), lift, reason: ownWeight >= 0.5 ? "here" : "fleet" });
  }
  together.sort((a, b) => b.score - a.score || b.lift - a.lift || a.sku.localeCompare(b.sku));
  const chosen = together.slice(0, limit);
  if (chosen.length < limit) {
    const taken = new Set(chosen.map((c) => c.sku));
    const skus = new Set(items.rows.map((r) => r.sku).filter((s) => allowed(s) && !taken.has(s)));
    const popular = [...skus].map((sku) => ({ sku, score: popularity(sku) * rated(sku), lift: 0, reason: "popular" as const })).filter((p) => p.score > 0);
    popular.sort((a, b) => b.score - a.score || a.sku.localeCompare(b.sku));
    chosen.push(...popular.slice(0, limit - chosen.length));
  }
  return { items: chosen, kioskBaskets, fleetBaskets };
}

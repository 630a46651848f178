// Order baskets with known structure, deterministic from a seed (for development, demos and
// tests; never for production data), beside generator.ts's daily sales. Each basket starts
// with one product drawn by popularity; if it belongs to a known pair, its partner joins with
// the pair's probability; and with `extraProbability` one more product (by popularity) joins
// at random. So the pairs below are what a recommender should find: the partner is bought
// with its product far more often than on its own.
import { rng } from "./generator.js";
import type { Basket } from "./recommend.js";

export interface BasketProduct {
  sku: string;
  /** Relative popularity as a basket's first product. */
  weight: number;
}

export interface Affinity {
  a: string;
  b: string;
  /** Probability that a basket started with one of the two also holds the other. */
  probability: number;
}

/** The demo catalog's products (services/catalog/src/seed-demo.ts). */
export const demoBasketProducts: BasketProduct[] = [
  { sku: "SNK-CHOC-DARK", weight: 22 },
  { sku: "SNK-CHIPS-SALT", weight: 28 },
  { sku: "SNK-WATER-05", weight: 40 },
  { sku: "FLW-ROSE-RED", weight: 8 },
  { sku: "FLW-TULIP-MIX", weight: 6 },
  { sku: "MRC-MUG", weight: 12 },
  { sku: "MRC-TSHIRT", weight: 7 },
];

/** Bought together: chips with water, roses with chocolate, the T-shirt with the mug. */
export const demoAffinities: Affinity[] = [
  { a: "SNK-CHIPS-SALT", b: "SNK-WATER-05", probability: 0.55 },
  { a: "FLW-ROSE-RED", b: "SNK-CHOC-DARK", probability: 0.6 },
  { a: "MRC-TSHIRT", b: "MRC-MUG", probability: 0.5 },
];

export interface BasketOptions {
  seed: number;
  /** Kiosk ids, or how many simulated ones (sim-0001…). */
  kioskIds: string[];
  basketsPerKiosk: number;
  products?: BasketProduct[];
  affinities?: Affinity[];
  extraProbability?: number;
  /** Baskets are spread over the `days` days before `end`. */
  end: Date;
  days: number;
  /** Order ids are `${prefix}-<kiosk>-<n>` (stable for a seed, so seeding twice adds nothing twice). */
  prefix?: string;
}

/** The default probability that one more product (by popularity) joins a basket. */
export const defaultExtraProbability = 0.2;

/** Draws a SKU by popularity. */
export function popularityDraw(products: BasketProduct[], u: () => number): () => string {
  const totalWeight = products.reduce((s, p) => s + p.weight, 0);
  return () => {
    let r = u() * totalWeight;
    for (const p of products) if ((r -= p.weight) < 0) return p.sku;
    return products[products.length - 1]!.sku;
  };
}

/** The basket a customer who came for `first` leaves with: its partners by their pair's probability, then maybe one more by popularity. */
export function completeBasket(first: string, u: () => number, products: BasketProduct[], affinities: Affinity[] = demoAffinities, extra = defaultExtraProbability): string[] {
  return completeWith(first, u, popularityDraw(products, u), affinities, extra);
}

function completeWith(first: string, u: () => number, draw: () => string, affinities: Affinity[], extra: number): string[] {
  const skus = new Set([first]);
  for (const pair of affinities) {
    const other = pair.a === first ? pair.b : pair.b === first ? pair.a : undefined;
    if (other && u() < pair.probability) skus.add(other);
  }
  if (u() < extra) skus.add(draw());
  return [...skus];
}

/**
 * How often each SKU should start a basket (per unit of time) so that, with partners and
 * extras joining as completeBasket adds them, each SKU's expected units match `demand`
 * (the same unit of time): solves M·starts = demand, M[s][f] being the expected count of s
 * in a basket started by f. When no non-negative solution exists (a SKU's demand is below
 * what its partners' baskets alone would buy of it), the pair and extra probabilities are
 * damped by the largest factor that has one, so each SKU's rate is still met exactly; the
 * damped `affinities` and `extra` to complete baskets with are returned beside the rates.
 */
export function basketStartRates(
  demand: Map<string, number>,
  products: BasketProduct[],
  affinities: Affinity[] = demoAffinities,
  extra = defaultExtraProbability,
): { starts: Map<string, number>; affinities: Affinity[]; extra: number } {
  const at = (c: number) => {
    const damped = affinities.map((a) => ({ ...a, probability: a.probability * c }));
    return { starts: solveStarts(demand, products, damped, extra * c), affinities: damped, extra: extra * c };
  };
  const full = at(1);
  if ([...full.starts.values()].every((v) => v >= 0)) return full;
  // Bisect for the largest feasible factor (0 is always feasible: every basket is one product).
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 30; i++) {
    const mid = (lo + hi) / 2;
    if ([...at(mid).starts.values()].every((v) => v >= 0)) lo = mid;
    else hi = mid;
  }
  const found = at(lo);
  return { ...found, starts: new Map([...found.starts].map(([sku, v]) => [sku, Math.max(0, v)])) };
}

function solveStarts(demand: Map<string, number>, products: BasketProduct[], affinities: Affinity[], extra: number): Map<string, number> {
  const skus = [...demand.keys()];
  const totalWeight = products.reduce((s, p) => s + p.weight, 0);
  const weight = new Map(products.map((p) => [p.sku, p.weight / totalWeight]));
  const partner = (f: string, s: string) => affinities.reduce((q, pair) => q + ((pair.a === f && pair.b === s) || (pair.b === f && pair.a === s) ? pair.probability : 0), 0);
  const n = skus.length;
  // Augmented matrix [M | demand], Gauss–Jordan with partial pivoting (M is diagonally dominant).
  const m = skus.map((s) => [
    ...skus.map((f) => {
      const before = s === f ? 1 : partner(f, s);
      return before + extra * (weight.get(s) ?? 0) * (1 - before);
    }),
    demand.get(s)!,
  ]);
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[pivot]![c]!)) pivot = r;
    [m[c], m[pivot]] = [m[pivot]!, m[c]!];
    const row = m[c]!;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const factor = m[r]![c]! / row[c]!;
      for (let k = c; k <= n; k++) m[r]![k]! -= factor * row[k]!;
    }
  }
  return new Map(skus.map((s, i) => [s, m[i]![n]! / m[i]![i]!]));
}

export function generateBaskets(o: BasketOptions): Basket[] {
  const products = o.products ?? demoBasketProducts;
  const affinities = o.affinities ?? demoAffinities;
  const extra = o.extraProbability ?? defaultExtraProbability;
  const u = rng(o.seed ^ 0x5bd1e995);
  const draw = popularityDraw(products, u);
  const out: Basket[] = [];
  for (const kioskId of o.kioskIds) {
    for (let n = 0; n < o.basketsPerKiosk; n++) {
      const skus = completeWith(draw(), u, draw, affinities, extra);
      out.push({
        orderId: `${o.prefix ?? `gen-${o.seed}`}-${kioskId}-${n}`,
        kioskId,
        skus,
        completedAt: new Date(o.end.getTime() - u() * o.days * 86_400_000),
      });
    }
  }
  return out;
}

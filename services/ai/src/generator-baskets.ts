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

export function generateBaskets(o: BasketOptions): Basket[] {
  const products = o.products ?? demoBasketProducts;
  const affinities = o.affinities ?? demoAffinities;
  const extra = o.extraProbability ?? 0.2;
  const u = rng(o.seed ^ 0x5bd1e995);
  const totalWeight = products.reduce((s, p) => s + p.weight, 0);
  const draw = () => {
    let r = u() * totalWeight;
    for (const p of products) if ((r -= p.weight) < 0) return p.sku;
    return products[products.length - 1]!.sku;
  };
  const out: Basket[] = [];
  for (const kioskId of o.kioskIds) {
    for (let n = 0; n < o.basketsPerKiosk; n++) {
      const first = draw();
      const skus = new Set([first]);
      for (const pair of affinities) {
        const other = pair.a === first ? pair.b : pair.b === first ? pair.a : undefined;
        if (other && u() < pair.probability) skus.add(other);
      }
      if (u() < extra) skus.add(draw());
      out.push({
        orderId: `${o.prefix ?? `gen-${o.seed}`}-${kioskId}-${n}`,
        kioskId,
        skus: [...skus],
        completedAt: new Date(o.end.getTime() - u() * o.days * 86_400_000),
      });
    }
  }
  return out;
}

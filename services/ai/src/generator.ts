// A sales-history generator with known structure, deterministic from a seed (for development,
// demos and tests; never for production data). Demand per kiosk × SKU per day is
//
//   base(kiosk, sku) · weekday(location type, dow) · (1 + trend(kiosk) · t) · (price / list price)^elasticity
//
// times a gamma-distributed day effect (mean 1, shape `dayShape`: overdispersion), drawn as a
// Poisson count and spread over the hours by the location type's hour-of-day profile. A day
// can run out of stock: from the stock-out hour on nothing sells, so the observed sales are
// censored (lower than demand) and the day is flagged.

export type LocationType = "station" | "airport" | "mall";
export const locationTypes: LocationType[] = ["station", "airport", "mall"];

/** Relative demand by weekday (0 = Sunday … 6 = Saturday), mean ≈ 1. */
export const weekdayProfile: Record<LocationType, number[]> = {
  // Commuters: busy on weekdays, quiet at weekends.
  station: [0.55, 1.2, 1.2, 1.15, 1.2, 1.25, 0.6],
  // Travel peaks on Friday and Sunday.
  airport: [1.25, 0.9, 0.8, 0.85, 0.95, 1.3, 0.95],
  // Shoppers: weekends.
  mall: [1.2, 0.7, 0.75, 0.8, 0.85, 1.1, 1.6],
};

/** Relative demand by hour of day (0..23), normalised to sum 1 when used. */
export const hourProfile: Record<LocationType, number[]> = {
  station: [0, 0, 0, 0, 0, 1, 4, 9, 10, 6, 3, 3, 4, 3, 3, 4, 6, 9, 10, 6, 3, 2, 1, 0],
  airport: [1, 1, 1, 1, 2, 4, 6, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5, 4, 3, 2],
  mall: [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 5, 7, 7, 6, 6, 7, 8, 8, 7, 5, 2, 0, 0],
};

export interface GeneratedKiosk {
  kioskId: string;
  locationType: LocationType;
  /** Relative change in demand per 28 days (e.g. 0.05: +5 % a month). */
  trend: number;
  scale: number;
}

export interface GeneratedProduct {
  sku: string;
  listPriceMinor: number;
  /** Units per day at list price at an average kiosk. */
  base: number;
  /** d log(demand) / d log(price), negative. */
  elasticity: number;
}

export interface DailySale {
  kioskId: string;
  sku: string;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  quantity: number;
  /** What demand would have bought without the stock-out (known only to the generator). */
  demand: number;
  unitPriceMinor: number;
  stockout: boolean;
  /** Units sold per hour 0..23 (sums to `quantity`). */
  hourly: number[];
}

export interface GeneratorOptions {
  seed: number;
  kiosks: number | string[];
  products?: GeneratedProduct[];
  days: number;
  /** The last generated day (UTC, YYYY-MM-DD); history runs `days` days up to it. */
  endDay: string;
  /** Probability that a kiosk × SKU day runs out of stock. */
  stockoutRate?: number;
  /** Probability that a day runs at a promotional price (list price × 0.7..0.9). */
  promoRate?: number;
  /** Gamma shape of the day effect (larger: less overdispersion). */
  dayShape?: number;
}

export const defaultProducts: GeneratedProduct[] = [
  { sku: "SNK-CHOC-DARK", listPriceMinor: 349, base: 22, elasticity: -1.4 },
  { sku: "SNK-CHIPS-SALT", listPriceMinor: 299, base: 28, elasticity: -1.2 },
  { sku: "SNK-WATER-05", listPriceMinor: 150, base: 40, elasticity: -0.8 },
  { sku: "MRC-MUG", listPriceMinor: 1299, base: 12, elasticity: -1.8 },
];

/** mulberry32: a small, fast, seedable PRNG (uniform in [0, 1)). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(u: () => number): number {
  const a = Math.max(u(), 1e-12);
  return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * u());
}

/** Marsaglia–Tsang gamma(shape, 1). */
function gamma(u: () => number, shape: number): number {
  if (shape < 1) return gamma(u, shape + 1) * Math.pow(u(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normal(u);
    const v = Math.pow(1 + c * x, 3);
    if (v <= 0) continue;
    if (Math.log(Math.max(u(), 1e-12)) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

function poisson(u: () => number, mean: number): number {
  if (mean > 50) return Math.max(0, Math.round(mean + Math.sqrt(mean) * normal(u)));
  const l = Math.exp(-mean);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= u();
  } while (p > l);
  return k - 1;
}

/** The day effect's default gamma shape (GeneratorOptions.dayShape). */
export const defaultDayShape = 40;

/** A day's demand multiplier: gamma(shape)/shape, mean 1 (overdispersion between days). */
export function dayEffect(u: () => number, dayShape = defaultDayShape): number {
  return gamma(u, dayShape) / dayShape;
}

/**
 * Expected units of `p` at `k` on day `day` (a dayIndex) at `priceMinor`, before the day
 * effect: base · scale · weekday · trend (from `start`, the history's first day) · price effect.
 */
export function dailyMean(k: GeneratedKiosk, p: GeneratedProduct, day: number, start: number, priceMinor: number): number {
  const t = (day - start) / 28;
  return p.base * k.scale * weekdayProfile[k.locationType][weekdayOf(day)]! * Math.max(0.2, 1 + k.trend * t) * Math.pow(priceMinor / p.listPriceMinor, p.elasticity);
}

/** The share of a day's demand that falls in UTC hour `hour` at a location type. */
export function hourShare(locationType: LocationType, hour: number): number {
  const hours = hourProfile[locationType];
  return hours[hour]! / hours.reduce((a, b) => a + b, 0);
}

/**
 * The same process after the generated history (packages/kiosk-sdk's selling simulator):
 * the expected units of `p` at `k` per hour at instant `at`, i.e. the day's mean at the
 * price charged, times that kiosk × SKU × day's own day effect (deterministic from the
 * seed), times the hour's share. Poisson arrivals at this rate are the generator's hourly
 * counts in real time. Stock-outs are not drawn here: live, they happen when stock runs out.
 */
export function hourlyRate(seed: number, k: GeneratedKiosk, p: GeneratedProduct, at: Date, historyStart: string, priceMinor: number, dayShape = defaultDayShape): number {
  const day = Math.floor(at.getTime() / dayMs);
  const effect = dayEffect(rng(hashKey(`${seed}|${k.kioskId}|${p.sku}|${day}`)), dayShape);
  return dailyMean(k, p, day, dayIndex(historyStart), priceMinor) * effect * hourShare(k.locationType, at.getUTCHours());
}

/** FNV-1a of a string (a seed per kiosk × SKU × day). */
function hashKey(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export const dayMs = 86_400_000;
export const dayIndex = (day: string): number => Math.round(Date.parse(`${day}T00:00:00Z`) / dayMs);
export const dayOf = (index: number): string => new Date(index * dayMs).toISOString().slice(0, 10);
/** 0 = Sunday … 6 = Saturday. */
export const weekdayOf = (index: number): number => (((index + 4) % 7) + 7) % 7;

/** The simulated fleet's kiosk ids (packages/kiosk-sdk's simulator: sim-0001…). */
export const simulatedKioskIds = (n: number): string[] => Array.from({ length: n }, (_, i) => `sim-${String(i + 1).padStart(4, "0")}`);

export function generateKiosks(seed: number, kiosks: number | string[]): GeneratedKiosk[] {
  const u = rng(seed ^ 0x9e3779b9);
  const ids = typeof kiosks === "number" ? simulatedKioskIds(kiosks) : kiosks;
  return ids.map((kioskId, i) => ({
    kioskId,
    locationType: locationTypes[i % locationTypes.length]!,
    trend: (u() - 0.4) * 0.12,
    scale: 0.6 + u() * 0.9,
  }));
}

export function generateSales(options: GeneratorOptions): { kiosks: GeneratedKiosk[]; products: GeneratedProduct[]; sales: DailySale[] } {
  const products = options.products ?? defaultProducts;
  const kiosks = generateKiosks(options.seed, options.kiosks);
  const u = rng(options.seed);
  const stockoutRate = options.stockoutRate ?? 0.04;
  const promoRate = options.promoRate ?? 0.08;
  const dayShape = options.dayShape ?? defaultDayShape;
  const end = dayIndex(options.endDay);
  const start = end - options.days + 1;
  const sales: DailySale[] = [];
  for (const k of kiosks) {
    const hours = hourProfile[k.locationType];
    const hourTotal = hours.reduce((a, b) => a + b, 0);
    for (const p of products) {
      for (let d = start; d <= end; d++) {
        const promo = u() < promoRate;
        const price = promo ? Math.round(p.listPriceMinor * (0.7 + u() * 0.2)) : p.listPriceMinor;
        const mean = dailyMean(k, p, d, start, price);
        const demand = poisson(u, mean * dayEffect(u, dayShape));
        // Spread over the hours (multinomial by the hour profile).
        const hourly = new Array<number>(24).fill(0);
        for (let i = 0; i < demand; i++) {
          let r = u() * hourTotal;
          let h = 0;
          while (h < 23 && r >= hours[h]!) r -= hours[h++]!;
          hourly[h]!++;
        }
        let quantity = demand;
        const stockout = u() < stockoutRate;
        if (stockout) {
          // Out of stock from a random hour on: later sales are lost.
          const from = 8 + Math.floor(u() * 12);
          for (let h = from; h < 24; h++) hourly[h] = 0;
          quantity = hourly.reduce((a, b) => a + b, 0);
        }
        sales.push({ kioskId: k.kioskId, sku: p.sku, day: dayOf(d), quantity, demand, unitPriceMinor: price, stockout, hourly });
      }
    }
  }
  return { kiosks, products, sales };
}

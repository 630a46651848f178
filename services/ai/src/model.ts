// The demand-forecast model: a Poisson log-linear GLM on seasonal features, fitted by
// Newton's method (ridge-penalised IRLS) in this process, with a negative-binomial
// predictive distribution (variance μ + α·μ², α from the training residuals) for the
// quantiles. Pure: no I/O. onnx.ts turns a fitted model into an ONNX graph that computes
// the same numbers; evaluate() scores any predictor and the seasonal-naive baseline.
import { weekdayOf } from "./generator.js";

/** Feature groups; the pair intercept is always in. */
export const featureGroups = ["kiosk_weekday", "kiosk_trend", "log_price_ratio"] as const;
export type FeatureGroup = (typeof featureGroups)[number];

export interface HistoryRow {
  kioskId: string;
  sku: string;
  /** Day index (days since 1970-01-01, UTC). */
  day: number;
  quantity: number;
  unitPriceMinor: number;
  /** A stock-out censored the day's sales: not used for fitting nor scoring. */
  stockout: boolean;
}

/** Everything needed to turn (kiosk, SKU, day, price) into the feature vector. */
export interface Layout {
  kind: "poisson-glm";
  groups: FeatureGroup[];
  /** The first training day (trend t = (day - epochDay) / 28). */
  epochDay: number;
  kiosks: string[];
  /** "kiosk|sku" */
  pairs: string[];
  /** Each pair's reference (most frequent) price and last seen price, minor units. */
  refPrice: number[];
  lastPrice: number[];
  /** Negative-binomial dispersion: Var = μ + α μ². */
  alpha: number;
}

export interface FittedModel {
  layout: Layout;
  weights: Float64Array;
}

export const pairKey = (kioskId: string, sku: string) => `${kioskId}|${sku}`;
export const featureCount = (l: Layout) =>
  l.pairs.length + (l.groups.includes("kiosk_weekday") ? 7 * l.kiosks.length : 0) + (l.groups.includes("kiosk_trend") ? l.kiosks.length : 0) + (l.groups.includes("log_price_ratio") ? 1 : 0);

/** Feature names, in vector order (for the registry). */
export function featureNames(l: Layout): string[] {
  const names = l.pairs.map((p) => `pair:${p}`);
  if (l.groups.includes("kiosk_weekday")) for (const k of l.kiosks) for (let d = 0; d < 7; d++) names.push(`weekday:${k}:${d}`);
  if (l.groups.includes("kiosk_trend")) for (const k of l.kiosks) names.push(`trend:${k}`);
  if (l.groups.includes("log_price_ratio")) names.push("log_price_ratio");
  return names;
}

export interface FeatureIndex {
  pair: Map<string, number>;
  kiosk: Map<string, number>;
}
export const indexOf = (l: Layout): FeatureIndex => ({
  pair: new Map(l.pairs.map((p, i) => [p, i])),
  kiosk: new Map(l.kiosks.map((k, i) => [k, i])),
});

/** Writes the features of (pair, day, price) into `out` at `offset` (zeroed first). */
export function writeFeatures(l: Layout, ix: FeatureIndex, pairIdx: number, day: number, priceMinor: number, out: Float32Array | Float64Array, offset = 0) {
  const n = featureCount(l);
  out.fill(0, offset, offset + n);
  out[offset + pairIdx] = 1;
  let at = l.pairs.length;
  const kiosk = ix.kiosk.get(l.pairs[pairIdx]!.split("|")[0]!)!;
  if (l.groups.includes("kiosk_weekday")) {
    out[offset + at + kiosk * 7 + weekdayOf(day)] = 1;
    at += 7 * l.kiosks.length;
  }
  if (l.groups.includes("kiosk_trend")) {
    out[offset + at + kiosk] = (day - l.epochDay) / 28;
    at += l.kiosks.length;
  }
  if (l.groups.includes("log_price_ratio")) out[offset + at] = Math.log(priceMinor / l.refPrice[pairIdx]!);
}

export interface Quantiles {
  p10: number;
  p50: number;
  p90: number;
}
/** z of the 90 % normal quantile. */
export const z90 = 1.2815515655446004;

/** The predictive quantiles of a mean μ: normal approximation to the negative binomial. */
export function quantilesOf(mu: number, alpha: number): Quantiles {
  const sd = Math.sqrt(mu * (1 + alpha * mu));
  return { p10: Math.max(0, mu - z90 * sd), p50: mu, p90: mu + z90 * sd };
}

/** The model in TypeScript (float64): what the ONNX graph computes. */
export function predictTs(m: FittedModel, pairIdx: number, day: number, priceMinor: number): Quantiles {
  const n = featureCount(m.layout);
  const x = new Float64Array(n);
  writeFeatures(m.layout, indexOf(m.layout), pairIdx, day, priceMinor, x);
  let eta = 0;
  for (let i = 0; i < n; i++) eta += x[i]! * m.weights[i]!;
  return quantilesOf(Math.exp(eta), m.layout.alpha);
}

function mode(values: number[]): number {
  const counts = new Map<number, number>();
  let best = values[0]!;
  for (const v of values) {
    const c = (counts.get(v) ?? 0) + 1;
    counts.set(v, c);
    if (c > (counts.get(best) ?? 0)) best = v;
  }
  return best;
}

/** Solves A x = b for a symmetric positive-definite A (n × n, row-major) by Cholesky. */
function solveSpd(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      if (i === j) l[i * n + i] = Math.sqrt(Math.max(s, 1e-12));
      else l[i * n + j] = s / l[j * n + j]!;
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i * n + k]! * y[k]!;
    y[i] = s / l[i * n + i]!;
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * x[k]!;
    x[i] = s / l[i * n + i]!;
  }
  return x;
}

export interface TrainOptions {
  groups?: FeatureGroup[];
  /** Ridge penalty on every weight. */
  ridge?: number;
  iterations?: number;
}

/** Fits the GLM on the rows (stock-out days left out: their sales are censored). */
export function train(rows: HistoryRow[], options: TrainOptions = {}): FittedModel {
  const groups = options.groups ?? [...featureGroups];
  const ridge = options.ridge ?? 1;
  const usable = rows.filter((r) => !r.stockout);
  if (usable.length === 0) throw new Error("no sales history to train on");
  const pairs = [...new Set(rows.map((r) => pairKey(r.kioskId, r.sku)))].sort();
  const kiosks = [...new Set(rows.map((r) => r.kioskId))].sort();
  const pairIx = new Map(pairs.map((p, i) => [p, i]));
  const prices = pairs.map(() => [] as number[]);
  const last = pairs.map(() => ({ day: -Infinity, price: 0 }));
  for (const r of rows) {
    const i = pairIx.get(pairKey(r.kioskId, r.sku))!;
    prices[i]!.push(r.unitPriceMinor);
    if (r.day >= last[i]!.day) last[i] = { day: r.day, price: r.unitPriceMinor };
  }
  const layout: Layout = {
    kind: "poisson-glm",
    groups,
    epochDay: Math.min(...rows.map((r) => r.day)),
    kiosks,
    pairs,
    refPrice: prices.map(mode),
    lastPrice: last.map((l) => l.price),
    alpha: 0,
  };
  const ix = indexOf(layout);
  const n = featureCount(layout);
  const x = new Float64Array(usable.length * n);
  const y = new Float64Array(usable.length);
  usable.forEach((r, j) => {
    writeFeatures(layout, ix, pairIx.get(pairKey(r.kioskId, r.sku))!, r.day, r.unitPriceMinor, x, j * n);
    y[j] = r.quantity;
  });
  // Start from each pair's mean.
  const w = new Float64Array(n);
  const sums = new Float64Array(pairs.length);
  const counts = new Float64Array(pairs.length);
  usable.forEach((r) => {
    const i = pairIx.get(pairKey(r.kioskId, r.sku))!;
    sums[i]! += r.quantity;
    counts[i]!++;
  });
  for (let i = 0; i < pairs.length; i++) w[i] = Math.log(Math.max(0.1, counts[i]! > 0 ? sums[i]! / counts[i]! : 0.1));
  const mu = new Float64Array(usable.length);
  const nz: number[][] = [];
  for (let j = 0; j < usable.length; j++) {
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (x[j * n + i] !== 0) idx.push(i);
    nz.push(idx);
  }
  for (let it = 0; it < (options.iterations ?? 25); it++) {
    const g = new Float64Array(n);
    const h = new Float64Array(n * n);
    for (let j = 0; j < usable.length; j++) {
      let eta = 0;
      for (const i of nz[j]!) eta += x[j * n + i]! * w[i]!;
      mu[j] = Math.exp(Math.min(eta, 20));
      const resid = y[j]! - mu[j]!;
      for (const a of nz[j]!) {
        const xa = x[j * n + a]!;
        g[a]! += xa * resid;
        for (const b of nz[j]!) h[a * n + b]! += xa * x[j * n + b]! * mu[j]!;
      }
    }
    for (let i = 0; i < n; i++) {
      g[i]! -= ridge * w[i]!;
      h[i * n + i]! += ridge;
    }
    const step = solveSpd(h, g, n);
    let biggest = 0;
    for (let i = 0; i < n; i++) {
      w[i]! += step[i]!;
      biggest = Math.max(biggest, Math.abs(step[i]!));
    }
    if (biggest < 1e-7) break;
  }
  // Overdispersion by moments: E[(y - μ)² - y] = α μ².
  let num = 0;
  let den = 0;
  for (let j = 0; j < usable.length; j++) {
    let eta = 0;
    for (const i of nz[j]!) eta += x[j * n + i]! * w[i]!;
    const m = Math.exp(eta);
    num += (y[j]! - m) ** 2 - y[j]!;
    den += m * m;
  }
  layout.alpha = Math.max(0, num / den);
  return { layout, weights: w };
}

export interface Metrics {
  wape: number;
  mae: number;
  bias: number;
  coverage80: number;
  points: number;
}

export type Predictor = (pairIdx: number[], days: number[], prices: number[]) => Promise<Quantiles[]> | Quantiles[];

/**
 * The seasonal-naive forecast of `day` from an origin (the first forecast day): the same
 * weekday in the last week before the origin.
 */
export function seasonalNaiveDay(origin: number, day: number): number {
  const h = day - origin + 1;
  return day - 7 * Math.ceil(h / 7);
}

export interface Evaluation {
  model: Metrics;
  baseline: Metrics;
}

/**
 * Scores a predictor and the seasonal-naive baseline on the days origin … origin+horizon-1
 * (stock-out days left out: their sales are not the demand) for the layout's pairs.
 * The prices are the days' own (prices are set in advance, in the catalog).
 */
export async function evaluate(layout: Layout, history: HistoryRow[], origin: number, predict: Predictor, horizon = 14): Promise<Evaluation> {
  const ix = indexOf(layout);
  const byKey = new Map(history.map((r) => [`${pairKey(r.kioskId, r.sku)}|${r.day}`, r]));
  const targets = history.filter((r) => r.day >= origin && r.day < origin + horizon && !r.stockout && ix.pair.has(pairKey(r.kioskId, r.sku)));
  const preds = await predict(
    targets.map((r) => ix.pair.get(pairKey(r.kioskId, r.sku))!),
    targets.map((r) => r.day),
    targets.map((r) => r.unitPriceMinor),
  );
  const naive = targets.map((r) => ({ p10: NaN, p50: byKey.get(`${pairKey(r.kioskId, r.sku)}|${seasonalNaiveDay(origin, r.day)}`)?.quantity ?? 0, p90: NaN }));
  return { model: score(targets, preds), baseline: score(targets, naive) };
}

export function score(actuals: { quantity: number }[], preds: Quantiles[]): Metrics {
  let abs = 0;
  let sum = 0;
  let err = 0;
  let covered = 0;
  actuals.forEach((a, i) => {
    const p = preds[i]!;
    abs += Math.abs(a.quantity - p.p50);
    err += p.p50 - a.quantity;
    sum += a.quantity;
    if (a.quantity >= p.p10 && a.quantity <= p.p90) covered++;
  });
  const n = Math.max(1, actuals.length);
  return { wape: sum > 0 ? abs / sum : 0, mae: abs / n, bias: err / n, coverage80: covered / n, points: actuals.length };
}

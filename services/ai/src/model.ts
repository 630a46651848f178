// The demand-forecast model: a Poisson log-linear GLM whose parameters are tables indexed by
// kiosk × SKU pair, kiosk and SKU (never a one-hot row per observation), fitted in this process
// by block-coordinate Newton (IRLS) and served as an ONNX graph of Gathers (onnx.ts):
//
//   log μ(pair, day, price) = level[pair]                       (each kiosk × SKU's own level)
//                           + weekday[kiosk, dow]               (kiosk_weekday)
//                           + slope[kiosk] · t                  (kiosk_trend, t = (day − mid) / 28)
//                           + elasticity[sku] · log(price / ref) (log_price_ratio)
//   μ(hour) = μ · share[kiosk, dow, hour]                       (hour-of-day profile)
//
// The blocks are fitted in turn, each against the others as fixed offsets: the pair levels in
// closed form (the Poisson MLE given the rest), each kiosk's 7 weekday effects and slope by an
// 8 × 8 Newton step (weekday effects ridge-shrunk towards the fleet's mean weekday shape, the
// slope towards 0), each SKU's elasticity by a 1-D Newton step. Memory and time are linear in
// the rows; nothing is ever n_features². The hour-of-day shares come from the hourly sales
// counts (kiosk × weekday, shrunk towards the kiosk's all-week profile and that towards the
// fleet's). The predictive distribution is a negative binomial (variance μ + α μ², α from
// the training residuals by moments), thinned to hours with the same α; p10/p90 are its normal
// approximation. Pure: no I/O. evaluate() scores any predictor and the seasonal-naive baseline.
import { weekdayOf } from "./generator.js";

/** Feature groups beside each pair's level (and the hour-of-day profile, always in). */
export const featureGroups = ["kiosk_weekday", "kiosk_trend", "log_price_ratio"] as const;
export type FeatureGroup = (typeof featureGroups)[number];

/** The kind this build trains and serves (older registry versions of another kind are not loaded). */
export const modelKind = "demand-glm";

export interface HistoryRow {
  kioskId: string;
  sku: string;
  /** Day index (days since 1970-01-01, UTC). */
  day: number;
  quantity: number;
  unitPriceMinor: number;
  /** A stock-out censored the day's sales: not used for fitting nor scoring. */
  stockout: boolean;
  /** Units per UTC hour 0..23 when known (sums to `quantity`). */
  hourly?: number[] | null;
}

/** Everything needed to turn (kiosk, SKU, day, price, hour) into the graph's inputs. */
export interface Layout {
  kind: typeof modelKind;
  groups: FeatureGroup[];
  /** The middle of the training window (trend t = (day - epochDay) / 28). */
  epochDay: number;
  kiosks: string[];
  skus: string[];
  /** "kiosk|sku", sorted. */
  pairs: string[];
  /** Each pair's reference (most frequent) price and last seen price, minor units. */
  refPrice: number[];
  lastPrice: number[];
  /** Negative-binomial dispersion: Var = μ + α μ². */
  alpha: number;
}

export interface Params {
  /** Per pair. */
  level: Float64Array;
  /** Per kiosk: kiosk × 7 weekdays (0 = Sunday). */
  weekday: Float64Array;
  /** Per kiosk, per 28 days. */
  slope: Float64Array;
  /** Per SKU. */
  elasticity: Float64Array;
  /** Per kiosk × weekday × hour: the share of the day's demand in that UTC hour (each 24 sum to 1). */
  shares: Float64Array;
}

export interface FittedModel {
  layout: Layout;
  params: Params;
}

export const pairKey = (kioskId: string, sku: string) => `${kioskId}|${sku}`;
export const hoursPerWeek = 7 * 24;

/** Feature names (for the registry): each pair, then the groups and the hour profile. */
export function featureNames(l: Layout): string[] {
  return [...l.pairs.map((p) => `pair:${p}`), ...l.groups, "hour_profile"];
}

export interface FeatureIndex {
  pair: Map<string, number>;
  kiosk: Map<string, number>;
  /** Each pair's kiosk and SKU index. */
  pairKiosk: Int32Array;
  pairSku: Int32Array;
}

export function indexOf(l: Layout): FeatureIndex {
  const kiosk = new Map(l.kiosks.map((k, i) => [k, i]));
  const sku = new Map(l.skus.map((s, i) => [s, i]));
  const pairKiosk = new Int32Array(l.pairs.length);
  const pairSku = new Int32Array(l.pairs.length);
  l.pairs.forEach((p, i) => {
    const bar = p.indexOf("|");
    pairKiosk[i] = kiosk.get(p.slice(0, bar))!;
    pairSku[i] = sku.get(p.slice(bar + 1))!;
  });
  return { pair: new Map(l.pairs.map((p, i) => [p, i])), kiosk, pairKiosk, pairSku };
}

/** Trend time of a day. */
export const trendOf = (l: Layout, day: number) => (day - l.epochDay) / 28;

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

/** The model in TypeScript (float64): what the ONNX graph computes. `hour` undefined: the whole day. */
export function predictTs(m: FittedModel, pairIdx: number, day: number, priceMinor: number, hour?: number, ix = indexOf(m.layout)): Quantiles {
  const { layout: l, params: w } = m;
  const k = ix.pairKiosk[pairIdx]!;
  const dow = weekdayOf(day);
  const eta =
    w.level[pairIdx]! + w.weekday[k * 7 + dow]! + w.slope[k]! * trendOf(l, day) + w.elasticity[ix.pairSku[pairIdx]!]! * Math.log(priceMinor / l.refPrice[pairIdx]!);
  const share = hour === undefined ? 1 : w.shares[k * hoursPerWeek + dow * 24 + hour]!;
  return quantilesOf(Math.exp(eta) * share, l.alpha);
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

/** Solves A x = b for a small symmetric positive-definite A (n × n, row-major) by Cholesky. */
export function solveSpd(a: Float64Array, b: Float64Array, n: number): Float64Array {
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

/** Hourly sales counts per kiosk: 168 numbers (weekday × 24 + UTC hour), stock-out days left out. */
export type HourCounts = Map<string, ArrayLike<number>>;

export interface TrainOptions {
  groups?: FeatureGroup[];
  /** Ridge on each kiosk's weekday effects towards the fleet's mean weekday shape. */
  weekdayRidge?: number;
  /** Ridge on each kiosk's slope (per 28 days) towards 0. */
  slopeRidge?: number;
  /** Ridge on each SKU's elasticity towards 0. */
  elasticityRidge?: number;
  /** Pseudo-units of the shrinkage of an hour profile towards the next coarser one. */
  hourPrior?: number;
  /** Most block sweeps (stops earlier once the parameters settle). */
  iterations?: number;
  /** Hour counts from elsewhere (e.g. aggregated in SQL); default: from the rows' `hourly`. */
  hourCounts?: HourCounts;
}

/** Hour counts from rows that carry them (stock-out days left out: their hours are censored). */
export function hourCountsOf(rows: HistoryRow[]): HourCounts {
  const out = new Map<string, Float64Array>();
  for (const r of rows) {
    if (r.stockout || !r.hourly) continue;
    let c = out.get(r.kioskId);
    if (!c) out.set(r.kioskId, (c = new Float64Array(hoursPerWeek)));
    const base = weekdayOf(r.day) * 24;
    for (let h = 0; h < 24; h++) c[base + h]! += r.hourly[h] ?? 0;
  }
  return out;
}

/** Hour shares per kiosk × weekday: counts shrunk towards the kiosk's week, and that towards the fleet's. */
export function hourShares(kiosks: string[], counts: HourCounts, prior = 50): Float64Array {
  const fleet = new Float64Array(24);
  for (const c of counts.values()) for (let i = 0; i < hoursPerWeek; i++) fleet[i % 24]! += c[i]!;
  const fleetTotal = fleet.reduce((a, b) => a + b, 0);
  for (let h = 0; h < 24; h++) fleet[h] = fleetTotal > 0 ? fleet[h]! / fleetTotal : 1 / 24;
  const shares = new Float64Array(kiosks.length * hoursPerWeek);
  kiosks.forEach((k, ki) => {
    const c = counts.get(k);
    const week = new Float64Array(24);
    let weekTotal = 0;
    if (c) for (let i = 0; i < hoursPerWeek; i++) (week[i % 24]! += c[i]!), (weekTotal += c[i]!);
    for (let h = 0; h < 24; h++) week[h] = (week[h]! + prior * fleet[h]!) / (weekTotal + prior);
    for (let d = 0; d < 7; d++) {
      let dayTotal = 0;
      if (c) for (let h = 0; h < 24; h++) dayTotal += c[d * 24 + h]!;
      for (let h = 0; h < 24; h++) shares[ki * hoursPerWeek + d * 24 + h] = ((c ? c[d * 24 + h]! : 0) + prior * week[h]!) / (dayTotal + prior);
    }
  });
  return shares;
}

/** Fits the model on the rows (stock-out days left out: their sales are censored). */
export function train(rows: HistoryRow[], options: TrainOptions = {}): FittedModel {
  const groups = options.groups ?? [...featureGroups];
  const useWeekday = groups.includes("kiosk_weekday");
  const useTrend = groups.includes("kiosk_trend");
  const usePrice = groups.includes("log_price_ratio");
  const weekdayRidge = options.weekdayRidge ?? 10;
  const slopeRidge = options.slopeRidge ?? 100;
  const elasticityRidge = options.elasticityRidge ?? 1;
  if (!rows.some((r) => !r.stockout)) throw new Error("no sales history to train on");

  const keys = rows.map((r) => pairKey(r.kioskId, r.sku));
  const pairs = [...new Set(keys)].sort();
  const kiosks = [...new Set(rows.map((r) => r.kioskId))].sort();
  const skus = [...new Set(rows.map((r) => r.sku))].sort();
  const pairIx = new Map(pairs.map((p, i) => [p, i]));
  const prices = pairs.map(() => [] as number[]);
  const last = pairs.map(() => ({ day: -Infinity, price: 0 }));
  let first = Infinity;
  let lastDay = -Infinity;
  const rowPair = new Int32Array(rows.length);
  rows.forEach((r, j) => {
    const i = pairIx.get(keys[j]!)!;
    rowPair[j] = i;
    prices[i]!.push(r.unitPriceMinor);
    if (r.day >= last[i]!.day) last[i] = { day: r.day, price: r.unitPriceMinor };
    if (r.day < first) first = r.day;
    if (r.day > lastDay) lastDay = r.day;
  });
  const layout: Layout = {
    kind: modelKind,
    groups,
    epochDay: (first + lastDay) / 2,
    kiosks,
    skus,
    pairs,
    refPrice: prices.map(mode),
    lastPrice: last.map((l) => l.price),
    alpha: 0,
  };
  const ix = indexOf(layout);
  const P = pairs.length;
  const K = kiosks.length;
  const S = skus.length;

  // The usable rows as columns.
  let n = 0;
  for (const r of rows) if (!r.stockout) n++;
  const rp = new Int32Array(n);
  const rk = new Int32Array(n);
  const rs = new Int32Array(n);
  const rd = new Uint8Array(n);
  const rt = new Float64Array(n);
  const rl = new Float64Array(n);
  const ry = new Float64Array(n);
  let j = 0;
  rows.forEach((r, at) => {
    if (r.stockout) return;
    const p = rowPair[at]!;
    rp[j] = p;
    rk[j] = ix.pairKiosk[p]!;
    rs[j] = ix.pairSku[p]!;
    rd[j] = weekdayOf(r.day);
    rt[j] = trendOf(layout, r.day);
    rl[j] = Math.log(r.unitPriceMinor / layout.refPrice[p]!);
    ry[j] = r.quantity;
    j++;
  });

  const level = new Float64Array(P);
  const weekday = new Float64Array(K * 7);
  const slope = new Float64Array(K);
  const elasticity = new Float64Array(S);
  const mu = new Float64Array(n);
  const computeMu = () => {
    for (let i = 0; i < n; i++) {
      const k = rk[i]!;
      mu[i] = Math.exp(Math.min(30, level[rp[i]!]! + weekday[k * 7 + rd[i]!]! + slope[k]! * rt[i]! + elasticity[rs[i]!]! * rl[i]!));
    }
  };
  const num = new Float64Array(P);
  const den = new Float64Array(P);
  const fitLevels = () => {
    num.fill(0);
    den.fill(0);
    for (let i = 0; i < n; i++) {
      const p = rp[i]!;
      num[p]! += ry[i]!;
      den[p]! += mu[i]! / Math.exp(level[p]!);
    }
    // The Poisson MLE given the rest (a pair that never sold: a tenth of a unit over its days).
    for (let p = 0; p < P; p++) if (den[p]! > 0) level[p] = Math.log(Math.max(num[p]!, 0.1) / den[p]!);
  };

  // Per kiosk: gradient and Hessian of (7 weekday effects, slope).
  const sMu = new Float64Array(K * 7);
  const sMuT = new Float64Array(K * 7);
  const sRes = new Float64Array(K * 7);
  const sMuT2 = new Float64Array(K);
  const sResT = new Float64Array(K);
  const fleetShape = new Float64Array(7);
  const fitKiosks = () => {
    sMu.fill(0);
    sMuT.fill(0);
    sRes.fill(0);
    sMuT2.fill(0);
    sResT.fill(0);
    for (let i = 0; i < n; i++) {
      const k = rk[i]!;
      const c = k * 7 + rd[i]!;
      const m = mu[i]!;
      const t = rt[i]!;
      const res = ry[i]! - m;
      sMu[c]! += m;
      sMuT[c]! += m * t;
      sRes[c]! += res;
      sMuT2[k]! += m * t * t;
      sResT[k]! += res * t;
    }
    // The fleet's weekday shape: the μ-weighted mean of the kiosks' effects.
    if (useWeekday) {
      for (let d = 0; d < 7; d++) {
        let a = 0;
        let b = 0;
        for (let k = 0; k < K; k++) (a += sMu[k * 7 + d]! * weekday[k * 7 + d]!), (b += sMu[k * 7 + d]!);
        fleetShape[d] = b > 0 ? a / b : 0;
      }
    }
    const h = new Float64Array(64);
    const g = new Float64Array(8);
    for (let k = 0; k < K; k++) {
      h.fill(0);
      g.fill(0);
      for (let d = 0; d < 7; d++) {
        const c = k * 7 + d;
        if (useWeekday) {
          h[d * 8 + d] = sMu[c]! + weekdayRidge;
          g[d] = sRes[c]! - weekdayRidge * (weekday[c]! - fleetShape[d]!);
          if (useTrend) h[d * 8 + 7] = h[7 * 8 + d] = sMuT[c]!;
        } else h[d * 8 + d] = 1;
      }
      if (useTrend) {
        h[63] = sMuT2[k]! + slopeRidge;
        g[7] = sResT[k]! - slopeRidge * slope[k]!;
      } else h[63] = 1;
      const step = solveSpd(h, g, 8);
      if (useWeekday) {
        // Weekday effects centred on 0; their mean moves into the kiosk's pair levels.
        let mean = 0;
        for (let d = 0; d < 7; d++) mean += (weekday[k * 7 + d]! += step[d]!) / 7;
        for (let d = 0; d < 7; d++) weekday[k * 7 + d]! -= mean;
      }
      if (useTrend) slope[k]! += step[7]!;
    }
  };
  const eRes = new Float64Array(S);
  const eInfo = new Float64Array(S);
  const fitElasticities = () => {
    eRes.fill(0);
    eInfo.fill(0);
    for (let i = 0; i < n; i++) {
      const l = rl[i]!;
      if (l === 0) continue;
      eRes[rs[i]!]! += (ry[i]! - mu[i]!) * l;
      eInfo[rs[i]!]! += mu[i]! * l * l;
    }
    for (let s = 0; s < S; s++) elasticity[s]! += (eRes[s]! - elasticityRidge * elasticity[s]!) / (eInfo[s]! + elasticityRidge);
  };

  computeMu();
  const before = new Float64Array(K * 7 + K + S);
  for (let it = 0; it < (options.iterations ?? 50); it++) {
    before.set(weekday, 0);
    before.set(slope, K * 7);
    before.set(elasticity, K * 8);
    fitLevels();
    computeMu();
    if (useWeekday || useTrend) {
      fitKiosks();
      computeMu();
    }
    if (usePrice) {
      fitElasticities();
      computeMu();
    }
    let biggest = 0;
    for (let i = 0; i < K * 7; i++) biggest = Math.max(biggest, Math.abs(weekday[i]! - before[i]!));
    for (let i = 0; i < K; i++) biggest = Math.max(biggest, Math.abs(slope[i]! - before[K * 7 + i]!));
    for (let i = 0; i < S; i++) biggest = Math.max(biggest, Math.abs(elasticity[i]! - before[K * 8 + i]!));
    if (biggest < 1e-5) break;
  }
  fitLevels();
  computeMu();
  // Overdispersion by moments: E[(y - μ)² - y] = α μ².
  let a = 0;
  let b = 0;
  for (let i = 0; i < n; i++) {
    a += (ry[i]! - mu[i]!) ** 2 - ry[i]!;
    b += mu[i]! * mu[i]!;
  }
  layout.alpha = Math.max(0, a / b);
  const shares = hourShares(kiosks, options.hourCounts ?? hourCountsOf(rows), options.hourPrior);
  return { layout, params: { level, weekday, slope, elasticity, shares } };
}

export interface Metrics {
  wape: number;
  mae: number;
  bias: number;
  coverage80: number;
  points: number;
}

/** Forecasts for (pair, day, price[, UTC hour]); no hours: whole days. */
export type Predictor = (pairIdx: number[], days: number[], prices: number[], hours?: number[]) => Promise<Quantiles[]> | Quantiles[];

/**
 * The seasonal-naive forecast of `day` from an origin (the first forecast day): the same
 * weekday (and, hourly, the same hour) in the last week before the origin.
 */
export function seasonalNaiveDay(origin: number, day: number): number {
  const h = day - origin + 1;
  return day - 7 * Math.ceil(h / 7);
}

export interface Evaluation {
  model: Metrics;
  baseline: Metrics;
}

export type Granularity = "daily" | "hourly";

/**
 * Scores a predictor and the seasonal-naive baseline on the days origin … origin+horizon-1
 * (stock-out days left out: their sales are not the demand) for the layout's pairs, per day or
 * per UTC hour (rows without hourly counts are left out then). The prices are the days' own
 * (prices are set in advance, in the catalog).
 */
export async function evaluate(layout: Layout, history: HistoryRow[], origin: number, predict: Predictor, horizon = 14, granularity: Granularity = "daily"): Promise<Evaluation> {
  const pairs = new Map(layout.pairs.map((p, i) => [p, i]));
  const byKey = new Map<string, HistoryRow>();
  for (const r of history) if (r.day >= origin - 7 && r.day < origin) byKey.set(`${pairKey(r.kioskId, r.sku)}|${r.day}`, r);
  const targets = history.filter(
    (r) => r.day >= origin && r.day < origin + horizon && !r.stockout && pairs.has(pairKey(r.kioskId, r.sku)) && (granularity === "daily" || r.hourly),
  );
  if (granularity === "daily") {
    const preds = await predict(
      targets.map((r) => pairs.get(pairKey(r.kioskId, r.sku))!),
      targets.map((r) => r.day),
      targets.map((r) => r.unitPriceMinor),
    );
    const naive = targets.map((r) => ({ p10: NaN, p50: byKey.get(`${pairKey(r.kioskId, r.sku)}|${seasonalNaiveDay(origin, r.day)}`)?.quantity ?? 0, p90: NaN }));
    return { model: score(targets, preds), baseline: score(targets, naive) };
  }
  const actuals: { quantity: number }[] = [];
  const pairIdx: number[] = [];
  const days: number[] = [];
  const prices: number[] = [];
  const hours: number[] = [];
  const naive: Quantiles[] = [];
  for (const r of targets) {
    const before = byKey.get(`${pairKey(r.kioskId, r.sku)}|${seasonalNaiveDay(origin, r.day)}`)?.hourly;
    for (let h = 0; h < 24; h++) {
      actuals.push({ quantity: r.hourly![h] ?? 0 });
      pairIdx.push(pairs.get(pairKey(r.kioskId, r.sku))!);
      days.push(r.day);
      prices.push(r.unitPriceMinor);
      hours.push(h);
      naive.push({ p10: NaN, p50: before?.[h] ?? 0, p90: NaN });
    }
  }
  const preds = await predict(pairIdx, days, prices, hours);
  return { model: score(actuals, preds), baseline: score(actuals, naive) };
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

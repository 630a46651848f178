// Stock-out risk and restock quantities from a stock level and the demand forecast. Pure:
// no I/O. A day's forecast (mean μ, negative-binomial variance μ + α μ², as the model's
// quantiles) is spread evenly over its 24 hours; hours are taken as independent, so the
// demand from now until t has mean M(t) = Σ μ_h and variance V(t) = Σ v_h, and the same
// normal approximation the model's 10/50/90 % quantiles use.
import { z90 } from "./model.js";

export const dayMs = 86_400_000;
const hourMs = 3_600_000;
/** The horizon the forecast reaches: 14 days. */
export const horizonHours = 14 * 24;

/** Φ, the standard normal CDF (Abramowitz–Stegun 7.1.26 through erf; |error| < 1.5e-7). */
export function normalCdf(x: number): number {
  const t = 1 / (1 + (0.3275911 * Math.abs(x)) / Math.SQRT2);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(x * x) / 2);
  return x >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}

/** Φ⁻¹ (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (p <= 0 || p >= 1) throw new RangeError("p must be in (0, 1)");
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** Cumulative demand from `nowMs`, hour by hour over the horizon. */
export interface DemandPath {
  /** mean[h], variance[h]: demand in the first h hours (h = 0 … horizonHours). */
  mean: Float64Array;
  variance: Float64Array;
}

/**
 * `dailyMean(day)`: the forecast mean of a UTC day index (today … today + 14).
 */
export function demandPath(nowMs: number, alpha: number, dailyMean: (day: number) => number): DemandPath {
  const mean = new Float64Array(horizonHours + 1);
  const variance = new Float64Array(horizonHours + 1);
  for (let h = 1; h <= horizonHours; h++) {
    // The hour [now + h-1, now + h), split at a day boundary when it straddles one.
    const start = nowMs + (h - 1) * hourMs;
    const end = start + hourMs;
    let m = 0;
    let v = 0;
    for (let t = start; t < end; ) {
      const day = Math.floor(t / dayMs);
      const until = Math.min(end, (day + 1) * dayMs);
      const share = (until - t) / dayMs;
      const mu = dailyMean(day);
      m += mu * share;
      v += (mu + alpha * mu * mu) * share;
      t = until;
    }
    mean[h] = mean[h - 1]! + m;
    variance[h] = variance[h - 1]! + v;
  }
  return { mean, variance };
}

export interface Risk {
  /** P(demand until the visit > available). */
  probability: number;
  expected: boolean;
  /** Hours until the mean, the 90 % and the 10 % demand path reach `available` (NaN: beyond the horizon). */
  hours: number;
  earlyHours: number;
  lateHours: number;
  demandToVisit: number;
}

/** The first (fractional) hour at which `level(h)` reaches `target`, NaN when it does not within the horizon. */
function crossing(level: (h: number) => number, target: number): number {
  if (level(0) >= target) return 0;
  for (let h = 1; h <= horizonHours; h++) {
    const now = level(h);
    if (now >= target) {
      const before = level(h - 1);
      return h - 1 + (now > before ? (target - before) / (now - before) : 0);
    }
  }
  return NaN;
}

export function stockoutRisk(path: DemandPath, available: number, visitHours: number): Risk {
  const m = path.mean[visitHours]!;
  const sd = Math.sqrt(path.variance[visitHours]!);
  // Demand is whole units: it exceeds `available` when it reaches available + 1 (continuity correction at +0.5).
  const probability = available <= 0 ? 1 : sd > 0 ? 1 - normalCdf((available + 0.5 - m) / sd) : m > available ? 1 : 0;
  const at = (k: number) => (h: number) => path.mean[h]! + k * Math.sqrt(path.variance[h]!);
  const target = Math.max(0, available);
  const hours = available <= 0 ? 0 : crossing(at(0), target);
  return {
    probability,
    expected: !Number.isNaN(hours),
    hours,
    earlyHours: available <= 0 ? 0 : crossing(at(z90), target),
    lateHours: available <= 0 ? 0 : crossing(at(-z90), target),
    demandToVisit: m,
  };
}

export interface RestockNeed {
  mean: number;
  atServiceLevel: number;
  quantity: number;
}

/** Units to bring so that demand until the visit is met with probability `serviceLevel`. */
export function restockNeed(path: DemandPath, available: number, visitHours: number, serviceLevel: number): RestockNeed {
  const mean = path.mean[visitHours]!;
  const atServiceLevel = mean + normalQuantile(serviceLevel) * Math.sqrt(path.variance[visitHours]!);
  return { mean, atServiceLevel, quantity: Math.max(0, Math.ceil(atServiceLevel - Math.max(0, available))) };
}

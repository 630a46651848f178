// A wave's health gate: the kiosks updated so far against a control cohort (target kiosks
// not sent the release yet) over the same hours (since the wave's bake started), as rate
// ratios. Counting reads kiosk_facts (per-kiosk counts per time bucket, kept as events arrive:
// facts.ts) for a spread sample of at most cohortSampleMax kiosks per cohort, so a gate costs
// the same at 1,000 and 100,000 kiosks (measure); judging is pure (judge). With ai configured,
// a few kiosks of each cohort are also held to ai's forecast (sales_vs_forecast).
//
// Small counts: a rate is judged only when the updated cohort is expected to see at least
// min_samples events at the control's rate (and the control saw as many): before that the
// metric is "not judged yet" and the gate waits (up to max_wait past the bake, then passes
// saying so). At 20 expected events a rate has a relative standard error of about 22 %, at
// 100 about 10 %: raise min_samples for a tighter gate. Rates that should stay near zero
// (faults, payment failures) get an absolute allowance of 0.05 on top of the ratio, so one
// fault among few samples does not stop a rollout whose control happens to have none.
// Install failures (FAILED, REVERTED, REJECTED) are judged from the first finished install:
// a canary kiosk that could not run the version is reason enough.
import type { PoolClient, Pool } from "@adminkiosk/runtime";
import { unwrittenIdsSql } from "./plan.js";

export interface GateConfig {
  maxInstallFailureShare: number;
  maxFaultRatio: number;
  minSalesRatio: number;
  maxPaymentFailureRatio: number;
  minConversionRatio: number;
  minSamples: number;
  /** null: 3 x the wave's bake. */
  maxWaitMs: number | null;
  /** How far before the rollout's start each cohort's own sales are read (the baseline). */
  baselineMs: number;
}

export const defaultGate: GateConfig = {
  maxInstallFailureShare: 0.2,
  maxFaultRatio: 2,
  minSalesRatio: 0.8,
  maxPaymentFailureRatio: 2,
  minConversionRatio: 0.8,
  minSamples: 20,
  maxWaitMs: null,
  baselineMs: 24 * 3_600_000,
};

/** The absolute allowance on top of a ratio for rates that are normally near zero. */
export const nearZeroAllowance = 0.05;

export interface Cohort {
  kiosks: number;
  /** The kiosks counted below: all of them, or a spread sample of cohortSampleMax. */
  measuredKiosks: number;
  sales: number;
  /** Sales in the baseline window before the rollout started. */
  baselineSales: number;
  failedOrders: number;
  paymentFailures: number;
  samples: number;
  faultySamples: number;
  /** Streams opened on the version the kiosk ran (a crash or a lost connection; not an install's restart). */
  reconnects: number;
}

export interface Measured {
  updated: Cohort;
  control: Cohort;
  /** The wave's installs: finished, and failed/reverted/rejected among them. */
  installsFinished: number;
  installsFailed: number;
  hours: number;
  baselineHours: number;
  /** The forecast SKU's units sold and ai's forecast for them, over the asked kiosks of each cohort (ai configured). */
  forecast?: { sku: string; updated: ForecastSide; control: ForecastSide };
}

export interface ForecastSide {
  sold: number;
  forecast: number;
  /** Kiosks ai answered for, of those asked. */
  kiosks: number;
  asked: number;
}

export interface GateMetric {
  name: "install_failure_share" | "fault_rate" | "reconnect_rate" | "sales_per_kiosk_hour" | "sales_vs_forecast" | "payment_failure_rate" | "conversion";
  signal: "device" | "business";
  updated: number;
  control: number;
  threshold: number;
  /** "max": updated must not exceed the threshold; "min": not fall below it. */
  bound: "max" | "min";
  updatedSamples: number;
  controlSamples: number;
  judged: boolean;
  passed: boolean;
}

/** Each cohort is measured on at most this many kiosks: a spread sample (by a hash of the kiosk id) beyond. */
export const cohortSampleMax = 2_000;
/** Kiosks of each cohort whose forecast is asked for sales_vs_forecast (the first of the sample by hash). */
export const forecastKiosksDefault = 20;

/** ai's forecast of the gate's SKU for a kiosk: units expected over [from, to) (p50), undefined when ai cannot say. */
export interface GateForecasts {
  expectedUnits(kioskId: string, from: Date, to: Date): Promise<number | undefined>;
  sku: string;
}

export interface GateReader {
  /** kiosk_facts' bucket width (FLEET_FACTS_BUCKET_SECONDS). */
  bucketMs: number;
  forecasts?: GateForecasts;
  forecastKiosks?: number;
  sampleMax?: number;
}

/**
 * The cohorts: targets installed up to the wave (updated) and targets not sent it (control) —
 * pending rows, and the kiosks of waves whose rows are not written yet (their plans).
 */
const cohortWhere = "rollout_id = $1 AND ((state = 'installed' AND wave <= $2) OR state = 'pending')";
const kiosksSql = `SELECT state = 'installed' AS updated, count(*)::int AS n FROM rollout_targets WHERE ${cohortWhere} GROUP BY 1
  UNION ALL SELECT false, COALESCE(sum(kiosks - materialised), 0)::int FROM rollout_waves WHERE rollout_id = $1 AND materialised < kiosks`;
/**
 * Each sampled kiosk's counts from kiosk_facts, weighted by how much of each bucket's observed
 * span lies inside the window ($5 .. $6, the bucket holding now observed up to now) and inside
 * the baseline ($7 .. $8): a window that starts inside a bucket takes its share of it.
 */
const span = (from: string, to: string) =>
  `GREATEST(0, extract(epoch FROM LEAST(f.bucket + $9 * interval '1 millisecond', $6::timestamptz, ${to}::timestamptz) - GREATEST(f.bucket, ${from}::timestamptz)))
   / GREATEST(0.001, extract(epoch FROM LEAST(f.bucket + $9 * interval '1 millisecond', $6::timestamptz) - f.bucket))`;
const factsSql = `
  SELECT c.kiosk_id, c.updated, x.* FROM (
    SELECT kiosk_id, state = 'installed' AS updated FROM rollout_targets
    WHERE ${cohortWhere} AND (hashtext(kiosk_id) & 65535) < CASE WHEN state = 'installed' THEN $3::int ELSE $4::int END
    UNION ALL
    SELECT u.kiosk_id, false FROM (${unwrittenIdsSql("$1")}) u WHERE (hashtext(u.kiosk_id) & 65535) < $4::int
  ) c
  LEFT JOIN LATERAL (
    SELECT sum(f.sales * w.now)::float8 AS sales, sum(f.sales * w.base)::float8 AS base, sum(f.forecast_units * w.now)::float8 AS units,
           sum(f.failed_orders * w.now)::float8 AS failed, sum(f.payment_failures * w.now)::float8 AS pay,
           sum(f.samples * w.now)::float8 AS samples, sum(f.faulty_samples * w.now)::float8 AS bad, sum(f.reconnects * w.now)::float8 AS reconnects
    FROM kiosk_facts f, LATERAL (SELECT ${span("$5", "$6")} AS now, ${span("$7", "$8")} AS base) w
    WHERE f.kiosk_id = c.kiosk_id AND f.bucket > LEAST($5::timestamptz, $7::timestamptz) - $9 * interval '1 millisecond' AND f.bucket < $6::timestamptz
  ) x ON true
  ORDER BY hashtext(c.kiosk_id), c.kiosk_id`;

interface FactsRow {
  kiosk_id: string;
  updated: boolean;
  sales: number | null;
  base: number | null;
  units: number | null;
  failed: number | null;
  pay: number | null;
  samples: number | null;
  bad: number | null;
  reconnects: number | null;
}

/** The share (0..65536) of a cohort of `n` kiosks a sample of at most `max` takes. */
const sampleShare = (n: number, max: number) => (n <= max ? 65_536 : Math.ceil((65_536 * max) / n));

/**
 * Counts both cohorts' events since `since` (the wave's bake start) for wave `wave` of
 * `rolloutId` from kiosk_facts, and their sales in the `baselineMs` before `started` (the
 * rollout's start); with ai's forecasts, the forecast SKU's units sold against the forecast.
 */
export async function measure(
  db: Pool | PoolClient,
  reader: GateReader,
  rolloutId: string,
  wave: number,
  since: Date,
  baseline: { started: Date; baselineMs: number },
  now = new Date(),
): Promise<Measured> {
  const baseFrom = new Date(baseline.started.getTime() - baseline.baselineMs);
  const max = reader.sampleMax ?? cohortSampleMax;
  const [{ rows: k }, { rows: installs }] = await Promise.all([
    db.query<{ updated: boolean; n: number }>(kiosksSql, [rolloutId, wave]),
    db.query<{ finished: number; failed: number }>(
      `SELECT count(*) FILTER (WHERE state IN ('installed', 'failed', 'reverted', 'rejected'))::int AS finished,
              count(*) FILTER (WHERE state IN ('failed', 'reverted', 'rejected'))::int AS failed
       FROM rollout_targets WHERE rollout_id = $1 AND wave = $2`,
      [rolloutId, wave],
    ),
  ]);
  const total = (updated: boolean) => k.filter((r) => r.updated === updated).reduce((a, r) => a + r.n, 0);
  const { rows } = await db.query<FactsRow>(factsSql, [
    rolloutId,
    wave,
    sampleShare(total(true), max),
    sampleShare(total(false), max),
    since,
    now,
    baseFrom,
    baseline.started,
    reader.bucketMs,
  ]);
  const cohort = (updated: boolean): Cohort => {
    const c: Cohort = { kiosks: total(updated), measuredKiosks: 0, sales: 0, baselineSales: 0, failedOrders: 0, paymentFailures: 0, samples: 0, faultySamples: 0, reconnects: 0 };
    for (const r of rows) {
      if (r.updated !== updated) continue;
      c.measuredKiosks++;
      c.sales += r.sales ?? 0;
      c.baselineSales += r.base ?? 0;
      c.failedOrders += r.failed ?? 0;
      c.paymentFailures += r.pay ?? 0;
      c.samples += r.samples ?? 0;
      c.faultySamples += r.bad ?? 0;
      c.reconnects += r.reconnects ?? 0;
    }
    return c;
  };
  const m: Measured = {
    updated: cohort(true),
    control: cohort(false),
    installsFinished: installs[0]!.finished,
    installsFailed: installs[0]!.failed,
    hours: Math.max(0, now.getTime() - since.getTime()) / 3_600_000,
    baselineHours: baseline.baselineMs / 3_600_000,
  };
  if (reader.forecasts && now > since) m.forecast = await againstForecast(reader.forecasts, reader.forecastKiosks ?? forecastKiosksDefault, rows, since, now);
  return m;
}

/** The first `perCohort` kiosks of each cohort's sample (by hash): their forecast SKU's units sold and forecast. */
async function againstForecast(forecasts: GateForecasts, perCohort: number, rows: FactsRow[], since: Date, now: Date): Promise<Measured["forecast"]> {
  const out = { sku: forecasts.sku, updated: { sold: 0, forecast: 0, kiosks: 0, asked: 0 }, control: { sold: 0, forecast: 0, kiosks: 0, asked: 0 } };
  const picked = [...rows.filter((r) => r.updated).slice(0, perCohort), ...rows.filter((r) => !r.updated).slice(0, perCohort)];
  const expected = await Promise.all(picked.map((r) => forecasts.expectedUnits(r.kiosk_id, since, now)));
  picked.forEach((r, i) => {
    const c = r.updated ? out.updated : out.control;
    c.asked++;
    const e = expected[i];
    if (e === undefined) return;
    c.kiosks++;
    c.sold += r.units ?? 0;
    c.forecast += e;
  });
  return out;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);

/** The gate's metrics from what was measured; `passed` is false only for a judged metric past its threshold. */
export function judge(m: Measured, g: GateConfig): GateMetric[] {
  const { updated: u, control: c } = m;
  const out: GateMetric[] = [];
  // Counts are weighted by the share of each bucket inside the window: shown whole.
  const add = (x: Omit<GateMetric, "passed">) =>
    out.push({ ...x, updatedSamples: Math.round(x.updatedSamples), controlSamples: Math.round(x.controlSamples), passed: !x.judged || (x.bound === "max" ? x.updated <= x.threshold : x.updated >= x.threshold) });

  add({
    name: "install_failure_share",
    signal: "device",
    updated: ratio(m.installsFailed, m.installsFinished),
    control: 0,
    threshold: g.maxInstallFailureShare,
    bound: "max",
    updatedSamples: m.installsFinished,
    controlSamples: 0,
    judged: m.installsFinished >= 1,
  });

  const faultU = ratio(u.faultySamples, u.samples);
  const faultC = ratio(c.faultySamples, c.samples);
  add({
    name: "fault_rate",
    signal: "device",
    updated: faultU,
    control: faultC,
    threshold: faultC * g.maxFaultRatio + nearZeroAllowance,
    bound: "max",
    updatedSamples: u.samples,
    controlSamples: c.samples,
    judged: u.samples >= g.minSamples && c.samples >= g.minSamples,
  });

  const kioskHoursU = u.measuredKiosks * m.hours;
  const kioskHoursC = c.measuredKiosks * m.hours;
  // Streams opened per kiosk-hour: a version that crashes (or drops its connection) after it
  // came up reconnects. Judged once the updated kiosks reconnected min_samples times or were
  // watched min_samples kiosk-hours, and the control was watched as long.
  const reconnectU = ratio(u.reconnects, kioskHoursU);
  const reconnectC = ratio(c.reconnects, kioskHoursC);
  add({
    name: "reconnect_rate",
    signal: "device",
    updated: reconnectU,
    control: reconnectC,
    threshold: reconnectC * g.maxFaultRatio + nearZeroAllowance,
    bound: "max",
    updatedSamples: u.reconnects,
    controlSamples: c.reconnects,
    judged: kioskHoursU > 0 && (u.reconnects >= g.minSamples || kioskHoursU >= g.minSamples) && kioskHoursC >= Math.min(kioskHoursU, g.minSamples),
  });

  const salesU = ratio(u.sales, kioskHoursU);
  const salesC = ratio(c.sales, kioskHoursC);
  // What the updated kiosks should sell now: with a baseline, their own earlier rate moved as
  // the control's moved since (a difference in differences); without one, the control's rate.
  const withBaseline = u.baselineSales >= g.minSamples && c.baselineSales >= g.minSamples;
  const expectedU = withBaseline
    ? ratio(u.baselineSales, u.measuredKiosks * m.baselineHours) * ratio(salesC, ratio(c.baselineSales, c.measuredKiosks * m.baselineHours))
    : salesC;
  add({
    name: "sales_per_kiosk_hour",
    signal: "business",
    updated: salesU,
    control: salesC,
    threshold: expectedU * g.minSalesRatio,
    bound: "min",
    updatedSamples: u.sales,
    controlSamples: c.sales,
    // Enough sales expected in the updated cohort, and seen in the control.
    judged: c.sales >= g.minSamples && expectedU * kioskHoursU >= g.minSamples,
  });

  // The forecast SKU's units sold per unit ai forecast for the same kiosks and hours: each
  // cohort against ai's expectation, the updated held to the control's ratio.
  if (m.forecast) {
    const f = m.forecast;
    const fu = ratio(f.updated.sold, f.updated.forecast);
    const fc = ratio(f.control.sold, f.control.forecast);
    add({
      name: "sales_vs_forecast",
      signal: "business",
      updated: fu,
      control: fc,
      threshold: fc * g.minSalesRatio,
      bound: "min",
      updatedSamples: Math.round(f.updated.sold),
      controlSamples: Math.round(f.control.sold),
      // Enough units forecast for the updated kiosks and sold by the control.
      judged: f.updated.forecast * fc >= g.minSamples && f.control.sold >= g.minSamples,
    });
  }

  const attemptsU = u.sales + u.failedOrders;
  const attemptsC = c.sales + c.failedOrders;
  const payU = ratio(u.paymentFailures, attemptsU);
  const payC = ratio(c.paymentFailures, attemptsC);
  const enoughAttempts = attemptsU >= g.minSamples && attemptsC >= g.minSamples;
  add({
    name: "payment_failure_rate",
    signal: "business",
    updated: payU,
    control: payC,
    threshold: payC * g.maxPaymentFailureRatio + nearZeroAllowance,
    bound: "max",
    updatedSamples: attemptsU,
    controlSamples: attemptsC,
    judged: enoughAttempts,
  });
  const convU = ratio(u.sales, attemptsU);
  const convC = ratio(c.sales, attemptsC);
  add({
    name: "conversion",
    signal: "business",
    updated: convU,
    control: convC,
    threshold: convC * g.minConversionRatio,
    bound: "min",
    updatedSamples: attemptsU,
    controlSamples: attemptsC,
    judged: enoughAttempts,
  });
  return out;
}

const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toFixed(3));

/** "sales_per_kiosk_hour: updated 41.2 vs control 60.3 (must be >= 48.2)…" for a stop reason. */
export function describeMetric(x: GateMetric, m: Measured): string {
  const base = `${x.name} (${x.signal}): updated ${fmt(x.updated)}`;
  if (x.name === "install_failure_share")
    return `${base} (${m.installsFailed} of ${m.installsFinished} installs failed or reverted), must be <= ${fmt(x.threshold)}`;
  const why =
    x.name === "sales_per_kiosk_hour" && m.updated.baselineSales > 0
      ? `; before the rollout ${fmt(ratio(m.updated.baselineSales, m.updated.measuredKiosks * m.baselineHours))} updated vs ${fmt(ratio(m.control.baselineSales, m.control.measuredKiosks * m.baselineHours))} control`
      : x.name === "sales_vs_forecast" && m.forecast
        ? `; ${m.forecast.sku}: ${fmt(m.forecast.updated.sold)} sold vs ${fmt(m.forecast.updated.forecast)} forecast at ${m.forecast.updated.kiosks} updated kiosks, ${fmt(m.forecast.control.sold)} vs ${fmt(m.forecast.control.forecast)} at ${m.forecast.control.kiosks} control kiosks`
        : "";
  const sampled = m.updated.measuredKiosks < m.updated.kiosks || m.control.measuredKiosks < m.control.kiosks ? ` (measured on ${m.updated.measuredKiosks} and ${m.control.measuredKiosks})` : "";
  return `${base} vs control ${fmt(x.control)}, must be ${x.bound === "max" ? "<=" : ">="} ${fmt(x.threshold)} (${x.updatedSamples} updated / ${x.controlSamples} control events; ${m.updated.kiosks} updated, ${m.control.kiosks} control kiosks${sampled} over ${m.hours >= 0.1 ? `${m.hours.toFixed(2)} h` : `${Math.round(m.hours * 3600)} s`}${why})`;
}

// A wave's health gate: the kiosks updated so far against a control cohort (target kiosks
// not sent the release yet) over the same hours (since the wave's bake started), as rate
// ratios. Counting is one SQL statement (measure); judging is pure (judge).
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
  sales: number;
  /** Sales in the baseline window before the rollout started. */
  baselineSales: number;
  failedOrders: number;
  paymentFailures: number;
  samples: number;
  faultySamples: number;
}

export interface Measured {
  updated: Cohort;
  control: Cohort;
  /** The wave's installs: finished, and failed/reverted/rejected among them. */
  installsFinished: number;
  installsFailed: number;
  hours: number;
  baselineHours: number;
}

export interface GateMetric {
  name: "install_failure_share" | "fault_rate" | "sales_per_kiosk_hour" | "payment_failure_rate" | "conversion";
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

/** The cohorts: targets installed up to the wave (updated) and targets not sent it (control). */
const cohorts = `c AS (
    SELECT kiosk_id, state = 'installed' AS updated FROM rollout_targets
    WHERE rollout_id = $1 AND ((state = 'installed' AND wave <= $2) OR state = 'pending')
  )`;
// One statement per source, so a Pool runs them side by side (a transaction's client, in turn).
const kiosksSql = `WITH ${cohorts} SELECT updated, count(*)::int AS n FROM c GROUP BY updated`;
const salesSql = `WITH ${cohorts}
  SELECT c.updated, count(*) FILTER (WHERE s.completed_at >= $3)::int AS n,
         count(*) FILTER (WHERE s.completed_at >= $4 AND s.completed_at < $5)::int AS base
  FROM kiosk_sales s JOIN c USING (kiosk_id) WHERE s.completed_at >= LEAST($3::timestamptz, $4::timestamptz) GROUP BY c.updated`;
const failuresSql = `WITH ${cohorts}
  SELECT c.updated, count(*)::int AS n, count(*) FILTER (WHERE f.failure_code <> 'HOLD_EXPIRED')::int AS pay
  FROM kiosk_order_failures f JOIN c USING (kiosk_id) WHERE f.failed_at >= $3 GROUP BY c.updated`;
const telemetrySql = `WITH ${cohorts}
  SELECT c.updated, count(*)::int AS n, count(*) FILTER (WHERE ts.printer = 3 OR ts.scanner = 3 OR cardinality(ts.errors) > 0)::int AS bad
  FROM telemetry_samples ts JOIN c USING (kiosk_id) WHERE ts.sampled_at >= $3 GROUP BY c.updated`;

/**
 * Counts both cohorts' events since `since` (the wave's bake start) for wave `wave` of
 * `rolloutId`, and their sales in the `baselineMs` before `started` (the rollout's start).
 */
export async function measure(db: Pool | PoolClient, rolloutId: string, wave: number, since: Date, baseline: { started: Date; baselineMs: number }, now = new Date()): Promise<Measured> {
  const baseFrom = new Date(baseline.started.getTime() - baseline.baselineMs);
  const [k, sales, failures, telemetry, { rows: installs }] = await Promise.all([
    db.query<{ updated: boolean; n: number }>(kiosksSql, [rolloutId, wave]),
    db.query<{ updated: boolean; n: number; base: number }>(salesSql, [rolloutId, wave, since, baseFrom, baseline.started]),
    db.query<{ updated: boolean; n: number; pay: number }>(failuresSql, [rolloutId, wave, since]),
    db.query<{ updated: boolean; n: number; bad: number }>(telemetrySql, [rolloutId, wave, since]),
    db.query<{ finished: number; failed: number }>(
      `SELECT count(*) FILTER (WHERE state IN ('installed', 'failed', 'reverted', 'rejected'))::int AS finished,
              count(*) FILTER (WHERE state IN ('failed', 'reverted', 'rejected'))::int AS failed
       FROM rollout_targets WHERE rollout_id = $1 AND wave = $2`,
      [rolloutId, wave],
    ),
  ]);
  const cohort = (updated: boolean): Cohort => {
    const of = <T extends { updated: boolean }>(rows: T[]) => rows.find((x) => x.updated === updated);
    const sr = of(sales.rows);
    const fr = of(failures.rows);
    const tr = of(telemetry.rows);
    return { kiosks: of(k.rows)?.n ?? 0, sales: sr?.n ?? 0, baselineSales: sr?.base ?? 0, failedOrders: fr?.n ?? 0, paymentFailures: fr?.pay ?? 0, samples: tr?.n ?? 0, faultySamples: tr?.bad ?? 0 };
  };
  return {
    updated: cohort(true),
    control: cohort(false),
    installsFinished: installs[0]!.finished,
    installsFailed: installs[0]!.failed,
    hours: Math.max(0, now.getTime() - since.getTime()) / 3_600_000,
    baselineHours: baseline.baselineMs / 3_600_000,
  };
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);

/** The gate's metrics from what was measured; `passed` is false only for a judged metric past its threshold. */
export function judge(m: Measured, g: GateConfig): GateMetric[] {
  const { updated: u, control: c } = m;
  const out: GateMetric[] = [];
  const add = (x: Omit<GateMetric, "passed">) => out.push({ ...x, passed: !x.judged || (x.bound === "max" ? x.updated <= x.threshold : x.updated >= x.threshold) });

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

  const kioskHoursU = u.kiosks * m.hours;
  const kioskHoursC = c.kiosks * m.hours;
  const salesU = ratio(u.sales, kioskHoursU);
  const salesC = ratio(c.sales, kioskHoursC);
  // What the updated kiosks should sell now: with a baseline, their own earlier rate moved as
  // the control's moved since (a difference in differences); without one, the control's rate.
  const withBaseline = u.baselineSales >= g.minSamples && c.baselineSales >= g.minSamples;
  const expectedU = withBaseline
    ? ratio(u.baselineSales, u.kiosks * m.baselineHours) * ratio(salesC, ratio(c.baselineSales, c.kiosks * m.baselineHours))
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
      ? `; before the rollout ${fmt(ratio(m.updated.baselineSales, m.updated.kiosks * m.baselineHours))} updated vs ${fmt(ratio(m.control.baselineSales, m.control.kiosks * m.baselineHours))} control`
      : "";
  return `${base} vs control ${fmt(x.control)}, must be ${x.bound === "max" ? "<=" : ">="} ${fmt(x.threshold)} (${x.updatedSamples} updated / ${x.controlSamples} control events; ${m.updated.kiosks} updated, ${m.control.kiosks} control kiosks over ${m.hours.toFixed(2)} h${why})`;
}

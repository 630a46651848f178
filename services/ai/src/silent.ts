// Silent failures: a kiosk online and reporting healthy (health.ts's kiosk_telemetry) whose
// sales over the recent window fell far below its forecast. Every AI_SILENT_INTERVAL_MS one
// replica (an advisory lock) assesses each such kiosk over the whole UTC hours of the last
// AI_SILENT_WINDOW_HOURS during which it was online and healthy:
//
//   expected M = Σ over the kiosk's products (those not out of stock at catalog) and the
//                window's hours of the serving model's hourly forecast;
//   observed x = units sold in those hours (completed orders, by hour);
//   p = P(X ≤ x) for X negative binomial with mean M and variance M + α M² (α the model's
//       dispersion, applied to the kiosk's total: a slow day slows all its products at once,
//       which makes p larger, i.e. detection more careful).
//
// p < AI_SILENT_FAILURE_PROBABILITY publishes ai.silent_failure.<kiosk>.detected; it clears
// (ai.silent_failure.<kiosk>.cleared) once p is back above 100 × the threshold or the kiosk is
// no longer online and healthy (then its own offline/fault alerts speak). Kiosks whose window
// expects fewer than AI_SILENT_MIN_EXPECTED_UNITS (night hours) are not assessed: zero sales
// then say nothing.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { SilentFailureEventSchema } from "@adminkiosk/proto/adminkiosk/ai/v1/maintenance_events_pb";
import { SilentFailureSchema, type SilentFailure } from "@adminkiosk/proto/adminkiosk/ai/v1/maintenance_pb";
import { aiSubjects, enqueueEvents, inTransaction, type Logger, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { kioskTelemetry } from "./health.js";
import type { Lifecycle } from "./lifecycle.js";
import type { ServedModel } from "./onnx.js";

const hourMs = 3_600_000;
const dayMs = 86_400_000;

/** P(X ≤ x) for X negative binomial with mean `mean` and variance mean + alpha·mean² (Poisson when alpha is 0). */
export function negBinomialCdf(x: number, mean: number, alpha: number): number {
  if (x < 0) return 0;
  if (mean <= 0) return 1;
  const k = Math.floor(x);
  // log pmf(0) and the ratio pmf(j+1)/pmf(j), summed in log space (no underflow for large means).
  let logPmf: number;
  let ratio: (j: number) => number;
  if (alpha <= 1e-9) {
    logPmf = -mean;
    ratio = (j) => mean / (j + 1);
  } else {
    const r = 1 / alpha;
    const q = mean / (r + mean);
    logPmf = r * Math.log(r / (r + mean));
    ratio = (j) => ((j + r) / (j + 1)) * q;
  }
  let logSum = logPmf;
  for (let j = 0; j < k; j++) {
    logPmf += Math.log(ratio(j));
    const hi = Math.max(logSum, logPmf);
    logSum = hi + Math.log(Math.exp(logSum - hi) + Math.exp(logPmf - hi));
  }
  return Math.min(1, Math.exp(logSum));
}

export interface SilentWindow {
  kioskId: string;
  /** Whole UTC hours [start, end), ms. */
  start: number;
  end: number;
  observed: number;
  /** SKUs to leave out (out of stock at catalog). */
  outOfStock?: Set<string>;
}

export interface SilentAssessment extends SilentWindow {
  expected: number;
  probability: number;
}

/** The serving model's expected units over each window (kiosks it does not know: not assessed). */
export async function assess(served: ServedModel, windows: SilentWindow[]): Promise<SilentAssessment[]> {
  const pairsOf = new Map<string, number[]>();
  served.layout.pairs.forEach((p, i) => {
    const kiosk = p.slice(0, p.indexOf("|"));
    const list = pairsOf.get(kiosk) ?? [];
    list.push(i);
    pairsOf.set(kiosk, list);
  });
  const pairIdx: number[] = [];
  const days: number[] = [];
  const prices: number[] = [];
  const hours: number[] = [];
  const owner: number[] = [];
  const known: SilentWindow[] = [];
  for (const w of windows) {
    const pairs = (pairsOf.get(w.kioskId) ?? []).filter((i) => !w.outOfStock?.has(served.layout.pairs[i]!.slice(w.kioskId.length + 1)));
    if (pairs.length === 0) continue;
    known.push(w);
    for (let t = w.start; t < w.end; t += hourMs) {
      for (const i of pairs) {
        pairIdx.push(i);
        days.push(Math.floor(t / dayMs));
        prices.push(served.layout.lastPrice[i]!);
        hours.push(Math.floor((t % dayMs) / hourMs));
        owner.push(known.length - 1);
      }
    }
  }
  const expected = new Float64Array(known.length);
  for (let i = 0; i < pairIdx.length; i += 50_000) {
    const preds = await served.predict(pairIdx.slice(i, i + 50_000), days.slice(i, i + 50_000), prices.slice(i, i + 50_000), hours.slice(i, i + 50_000));
    preds.forEach((p, j) => (expected[owner[i + j]!]! += p.p50));
  }
  return known.map((w, i) => ({ ...w, expected: expected[i]!, probability: negBinomialCdf(w.observed, expected[i]!, served.layout.alpha) }));
}

/** Units sold per kiosk in each window's whole hours (orders by completion hour). */
export async function observedUnits(db: Pool | PoolClient, windows: { kioskId: string; start: number; end: number }[]): Promise<Map<string, number>> {
  if (windows.length === 0) return new Map();
  const { rows } = await db.query<{ kiosk_id: string; units: number }>(
    `SELECT w.k AS kiosk_id, coalesce(sum(u.q), 0)::float8 AS units
     FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS w(k, s, e)
     LEFT JOIN sales_daily d ON d.kiosk_id = w.k AND d.hourly IS NOT NULL
       AND d.day BETWEEN (w.s AT TIME ZONE 'UTC')::date AND (w.e AT TIME ZONE 'UTC')::date
     LEFT JOIN LATERAL unnest(d.hourly) WITH ORDINALITY AS u(q, h)
       ON (d.day + (u.h - 1) * interval '1 hour') AT TIME ZONE 'UTC' >= w.s AND (d.day + (u.h - 1) * interval '1 hour') AT TIME ZONE 'UTC' < w.e
     GROUP BY w.k`,
    [windows.map((w) => w.kioskId), windows.map((w) => new Date(w.start)), windows.map((w) => new Date(w.end))],
  );
  return new Map(rows.map((r) => [r.kiosk_id, r.units]));
}

export interface SilentSettings {
  windowHours: number;
  threshold: number;
  minExpected: number;
  staleMs: number;
}

/** The whole-hour window ending at the last full hour before `nowMs`, starting no earlier than the healthy stretch. */
export function windowOf(nowMs: number, healthySince: number, windowHours: number): { start: number; end: number } | undefined {
  const end = Math.floor(nowMs / hourMs) * hourMs;
  const start = Math.max(end - windowHours * hourMs, Math.ceil(healthySince / hourMs) * hourMs);
  return end - start >= 2 * hourMs ? { start, end } : undefined;
}

/** One pass: assess every online, healthy kiosk, record it, publish what crossed. Returns the assessments. */
export async function silentPass(pool: Pool, served: ServedModel | undefined, s: SilentSettings, nowMs: number): Promise<SilentAssessment[] | undefined> {
  return inTransaction(pool, async (tx) => {
    const { rows: got } = await tx.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock(hashtext('ai:silent')) AS ok");
    if (!got[0]!.ok) return undefined;
    const healthy = await kioskTelemetry.healthy(tx, s.staleMs, nowMs);
    const windows: SilentWindow[] = [];
    for (const [kioskId, since] of healthy) {
      const w = windowOf(nowMs, since.getTime(), s.windowHours);
      if (w) windows.push({ kioskId, ...w, observed: 0 });
    }
    const sold = await observedUnits(tx, windows);
    const { rows: stock } = await tx.query<{ kiosk_id: string; sku: string }>("SELECT kiosk_id, sku FROM stock_levels WHERE available <= 0 AND kiosk_id = ANY($1)", [windows.map((w) => w.kioskId)]);
    const empty = new Map<string, Set<string>>();
    for (const r of stock) empty.set(r.kiosk_id, (empty.get(r.kiosk_id) ?? new Set()).add(r.sku));
    for (const w of windows) {
      w.observed = sold.get(w.kioskId) ?? 0;
      w.outOfStock = empty.get(w.kioskId);
    }
    const assessed = served ? (await assess(served, windows)).filter((a) => a.expected >= s.minExpected) : [];
    const { rows: current } = await tx.query<{ kiosk_id: string; detected: boolean }>("SELECT kiosk_id, detected FROM silent_failures");
    const wasDetected = new Set(current.filter((r) => r.detected).map((r) => r.kiosk_id));
    const events: { subject: string; message: ReturnType<typeof create<typeof SilentFailureEventSchema>> }[] = [];
    const version = served?.version ?? 0;
    const verdicts = assessed.map((a) => {
      const was = wasDetected.has(a.kioskId);
      return { a, was, detected: was ? a.probability < s.threshold * 100 : a.probability < s.threshold };
    });
    // One statement for the whole pass (a fleet is many kiosks).
    for (let i = 0; i < verdicts.length; i += 5000) {
      const chunk = verdicts.slice(i, i + 5000);
      await tx.query(
        `INSERT INTO silent_failures (kiosk_id, detected, probability, observed, expected, window_start, window_end, detected_at, assessed_at, model_version)
         SELECT k, d, p, o, e, ws, we, CASE WHEN d THEN $8::timestamptz END, $8, $9
         FROM unnest($1::text[], $2::boolean[], $3::float8[], $4::bigint[], $5::float8[], $6::timestamptz[], $7::timestamptz[]) AS u(k, d, p, o, e, ws, we)
         ON CONFLICT (kiosk_id) DO UPDATE SET detected = EXCLUDED.detected, probability = EXCLUDED.probability, observed = EXCLUDED.observed,
           expected = EXCLUDED.expected, window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end,
           detected_at = CASE WHEN EXCLUDED.detected THEN COALESCE(silent_failures.detected_at, EXCLUDED.detected_at) END,
           assessed_at = EXCLUDED.assessed_at, model_version = EXCLUDED.model_version`,
        [
          chunk.map((v) => v.a.kioskId),
          chunk.map((v) => v.detected),
          chunk.map((v) => v.a.probability),
          chunk.map((v) => Math.round(v.a.observed)),
          chunk.map((v) => v.a.expected),
          chunk.map((v) => new Date(v.a.start)),
          chunk.map((v) => new Date(v.a.end)),
          new Date(nowMs),
          version,
        ],
      );
    }
    for (const { a, was, detected } of verdicts) {
      if (detected !== was) {
        events.push({
          subject: detected ? aiSubjects.silentFailureDetected(a.kioskId) : aiSubjects.silentFailureCleared(a.kioskId),
          message: create(SilentFailureEventSchema, {
            failure: toSilentFailure({ kioskId: a.kioskId, detected, probability: a.probability, observed: a.observed, expected: a.expected, start: a.start, end: a.end, detectedAt: detected ? nowMs : null, version }),
            threshold: s.threshold,
            clearReason: detected ? "" : "sales recovered",
            time: timestampNow(),
          }),
        });
      }
    }
    // Detected kiosks no longer online and healthy: cleared (their own alerts speak now).
    const stillHealthy = new Set(healthy.keys());
    const gone = [...wasDetected].filter((k) => !stillHealthy.has(k));
    if (gone.length > 0) {
      const { rows } = await tx.query<Row>(`UPDATE silent_failures SET detected = false, detected_at = NULL, assessed_at = $2 WHERE kiosk_id = ANY($1) RETURNING ${rowColumns}`, [gone, new Date(nowMs)]);
      for (const r of rows) {
        events.push({
          subject: aiSubjects.silentFailureCleared(r.kiosk_id),
          message: create(SilentFailureEventSchema, { failure: rowToSilentFailure(r), threshold: s.threshold, clearReason: "not online and healthy", time: timestampNow() }),
        });
      }
    }
    await enqueueEvents(tx, SilentFailureEventSchema, events);
    return assessed;
  });
}

interface Row {
  kiosk_id: string;
  detected: boolean;
  probability: number;
  observed: string;
  expected: number;
  window_start: Date;
  window_end: Date;
  detected_at: Date | null;
  assessed_at: Date;
  model_version: string;
}
const rowColumns = "kiosk_id, detected, probability, observed, expected, window_start, window_end, detected_at, assessed_at, model_version";

function toSilentFailure(f: { kioskId: string; detected: boolean; probability: number; observed: number; expected: number; start: number; end: number; detectedAt: number | null; version: number }): SilentFailure {
  return create(SilentFailureSchema, {
    kioskId: f.kioskId,
    detected: f.detected,
    probability: f.probability,
    observedUnits: BigInt(Math.round(f.observed)),
    expectedUnits: f.expected,
    windowStart: timestampFromMs(f.start),
    windowEnd: timestampFromMs(f.end),
    detectTime: f.detectedAt !== null ? timestampFromMs(f.detectedAt) : undefined,
    modelVersion: BigInt(f.version),
  });
}

export const rowToSilentFailure = (r: Row): SilentFailure =>
  toSilentFailure({
    kioskId: r.kiosk_id,
    detected: r.detected,
    probability: r.probability,
    observed: Number(r.observed),
    expected: r.expected,
    start: r.window_start.getTime(),
    end: r.window_end.getTime(),
    detectedAt: r.detected_at?.getTime() ?? null,
    version: Number(r.model_version),
  });

export const silentFailures = {
  async page(db: Pool, o: { kioskId?: string; includeAssessed: boolean; offset: number; limit: number }): Promise<{ rows: SilentFailure[]; total: number; assessedAt: Date | null }> {
    const where = "WHERE ($1::text IS NULL OR kiosk_id = $1) AND ($2 OR detected)";
    const { rows } = await db.query<Row>(`SELECT ${rowColumns} FROM silent_failures ${where} ORDER BY detected DESC, probability, kiosk_id LIMIT $3 OFFSET $4`, [
      o.kioskId ?? null,
      o.includeAssessed,
      o.limit,
      o.offset,
    ]);
    const { rows: count } = await db.query<{ n: number; at: Date | null }>(`SELECT count(*)::int AS n, (SELECT max(assessed_at) FROM silent_failures) AS at FROM silent_failures ${where}`, [
      o.kioskId ?? null,
      o.includeAssessed,
    ]);
    return { rows: rows.map(rowToSilentFailure), total: count[0]!.n, assessedAt: count[0]!.at };
  },
};

export interface SilentSweeper {
  pass(): Promise<void>;
  stop(): Promise<void>;
}

export function startSilentSweeper(o: { pool: Pool; log: Logger; lifecycle: Lifecycle; settings: SilentSettings; intervalMs: number; now?: () => number }): SilentSweeper {
  const now = o.now ?? Date.now;
  let running: Promise<void> = Promise.resolve();
  let failures = 0;
  const pass = () => {
    const run = running.then(async () => void (await silentPass(o.pool, o.lifecycle.served(), o.settings, now())));
    running = run.then(
      () => {
        if (failures > 0) o.log.info("the silent-failure pass works again");
        failures = 0;
      },
      (err: unknown) => {
        if (failures++ === 0) o.log.warn({ err }, "the silent-failure pass failed; retrying every interval");
      },
    );
    return run;
  };
  const timer = setInterval(() => void pass().catch(() => {}), o.intervalMs);
  timer.unref();
  return {
    pass,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

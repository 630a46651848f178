// The model lifecycle: train on ai's own sales history, evaluate on the held-out last 14
// days beside the seasonal-naive baseline and the serving version, promote only through
// the gate, serve the promoted version's ONNX graph (hot swap: every replica polls which
// version serves and loads it), roll back.
import { failedPrecondition, inTransaction, invalid, notFound, type Logger, type Pool } from "@adminkiosk/runtime";
import { dayOf } from "./generator.js";
import type { AiMetrics } from "./metrics.js";
import { evaluate, featureNames, modelKind, pairKey, train, type Evaluation, type FeatureGroup, type Granularity, type Metrics } from "./model.js";
import { loadModel, toOnnx, type ServedModel } from "./onnx.js";
import { models, sales, type ModelMetrics, type ModelRow } from "./store.js";

export const holdoutDays = 14;
/** The least history a training needs: four weeks to learn from plus the held-out window. */
export const minHistoryDays = 28 + holdoutDays;

export interface RetrainOptions {
  /** Keep a version that passes the gate as a candidate (Promote serves it) instead of serving it at once. */
  hold?: boolean;
}

export interface BacktestOutcome extends Evaluation {
  version: number;
  /** The window overlaps the version's training window (the model saw those days). */
  inSample: boolean;
}

export interface RetrainOutcome {
  model: ModelRow;
  promoted: boolean;
  servingVersion: number;
}

export interface Lifecycle {
  /** The model serving now, undefined before any was promoted. */
  served(): ServedModel | undefined;
  /** Loads the version the registry says serves, if it is not the one loaded. */
  refresh(): Promise<void>;
  retrain(by: string, groups?: FeatureGroup[], options?: RetrainOptions): Promise<RetrainOutcome>;
  rollback(by: string, version?: number): Promise<number>;
  /** Serves a candidate (a version trained with `hold` that passed the gate). */
  promote(by: string, version: number): Promise<number>;
  /**
   * Scores a version (default: the serving one) and the seasonal-naive baseline on the days
   * origin … origin + horizon − 1, per day or per UTC hour.
   */
  backtest(o: { version?: number; origin: number; horizon: number; granularity: Granularity }): Promise<BacktestOutcome>;
  stop(): Promise<void>;
}

export function createLifecycle(pool: Pool, log: Logger, metrics: AiMetrics, refreshMs: number): Lifecycle {
  let current: ServedModel | undefined;
  let loading: Promise<void> = Promise.resolve();
  let training: Promise<unknown> = Promise.resolve();
  let skippedKind = 0;

  const refresh = () =>
    (loading = loading.then(async () => {
      const row = await models.serving(pool);
      if (!row || row.version === current?.version) return;
      if (row.layout.kind !== modelKind) {
        if (skippedKind !== row.version) log.warn({ version: row.version, kind: row.layout.kind }, `the serving version is of a kind this build does not serve (${modelKind}); retrain`);
        skippedKind = row.version;
        return;
      }
      const next = await loadModel(row.version, row.layout, await models.onnx(pool, row.version));
      const old = current;
      current = next;
      metrics.serving(row.version);
      log.info({ version: row.version, previous: old?.version }, "serving model version");
      // In-flight predictions on the old session finish first (they hold their own reference).
      if (old) setTimeout(() => void old.release().catch(() => {}), 30_000).unref();
    }));

  const timer = setInterval(() => void refresh().catch((err: unknown) => log.warn({ err }, "model refresh failed")), refreshMs);
  timer.unref();

  async function retrainNow(by: string, groups?: FeatureGroup[], options: RetrainOptions = {}): Promise<RetrainOutcome> {
    const history = await sales.all(pool);
    if (history.length === 0) throw failedPrecondition("no sales history to train on");
    const first = history[0]!.day;
    const last = history[history.length - 1]!.day;
    if (last - first + 1 < minHistoryDays) throw failedPrecondition(`sales history covers ${last - first + 1} days; training needs at least ${minHistoryDays}`);
    const origin = last - holdoutDays + 1;
    const trainRows = history.filter((r) => r.day < origin);
    const hourCounts = await sales.hourCounts(pool, origin);
    const started = performance.now();
    const fitted = train(trainRows, { ...(groups ? { groups } : {}), hourCounts });
    const onnx = toOnnx(fitted);
    const candidate = await loadModel(0, fitted.layout, onnx);
    const trainingSeconds = (performance.now() - started) / 1000;
    try {
      const evaluation = await evaluate(fitted.layout, history, origin, candidate.predict);
      // Hourly, on the held-out days whose hours are known (and the week before, for the baseline).
      const hourly = await evaluate(fitted.layout, await sales.window(pool, origin - 7, last), origin, candidate.predict, holdoutDays, "hourly");
      let serving: ModelMetrics["serving"] = null;
      let candidateOnCommon: Metrics = evaluation.model;
      const live = current;
      if (live) {
        // Both on the kiosk × SKU pairs the serving version knows, on the same days.
        const known = new Set(live.layout.pairs);
        const common = history.filter((r) => known.has(pairKey(r.kioskId, r.sku)));
        serving = { ...(await evaluate(live.layout, common, origin, live.predict)).model, version: live.version };
        candidateOnCommon = (await evaluate(fitted.layout, common, origin, candidate.predict)).model;
      }
      const beatsBaseline = evaluation.model.wape < evaluation.baseline.wape;
      const beatsServing = !serving || candidateOnCommon.wape <= serving.wape;
      const passes = beatsBaseline && beatsServing;
      const promote = passes && !options.hold;
      const reasons = [
        `WAPE ${evaluation.model.wape.toFixed(4)} vs seasonal-naive ${evaluation.baseline.wape.toFixed(4)}`,
        ...(serving ? [`vs serving v${serving.version} ${candidateOnCommon.wape.toFixed(4)} vs ${serving.wape.toFixed(4)}`] : ["no version serving"]),
      ];
      const gateReason = `${promote ? "promoted" : passes ? "passed, held as a candidate" : "rejected"}: ${reasons.join("; ")}${!beatsBaseline ? " (does not beat the baseline)" : ""}${!beatsServing ? " (worse than the serving version)" : ""}`;
      const version = await inTransaction(pool, async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(hashtext('ai:registry'))");
        const v = await models.insert(tx, {
          kind: fitted.layout.kind,
          status: passes && !promote ? "candidate" : "rejected",
          trainFrom: dayOf(first),
          trainTo: dayOf(origin - 1),
          holdoutFrom: dayOf(origin),
          holdoutTo: dayOf(last),
          features: featureNames(fitted.layout),
          layout: fitted.layout,
          metrics: { model: evaluation.model, baseline: evaluation.baseline, serving, ...(hourly.model.points > 0 ? { hourly } : {}) },
          onnx,
          trainingRows: trainRows.filter((r) => !r.stockout).length,
          trainingSeconds,
          gateReason,
          createdBy: by,
        });
        if (promote) await models.promote(tx, v);
        return v;
      });
      metrics.retrain(promote ? "promoted" : passes ? "held" : "rejected");
      log.info({ version, promoted: promote, gate: gateReason, trainingSeconds }, "model trained");
      if (promote) await refresh();
      return { model: (await models.get(pool, version))!, promoted: promote, servingVersion: current?.version ?? 0 };
    } finally {
      await candidate.release();
    }
  }

  return {
    served: () => current,
    refresh,
    retrain(by, groups, options) {
      // One training at a time in this process (each is CPU-bound for seconds).
      const run = training.then(() => retrainNow(by, groups, options));
      training = run.catch(() => {});
      return run;
    },
    async rollback(by, version) {
      const target = await inTransaction(pool, async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(hashtext('ai:registry'))");
        const servingNow = await models.servingVersion(tx);
        let to = version;
        if (!to) {
          if (!servingNow) throw failedPrecondition("no model trained yet");
          to = await models.previous(tx, servingNow);
          if (!to) throw failedPrecondition(`no version was promoted before v${servingNow}`);
        } else {
          const row = await models.get(tx, to);
          if (!row) throw notFound(`version: model version ${to} not found`);
          if (to === servingNow) throw invalid("version", `v${to} is already serving`);
        }
        const kind = (await models.get(tx, to))!.layout.kind;
        if (kind !== modelKind) throw failedPrecondition(`version: v${to} is of kind ${kind}, which this build does not serve`);
        if (servingNow) {
          await tx.query("UPDATE models SET status = 'rejected', gate_reason = gate_reason || $2 WHERE version = $1", [servingNow, `; rolled back by ${by}`]);
        }
        await tx.query("UPDATE models SET status = 'serving', promoted_at = now() WHERE version = $1", [to]);
        return to;
      });
      log.info({ version: target, by }, "model rolled back");
      await refresh();
      return target;
    },
    async promote(by, version) {
      await inTransaction(pool, async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(hashtext('ai:registry'))");
        const row = await models.get(tx, version);
        if (!row) throw notFound(`version: model version ${version} not found`);
        if (row.status !== "candidate") throw failedPrecondition(`version: v${version} is not a candidate that passed the gate (it is ${row.status})`);
        if (row.layout.kind !== modelKind) throw failedPrecondition(`version: v${version} is of kind ${row.layout.kind}, which this build does not serve`);
        await models.promote(tx, version);
        await tx.query("UPDATE models SET gate_reason = gate_reason || $2 WHERE version = $1", [version, `; promoted by ${by}`]);
      });
      log.info({ version, by }, "model promoted");
      await refresh();
      return version;
    },
    async backtest({ version, origin, horizon, granularity }) {
      const live = current;
      let model: ServedModel | undefined;
      let row: ModelRow | undefined;
      if (version === undefined || version === live?.version) {
        if (!live) throw failedPrecondition("no model trained yet");
        model = live;
        row = await models.get(pool, live.version);
      } else {
        row = await models.get(pool, version);
        if (!row) throw notFound(`version: model version ${version} not found`);
        if (row.layout.kind !== modelKind) throw failedPrecondition(`version: v${version} is of kind ${row.layout.kind}, which this build does not serve`);
      }
      const range = await sales.range(pool);
      if (!range) throw failedPrecondition("no sales history to backtest on");
      if (origin - 7 < range.first) throw invalid("origin_date", `the baseline needs the 7 days before it: the history starts on ${dayOf(range.first)}, so ${dayOf(range.first + 7)} at the earliest`);
      if (origin + horizon - 1 > range.last) throw invalid("origin_date", `the window ends on ${dayOf(origin + horizon - 1)}, after the last day with sales history (${dayOf(range.last)})`);
      const owned = model ? undefined : await loadModel(row!.version, row!.layout, await models.onnx(pool, row!.version));
      try {
        const used = (model ?? owned)!;
        const rows = await sales.window(pool, origin - 7, origin + horizon - 1);
        const evaluation = await evaluate(used.layout, rows, origin, used.predict, horizon, granularity);
        if (evaluation.model.points === 0)
          throw failedPrecondition(`no kiosk × SKU day the version knows has ${granularity === "hourly" ? "sales by the hour" : "sales history"} in the window (stock-out days are left out)`);
        return { ...evaluation, version: used.version, inSample: !!row && dayOf(origin) <= row.train_to };
      } finally {
        await owned?.release();
      }
    },
    async stop() {
      clearInterval(timer);
      await training;
      await loading.catch(() => {});
      await current?.release().catch(() => {});
    },
  };
}

// The model lifecycle: train on ai's own sales history, evaluate on the held-out last 14
// days beside the seasonal-naive baseline and the serving version, promote only through
// the gate, serve the promoted version's ONNX graph (hot swap: every replica polls which
// version serves and loads it), roll back.
import { failedPrecondition, inTransaction, invalid, notFound, type Logger, type Pool } from "@adminkiosk/runtime";
import { dayOf } from "./generator.js";
import type { AiMetrics } from "./metrics.js";
import { evaluate, featureNames, pairKey, train, type FeatureGroup, type Metrics } from "./model.js";
import { loadModel, toOnnx, type ServedModel } from "./onnx.js";
import { models, sales, type ModelMetrics, type ModelRow } from "./store.js";

export const holdoutDays = 14;
/** The least history a training needs: four weeks to learn from plus the held-out window. */
export const minHistoryDays = 28 + holdoutDays;

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
  retrain(by: string, groups?: FeatureGroup[]): Promise<RetrainOutcome>;
  rollback(by: string, version?: number): Promise<number>;
  stop(): Promise<void>;
}

export function createLifecycle(pool: Pool, log: Logger, metrics: AiMetrics, refreshMs: number): Lifecycle {
  let current: ServedModel | undefined;
  let loading: Promise<void> = Promise.resolve();
  let training: Promise<unknown> = Promise.resolve();

  const refresh = () =>
    (loading = loading.then(async () => {
      const row = await models.serving(pool);
      if (!row || row.version === current?.version) return;
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

  async function retrainNow(by: string, groups?: FeatureGroup[]): Promise<RetrainOutcome> {
    const history = await sales.all(pool);
    if (history.length === 0) throw failedPrecondition("no sales history to train on");
    const first = history[0]!.day;
    const last = history[history.length - 1]!.day;
    if (last - first + 1 < minHistoryDays) throw failedPrecondition(`sales history covers ${last - first + 1} days; training needs at least ${minHistoryDays}`);
    const origin = last - holdoutDays + 1;
    const trainRows = history.filter((r) => r.day < origin);
    const started = performance.now();
    const fitted = train(trainRows, groups ? { groups } : {});
    const onnx = toOnnx(fitted);
    const candidate = await loadModel(0, fitted.layout, onnx);
    const trainingSeconds = (performance.now() - started) / 1000;
    try {
      const evaluation = await evaluate(fitted.layout, history, origin, candidate.predict);
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
      const promote = beatsBaseline && beatsServing;
      const reasons = [
        `WAPE ${evaluation.model.wape.toFixed(4)} vs seasonal-naive ${evaluation.baseline.wape.toFixed(4)}`,
        ...(serving ? [`vs serving v${serving.version} ${candidateOnCommon.wape.toFixed(4)} vs ${serving.wape.toFixed(4)}`] : ["no version serving"]),
      ];
      const gateReason = `${promote ? "promoted" : "rejected"}: ${reasons.join("; ")}${!beatsBaseline ? " (does not beat the baseline)" : ""}${!beatsServing ? " (worse than the serving version)" : ""}`;
      const version = await inTransaction(pool, async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(hashtext('ai:registry'))");
        const v = await models.insert(tx, {
          kind: fitted.layout.kind,
          status: "rejected",
          trainFrom: dayOf(first),
          trainTo: dayOf(origin - 1),
          holdoutFrom: dayOf(origin),
          holdoutTo: dayOf(last),
          features: featureNames(fitted.layout),
          layout: fitted.layout,
          metrics: { model: evaluation.model, baseline: evaluation.baseline, serving },
          onnx,
          trainingRows: trainRows.filter((r) => !r.stockout).length,
          trainingSeconds,
          gateReason,
          createdBy: by,
        });
        if (promote) await models.promote(tx, v);
        return v;
      });
      metrics.retrain(promote ? "promoted" : "rejected");
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
    retrain(by, groups) {
      // One training at a time in this process (each is CPU-bound for seconds).
      const run = training.then(() => retrainNow(by, groups));
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
    async stop() {
      clearInterval(timer);
      await training;
      await loading.catch(() => {});
      await current?.release().catch(() => {});
    },
  };
}

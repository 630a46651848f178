// ai's RPC handlers: validate, scope a device to its own kiosk, call the lifecycle, map to
// the contract. Who may call each RPC is declared in proto/ and enforced by the runtime.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  ForecastService,
  MetricsSchema,
  ModelSchema,
  ModelService,
  ModelStatus,
  type Metrics as MetricsMessage,
} from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { describePrincipal, failedPrecondition, invalid, kioskScope, notFound, principalOf, requireText, type Pool } from "@adminkiosk/runtime";
import { dayOf, dayMs } from "./generator.js";
import type { Lifecycle } from "./lifecycle.js";
import { featureGroups, pairKey, seasonalNaiveDay, type FeatureGroup, type Metrics } from "./model.js";
import { models, sales, type ModelRow } from "./store.js";

export const aiServices = [ForecastService, ModelService];

export const maxHorizonDays = 14;

const skuPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const requireSku = (field: string, value: string) =>
  requireText(field, value, { max: 64, pattern: skuPattern, patternHint: "may contain only letters, digits, '.', '_' and '-' (starting with a letter or digit)" });

const statuses: Record<ModelRow["status"], ModelStatus> = {
  candidate: ModelStatus.CANDIDATE,
  serving: ModelStatus.SERVING,
  retired: ModelStatus.RETIRED,
  rejected: ModelStatus.REJECTED,
};

const toMetrics = (m: Metrics): MetricsMessage => create(MetricsSchema, { wape: m.wape, mae: m.mae, bias: m.bias, coverage80: m.coverage80 });

export function toModel(r: ModelRow) {
  return create(ModelSchema, {
    version: BigInt(r.version),
    kind: r.kind,
    status: statuses[r.status],
    trainFrom: r.train_from,
    trainTo: r.train_to,
    holdoutFrom: r.holdout_from,
    holdoutTo: r.holdout_to,
    features: r.features,
    metrics: toMetrics(r.metrics.model),
    baseline: toMetrics(r.metrics.baseline),
    trainingRows: BigInt(r.training_rows),
    trainingSeconds: r.training_seconds,
    onnxBytes: BigInt(r.onnx_bytes),
    createdTime: timestampFromDate(r.created_at),
    createdBy: r.created_by,
    gateReason: r.gate_reason,
  });
}

export function aiRoutes(deps: { pool: Pool; lifecycle: Lifecycle; now?: () => Date }) {
  const { pool, lifecycle } = deps;
  const now = deps.now ?? (() => new Date());
  return (router: ConnectRouter) => {
    router.service(ForecastService, {
      async getForecast(req, ctx) {
        // A device asking for another kiosk is refused before anything else is looked at.
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId)!;
        if (req.horizonDays < 1 || req.horizonDays > maxHorizonDays) throw invalid("horizon_days", `must be 1..${maxHorizonDays}`);
        const sku = requireSku("sku", req.sku);
        const served = lifecycle.served();
        if (!served) throw failedPrecondition("no model trained yet");
        if (!served.layout.kiosks.includes(kioskId)) throw notFound(`kiosk_id: kiosk ${kioskId} has no sales history`);
        const pairIdx = served.layout.pairs.indexOf(pairKey(kioskId, sku));
        if (pairIdx < 0) throw notFound(`sku: product ${sku} has no sales history at kiosk ${kioskId}`);
        // From tomorrow (UTC), at the pair's last seen price.
        const origin = Math.floor(now().getTime() / dayMs) + 1;
        const days = Array.from({ length: req.horizonDays }, (_, i) => origin + i);
        const price = served.layout.lastPrice[pairIdx]!;
        const preds = await served.predict(
          days.map(() => pairIdx),
          days,
          days.map(() => price),
        );
        const recent = await sales.recent(pool, kioskId, sku, origin - 7);
        return {
          kioskId,
          sku,
          modelVersion: BigInt(served.version),
          points: days.map((d, i) => ({ date: dayOf(d), p10: preds[i]!.p10, p50: preds[i]!.p50, p90: preds[i]!.p90, seasonalNaive: recent.get(seasonalNaiveDay(origin, d)) ?? 0 })),
        };
      },
    });
    router.service(ModelService, {
      async listModels() {
        return { models: (await models.list(pool)).map(toModel) };
      },
      async getModel(req) {
        if (req.version <= 0n) throw invalid("version", "must be a model version (1 or more)");
        const row = await models.get(pool, Number(req.version));
        if (!row) throw notFound(`version: model version ${req.version} not found`);
        return { model: toModel(row) };
      },
      async retrain(req, ctx) {
        const groups = req.featureGroups.map((g, i) => {
          if (!(featureGroups as readonly string[]).includes(g)) throw invalid(`feature_groups[${i}]`, `must be one of ${featureGroups.join(", ")}`);
          return g as FeatureGroup;
        });
        const outcome = await lifecycle.retrain(describePrincipal(principalOf(ctx)), groups.length > 0 ? groups : undefined);
        return { model: toModel(outcome.model), promoted: outcome.promoted, servingVersion: BigInt(outcome.servingVersion) };
      },
      async rollback(req, ctx) {
        if (req.version < 0n) throw invalid("version", "must be 0 (the previous version) or a model version");
        const version = await lifecycle.rollback(describePrincipal(principalOf(ctx)), req.version === 0n ? undefined : Number(req.version));
        return { servingVersion: BigInt(version) };
      },
    });
  };
}

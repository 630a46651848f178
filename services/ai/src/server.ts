// ai's RPC handlers: validate, scope a device to its own kiosk, call the lifecycle, map to
// the contract. Who may call each RPC is declared in proto/ and enforced by the runtime.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  ForecastService,
  Granularity,
  MetricsSchema,
  ModelSchema,
  ModelService,
  ModelStatus,
  StockoutService,
  type Metrics as MetricsMessage,
} from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import {
  cursorPatterns,
  decodePageToken,
  describePrincipal,
  encodePageToken,
  failedPrecondition,
  invalid,
  kioskScope,
  notFound,
  pageSize,
  principalOf,
  requireKioskId,
  requireText,
  type Pool,
} from "@adminkiosk/runtime";
import { dayIndex, dayOf, dayMs } from "./generator.js";
import { forecastPoints } from "./forecast.js";
import type { Lifecycle } from "./lifecycle.js";
import { featureGroups, pairKey, type FeatureGroup, type Metrics } from "./model.js";
import { restockNeed, stockoutRisk } from "./risk.js";
import { evaluateStock, stockLevels, toRisk } from "./stock.js";
import { models, sales, type ModelRow } from "./store.js";

export const aiServices = [ForecastService, ModelService, StockoutService];

/** Stock-out settings; undefined when ai has no catalog connection. */
export interface StockSettings {
  visitHours: number;
  serviceLevel: number;
}

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

const toMetrics = (m: Metrics): MetricsMessage => create(MetricsSchema, { wape: m.wape, mae: m.mae, bias: m.bias, coverage80: m.coverage80, points: BigInt(m.points ?? 0) });

const granularityOf = (field: string, g: Granularity) => {
  if (g === Granularity.UNSPECIFIED || g === Granularity.DAILY) return "daily" as const;
  if (g === Granularity.HOURLY) return "hourly" as const;
  throw invalid(field, "must be DAILY or HOURLY");
};
const datePattern = /^\d{4}-\d{2}-\d{2}$/;

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
    hourlyMetrics: r.metrics.hourly ? toMetrics(r.metrics.hourly.model) : undefined,
    hourlyBaseline: r.metrics.hourly ? toMetrics(r.metrics.hourly.baseline) : undefined,
  });
}

export function aiRoutes(deps: { pool: Pool; lifecycle: Lifecycle; stock?: StockSettings; now?: () => Date }) {
  const { pool, lifecycle } = deps;
  const now = deps.now ?? (() => new Date());
  const visitHoursOf = (field: string, v: number) => {
    if (v === 0) return deps.stock!.visitHours;
    if (v < 1 || v > 336) throw invalid(field, "must be 1..336 hours (0: the default)");
    return v;
  };
  /** The stock levels (one kiosk's, or all) evaluated against the serving model. */
  async function evaluated(kioskField: string, kioskId: string) {
    const kiosk = kioskId === "" ? undefined : requireKioskId(kioskField, kioskId);
    if (!deps.stock) throw failedPrecondition("ai has no catalog connection (CATALOG_URL, AUTH_URL, SERVICE_SECRET): stock levels are unknown");
    const served = lifecycle.served();
    if (!served) throw failedPrecondition("no model trained yet");
    return { served, rows: await evaluateStock(served, await stockLevels.list(pool, kiosk), now().getTime()) };
  }
  return (router: ConnectRouter) => {
    router.service(StockoutService, {
      async getStockoutRisks(req) {
        const size = pageSize("page_size", req.pageSize);
        const cursor = decodePageToken("page_token", req.pageToken, { offset: cursorPatterns.integer });
        const visitHours = deps.stock ? visitHoursOf("visit_interval_hours", req.visitIntervalHours) : 0;
        const { served, rows } = await evaluated("kiosk_id", req.kioskId);
        const risks = rows
          .map((e) => toRisk(e, stockoutRisk(e.path, e.row.available, visitHours), served.version))
          .sort(
            (a, b) =>
              b.stockoutProbability - a.stockoutProbability ||
              Number(b.stockoutExpected) - Number(a.stockoutExpected) ||
              a.stockoutHours - b.stockoutHours ||
              a.kioskId.localeCompare(b.kioskId) ||
              a.sku.localeCompare(b.sku),
          );
        const offset = cursor ? Number(cursor.offset) : 0;
        const page = risks.slice(offset, offset + size);
        return {
          risks: page,
          nextPageToken: offset + size < risks.length ? encodePageToken({ offset: String(offset + size) }) : "",
          totalSize: risks.length,
          visitIntervalHours: visitHours,
        };
      },
      async getRestockPlan(req) {
        if (req.serviceLevel !== 0 && !(req.serviceLevel >= 0.5 && req.serviceLevel <= 0.999)) throw invalid("service_level", "must be 0.5..0.999 (0: the default)");
        const visitHours = deps.stock ? visitHoursOf("visit_interval_hours", req.visitIntervalHours) : 0;
        const { served, rows } = await evaluated("kiosk_id", req.kioskId);
        const level = req.serviceLevel || deps.stock!.serviceLevel;
        const kiosks = new Map<string, { kioskId: string; lines: ReturnType<typeof line>[]; totalUnits: bigint }>();
        function line(e: (typeof rows)[number]) {
          const need = restockNeed(e.path, e.row.available, visitHours, level);
          return {
            kioskId: e.row.kioskId,
            sku: e.row.sku,
            available: BigInt(e.row.available),
            demandMean: need.mean,
            demandAtServiceLevel: need.atServiceLevel,
            quantity: BigInt(need.quantity),
            stockoutProbability: stockoutRisk(e.path, e.row.available, visitHours).probability,
          };
        }
        for (const e of rows) {
          const l = line(e);
          if (l.quantity <= 0n) continue;
          const k = kiosks.get(l.kioskId) ?? { kioskId: l.kioskId, lines: [], totalUnits: 0n };
          k.lines.push(l);
          k.totalUnits += l.quantity;
          kiosks.set(l.kioskId, k);
        }
        const list = [...kiosks.values()].sort((a, b) => (b.totalUnits > a.totalUnits ? 1 : b.totalUnits < a.totalUnits ? -1 : a.kioskId.localeCompare(b.kioskId)));
        for (const k of list) k.lines.sort((a, b) => (b.quantity > a.quantity ? 1 : b.quantity < a.quantity ? -1 : a.sku.localeCompare(b.sku)));
        return { kiosks: list, serviceLevel: level, visitIntervalHours: visitHours, modelVersion: BigInt(served.version) };
      },
    });
    router.service(ForecastService, {
      async getForecast(req, ctx) {
        // A device asking for another kiosk is refused before anything else is looked at.
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId)!;
        if (req.horizonDays < 1 || req.horizonDays > maxHorizonDays) throw invalid("horizon_days", `must be 1..${maxHorizonDays}`);
        if (req.historyDays < 0 || req.historyDays > 28) throw invalid("history_days", "must be 0..28");
        const granularity = granularityOf("granularity", req.granularity);
        const sku = requireSku("sku", req.sku);
        const served = lifecycle.served();
        if (!served) throw failedPrecondition("no model trained yet");
        if (!served.index.kiosk.has(kioskId)) throw notFound(`kiosk_id: kiosk ${kioskId} has no sales history`);
        const pairIdx = served.index.pair.get(pairKey(kioskId, sku));
        if (pairIdx === undefined) throw notFound(`sku: product ${sku} has no sales history at kiosk ${kioskId}`);
        // From tomorrow (UTC), at the pair's last seen price.
        const origin = Math.floor(now().getTime() / dayMs) + 1;
        const recent = await sales.recentDays(pool, kioskId, sku, origin - req.historyDays - 7);
        const points = await forecastPoints(served, pairIdx, origin, req.historyDays, req.horizonDays, granularity, recent);
        return {
          kioskId,
          sku,
          modelVersion: BigInt(served.version),
          granularity: granularity === "hourly" ? Granularity.HOURLY : Granularity.DAILY,
          points,
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
        const outcome = await lifecycle.retrain(describePrincipal(principalOf(ctx)), groups.length > 0 ? groups : undefined, { hold: req.hold });
        return { model: toModel(outcome.model), promoted: outcome.promoted, servingVersion: BigInt(outcome.servingVersion) };
      },
      async promote(req, ctx) {
        if (req.version <= 0n) throw invalid("version", "must be a model version (1 or more)");
        return { servingVersion: BigInt(await lifecycle.promote(describePrincipal(principalOf(ctx)), Number(req.version))) };
      },
      async backtest(req) {
        if (req.version < 0n) throw invalid("version", "must be 0 (the serving version) or a model version");
        if (!datePattern.test(req.originDate) || !Number.isFinite(dayIndex(req.originDate)) || dayOf(dayIndex(req.originDate)) !== req.originDate) throw invalid("origin_date", "must be a UTC day, YYYY-MM-DD");
        if (req.horizonDays < 1 || req.horizonDays > maxHorizonDays) throw invalid("horizon_days", `must be 1..${maxHorizonDays}`);
        const granularity = granularityOf("granularity", req.granularity);
        const out = await lifecycle.backtest({
          version: req.version === 0n ? undefined : Number(req.version),
          origin: dayIndex(req.originDate),
          horizon: req.horizonDays,
          granularity,
        });
        return {
          version: BigInt(out.version),
          originDate: req.originDate,
          horizonDays: req.horizonDays,
          granularity: granularity === "hourly" ? Granularity.HOURLY : Granularity.DAILY,
          model: toMetrics(out.model),
          baseline: toMetrics(out.baseline),
          inSample: out.inSample,
        };
      },
      async rollback(req, ctx) {
        if (req.version < 0n) throw invalid("version", "must be 0 (the previous version) or a model version");
        const version = await lifecycle.rollback(describePrincipal(principalOf(ctx)), req.version === 0n ? undefined : Number(req.version));
        return { servingVersion: BigInt(version) };
      },
    });
  };
}

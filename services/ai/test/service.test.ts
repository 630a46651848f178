// ai as a real process: health and a clear refusal before any model exists, bad input named,
// Retrain through the evaluation gate (a worse version is not promoted), hot swap on
// Retrain and Rollback without a restart, devices scoped to their own kiosk, the orders
// consumer filling the sales history, and per-version metrics.
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ForecastService, Granularity, ModelService, ModelStatus } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { HealthCheckResponse_ServingStatus, Health } from "@adminkiosk/proto/grpc/health/v1/health_pb";
import { OrderCompletedEventSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/events_pb";
import { eventually } from "@adminkiosk/devstack";
import { ordersSubjects } from "@adminkiosk/runtime";
import { inject } from "vitest";
import { clientFor, failure } from "../../../test/support/auth.js";
import { dayMs, dayOf, generateSales } from "../src/generator.js";
import { sales } from "../src/store.js";
import { startAi, type AiFixture } from "./fixture.js";

let f: AiFixture;
beforeAll(async () => {
  f = await startAi();
});
afterAll(async () => {
  await f?.stop();
});

const yesterday = () => dayOf(Math.floor(Date.now() / dayMs) - 1);

describe("ai", () => {
  it("serves health before any model exists, and GetForecast says no model is trained yet", async () => {
    const health = await clientFor(Health, f.ai.url).check({ service: "" });
    expect(health.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const err = await failure(f.as(ForecastService, f.tokens.viewer).getForecast({ kioskId: "sim-0001", sku: "SNK-WATER-05", horizonDays: 7 }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("no model trained yet");
    expect((await f.as(ModelService, f.tokens.viewer).listModels({})).models).toEqual([]);
  });

  it("names the field of bad input", async () => {
    const forecasts = f.as(ForecastService, f.tokens.viewer);
    for (const [req, field] of [
      [{ kioskId: "sim-0001", sku: "SNK-WATER-05", horizonDays: 0 }, "horizon_days"],
      [{ kioskId: "sim-0001", sku: "SNK-WATER-05", horizonDays: 15 }, "horizon_days"],
      [{ kioskId: "sim 1", sku: "SNK-WATER-05", horizonDays: 3 }, "kiosk_id"],
      [{ kioskId: "sim-0001", sku: "", horizonDays: 3 }, "sku"],
      [{ kioskId: "sim-0001", sku: "SNK-WATER-05", horizonDays: 3, granularity: 7 as Granularity }, "granularity"],
    ] as const) {
      const err = await failure(forecasts.getForecast(req));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toMatch(new RegExp(`^${field}:`));
    }
    const bad = await failure(f.as(ModelService, f.tokens.admin).retrain({ featureGroups: ["weather"] }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toMatch(/^feature_groups\[0\]:/);
  });

  it("trains, gates, promotes, hot-swaps and rolls back on the running process", async () => {
    const { sales: generated } = generateSales({ seed: 11, kiosks: 6, days: 70, endDay: yesterday() });
    await sales.insertGenerated(f.pool, generated);
    const models = f.as(ModelService, f.tokens.admin);
    const forecasts = f.as(ForecastService, f.tokens.viewer);
    const pid = f.ai.child.pid;

    const first = await models.retrain({});
    expect(first.promoted).toBe(true);
    expect(first.servingVersion).toBe(first.model!.version);
    expect(first.model!.status).toBe(ModelStatus.SERVING);
    expect(first.model!.metrics!.wape).toBeLessThan(first.model!.baseline!.wape * 0.8);
    expect(first.model!.features.length).toBeGreaterThan(0);
    expect(first.model!.onnxBytes).toBeGreaterThan(0n);

    const forecast = await forecasts.getForecast({ kioskId: "sim-0002", sku: "SNK-WATER-05", horizonDays: 14 });
    expect(forecast.modelVersion).toBe(first.model!.version);
    expect(forecast.points).toHaveLength(14);
    expect(forecast.points[0]!.date).toBe(dayOf(Math.floor(Date.now() / dayMs) + 1));
    for (const p of forecast.points) {
      expect(p.p10).toBeLessThanOrEqual(p.p50);
      expect(p.p50).toBeLessThanOrEqual(p.p90);
      expect(p.p50).toBeGreaterThan(0);
    }
    expect(first.model!.hourlyMetrics!.points).toBeGreaterThan(0n);
    expect(first.model!.hourlyMetrics!.wape).toBeLessThan(first.model!.hourlyBaseline!.wape);

    // Hourly: 24 points a day, UTC hours 0..23, adding up to the day's forecast; past hours carry what was sold.
    const hourly = await forecasts.getForecast({ kioskId: "sim-0002", sku: "SNK-WATER-05", horizonDays: 2, historyDays: 2, granularity: Granularity.HOURLY });
    expect(hourly.granularity).toBe(Granularity.HOURLY);
    expect(hourly.points).toHaveLength(4 * 24);
    expect(hourly.points.slice(0, 24).map((p) => p.hour)).toEqual(Array.from({ length: 24 }, (_, h) => h));
    const tomorrow = hourly.points.filter((p) => p.date === forecast.points[0]!.date);
    expect(tomorrow).toHaveLength(24);
    expect(tomorrow.reduce((a, p) => a + p.p50, 0)).toBeCloseTo(forecast.points[0]!.p50, 1);
    for (const p of hourly.points) expect([p.p10 <= p.p50, p.p50 <= p.p90]).toEqual([true, true]);
    const dayBefore = dayOf(Math.floor(Date.now() / dayMs) - 1);
    const sold = generated.find((g) => g.kioskId === "sim-0002" && g.sku === "SNK-WATER-05" && g.day === dayBefore)!;
    expect(hourly.points.filter((p) => p.date === dayBefore).map((p) => [p.hasActual, p.actual])).toEqual(sold.hourly.map((q) => [true, q]));

    // Unknown kiosk or product: NotFound naming the field.
    const noKiosk = await failure(forecasts.getForecast({ kioskId: "sim-0999", sku: "SNK-WATER-05", horizonDays: 3 }));
    expect([noKiosk.code, noKiosk.rawMessage.split(":")[0]]).toEqual([Code.NotFound, "kiosk_id"]);
    const noSku = await failure(forecasts.getForecast({ kioskId: "sim-0002", sku: "NOPE-1", horizonDays: 3 }));
    expect([noSku.code, noSku.rawMessage.split(":")[0]]).toEqual([Code.NotFound, "sku"]);

    // A version without the weekday features does worse: trained, kept, not promoted.
    const worse = await models.retrain({ featureGroups: ["log_price_ratio"] });
    expect(worse.promoted).toBe(false);
    expect(worse.model!.status).toBe(ModelStatus.REJECTED);
    expect(worse.servingVersion).toBe(first.model!.version);
    expect(worse.model!.gateReason).toContain("worse than the serving version");
    expect((await forecasts.getForecast({ kioskId: "sim-0002", sku: "SNK-WATER-05", horizonDays: 1 })).modelVersion).toBe(first.model!.version);

    // As good as the serving one: promoted, and served at once.
    const second = await models.retrain({});
    expect(second.promoted).toBe(true);
    expect((await forecasts.getForecast({ kioskId: "sim-0002", sku: "SNK-WATER-05", horizonDays: 1 })).modelVersion).toBe(second.model!.version);

    // Rollback: the previous version serves again, no restart.
    const rolled = await models.rollback({});
    expect(rolled.servingVersion).toBe(first.model!.version);
    expect((await forecasts.getForecast({ kioskId: "sim-0002", sku: "SNK-WATER-05", horizonDays: 1 })).modelVersion).toBe(first.model!.version);
    const listed = (await models.listModels({})).models;
    expect(listed.map((m) => [m.version, m.status])).toEqual([
      [second.model!.version, ModelStatus.REJECTED],
      [worse.model!.version, ModelStatus.REJECTED],
      [first.model!.version, ModelStatus.SERVING],
    ]);
    const got = (await models.getModel({ version: first.model!.version })).model!;
    expect(got.baseline!.wape).toBeGreaterThan(got.metrics!.wape);
    expect(got.metrics!.coverage80).toBeGreaterThan(0.7);
    expect(f.ai.child.pid).toBe(pid);

    // Per-version metrics.
    const text = await (await fetch(`${f.ai.url}/metrics`)).text();
    expect(text).toMatch(new RegExp(`ai_model_wape\\{[^}]*version="${first.model!.version}"[^}]*predictor="model"`));
    expect(text).toMatch(/ai_model_coverage_80\{/);
    expect(text).toMatch(/ai_model_serving_version\{[^}]*\} 1\b/);
  });

  it("backtests a version and the seasonal-naive baseline on a chosen window, daily and hourly; names bad input", async () => {
    const models = f.as(ModelService, f.tokens.admin);
    const serving = (await models.listModels({})).models.find((m) => m.status === ModelStatus.SERVING)!;
    const today = Math.floor(Date.now() / dayMs);
    // The held-out window (the version never saw it): what the registry says, per day and per hour.
    const held = await models.backtest({ originDate: serving.holdoutFrom, horizonDays: 14 });
    expect(held.version).toBe(serving.version);
    expect(held.inSample).toBe(false);
    expect(held.granularity).toBe(Granularity.DAILY);
    expect(held.model!.wape).toBeCloseTo(serving.metrics!.wape, 6);
    expect(held.baseline!.wape).toBeCloseTo(serving.baseline!.wape, 6);
    expect(held.model!.wape).toBeLessThanOrEqual(held.baseline!.wape * 0.8);
    const hourly = await models.backtest({ originDate: serving.holdoutFrom, horizonDays: 14, granularity: Granularity.HOURLY });
    expect(hourly.model!.points).toBe(held.model!.points * 24n);
    expect(hourly.model!.wape).toBeLessThan(hourly.baseline!.wape);
    expect(hourly.model!.coverage80).toBeGreaterThan(0.7);
    // A shorter window inside the training days: in sample.
    const inside = await models.backtest({ originDate: dayOf(today - 40), horizonDays: 3, version: serving.version });
    expect(inside.inSample).toBe(true);
    expect(inside.model!.points).toBeGreaterThan(0n);

    for (const [req, code, field] of [
      [{ originDate: "", horizonDays: 3 }, Code.InvalidArgument, "origin_date"],
      [{ originDate: "2026-02-30", horizonDays: 3 }, Code.InvalidArgument, "origin_date"],
      [{ originDate: dayOf(today - 20), horizonDays: 0 }, Code.InvalidArgument, "horizon_days"],
      [{ originDate: dayOf(today - 20), horizonDays: 15 }, Code.InvalidArgument, "horizon_days"],
      // The baseline needs the week before; the window must end by the last day with history.
      [{ originDate: dayOf(today - 68), horizonDays: 7 }, Code.InvalidArgument, "origin_date"],
      [{ originDate: dayOf(today - 5), horizonDays: 7 }, Code.InvalidArgument, "origin_date"],
      [{ originDate: dayOf(today - 20), horizonDays: 7, version: 999n }, Code.NotFound, "version"],
      [{ originDate: dayOf(today - 20), horizonDays: 7, granularity: 9 as Granularity }, Code.InvalidArgument, "granularity"],
    ] as const) {
      const err = await failure(models.backtest(req));
      expect([err.code, err.rawMessage.split(":")[0]]).toEqual([code, field]);
    }
    expect((await failure(f.as(ModelService, f.tokens.viewer).backtest({ originDate: serving.holdoutFrom, horizonDays: 3 }))).code).toBe(Code.PermissionDenied);
  });

  it("holds a version that passed the gate as a candidate until an admin promotes it (hot swap, no restart)", async () => {
    const models = f.as(ModelService, f.tokens.admin);
    const forecasts = f.as(ForecastService, f.tokens.viewer);
    const before = (await forecasts.getForecast({ kioskId: "sim-0002", sku: "SNK-WATER-05", horizonDays: 1 })).modelVersion;
    const held = await models.retrain({ hold: true });
    expect(held.promoted).toBe(false);
    expect(held.model!.status).toBe(ModelStatus.CANDIDATE);
    expect(held.servingVersion).toBe(before);
    expect(held.model!.gateReason).toContain("held as a candidate");
    expect((await forecasts.getForecast({ kioskId: "sim-0002", sku: "SNK-WATER-05", horizonDays: 1 })).modelVersion).toBe(before);
    // Only candidates: the serving one, a rejected one and an unknown one are refused, naming the version.
    const rejected = (await models.listModels({})).models.find((m) => m.status === ModelStatus.REJECTED)!;
    for (const [version, code] of [
      [0n, Code.InvalidArgument],
      [999n, Code.NotFound],
      [before, Code.FailedPrecondition],
      [rejected.version, Code.FailedPrecondition],
    ] as const) {
      const err = await failure(models.promote({ version }));
      expect([err.code, err.rawMessage.split(":")[0]]).toEqual([code, "version"]);
    }
    expect((await failure(f.as(ModelService, f.tokens.viewer).promote({ version: held.model!.version }))).code).toBe(Code.PermissionDenied);
    const pid = f.ai.child.pid;
    expect((await models.promote({ version: held.model!.version })).servingVersion).toBe(held.model!.version);
    expect((await forecasts.getForecast({ kioskId: "sim-0002", sku: "SNK-WATER-05", horizonDays: 1 })).modelVersion).toBe(held.model!.version);
    expect((await models.getModel({ version: before })).model!.status).toBe(ModelStatus.RETIRED);
    expect(f.ai.child.pid).toBe(pid);
  });

  it("only admins retrain and roll back; a kiosk reads only its own kiosk's forecast", async () => {
    const viewerModels = f.as(ModelService, f.tokens.viewer);
    expect((await failure(viewerModels.retrain({}))).code).toBe(Code.PermissionDenied);
    expect((await failure(viewerModels.rollback({}))).code).toBe(Code.PermissionDenied);
    const device = f.as(ForecastService, await f.device("sim-0003"));
    const own = await device.getForecast({ kioskId: "", sku: "SNK-CHOC-DARK", horizonDays: 2 });
    expect(own.kioskId).toBe("sim-0003");
    expect((await failure(device.getForecast({ kioskId: "sim-0001", sku: "SNK-CHOC-DARK", horizonDays: 2 }))).code).toBe(Code.PermissionDenied);
    expect((await failure(f.as(ModelService, await f.device("sim-0003")).listModels({}))).code).toBe(Code.PermissionDenied);
  });

  it("adds completed orders from stream ORDERS to its sales history", async () => {
    const nc = await connect({ servers: inject("infra").natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.info(ordersSubjects.stream.name).catch(() => jsm.streams.add({ name: ordersSubjects.stream.name, subjects: ordersSubjects.stream.subjects }));
      const orderId = crypto.randomUUID();
      const when = new Date();
      const event = create(OrderCompletedEventSchema, {
        time: timestampFromDate(when),
        order: {
          orderId,
          kioskId: "ord-kiosk-1",
          completeTime: timestampFromDate(when),
          lines: [
            { lineNumber: 1, sku: "SNK-WATER-05", quantity: 3n, unitPriceMinor: 150n, totalMinor: 450n },
            { lineNumber: 2, sku: "SNK-WATER-05", quantity: 2n, unitPriceMinor: 150n, totalMinor: 300n },
          ],
        },
      });
      const data = toBinary(OrderCompletedEventSchema, event);
      // Published twice with one message id: applied once.
      for (let i = 0; i < 2; i++) await jetstream(nc).publish(ordersSubjects.order(orderId, "completed"), data, { msgID: orderId });
      await expect
        .poll(async () => (await f.pool.query("SELECT quantity::int AS q FROM sales_daily WHERE kiosk_id = 'ord-kiosk-1' AND sku = 'SNK-WATER-05'")).rows[0]?.q, eventually)
        .toBe(5);
      // In its completion hour (UTC).
      const { rows } = await f.pool.query<{ hourly: number[] }>("SELECT hourly FROM sales_daily WHERE kiosk_id = 'ord-kiosk-1' AND sku = 'SNK-WATER-05'");
      expect(rows[0]!.hourly).toEqual(Array.from({ length: 24 }, (_, h) => (h === when.getUTCHours() ? 5 : 0)));
    } finally {
      await nc.close();
    }
  });
});

// Stock-out risks and restock plans on real processes: ai reads a real catalog's stock as
// itself (its service token), the kiosk with low stock and steady demand comes first with a
// stock-out time its forecast explains, the restock quantity covers the forecast to the next
// visit at the service level (checked against GetForecast's own quantiles), the crossing is
// published on stream AI (and its clearing once restocked), and bad input is named.
import { fromBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ForecastService, ModelService, StockoutService } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { StockoutPredictedEventSchema } from "@adminkiosk/proto/adminkiosk/ai/v1/events_pb";
import { InventoryService, ProductService, ReservationService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { eventually } from "@adminkiosk/devstack";
import { aiSubjects } from "@adminkiosk/runtime";
import { inject } from "vitest";
import { clientFor, failure } from "../../../test/support/auth.js";
import { dayMs, dayOf, generateSales } from "../src/generator.js";
import { z90 } from "../src/model.js";
import { normalQuantile } from "../src/risk.js";
import { sales } from "../src/store.js";
import { startAi, type AiFixture } from "./fixture.js";

let f: AiFixture;
beforeAll(async () => {
  f = await startAi({}, { withCatalog: true });
});
afterAll(async () => {
  await f?.stop();
});

const low = { kioskId: "sim-0002", sku: "SNK-WATER-05", units: 12n };

describe("ai stock-out risks", () => {
  it("says no model is trained yet, and names bad input", async () => {
    const risks = f.as(StockoutService, f.tokens.viewer);
    expect((await failure(risks.getStockoutRisks({}))).code).toBe(Code.FailedPrecondition);
    for (const [call, field] of [
      [() => risks.getStockoutRisks({ visitIntervalHours: 400 }), "visit_interval_hours"],
      [() => risks.getStockoutRisks({ kioskId: "bad kiosk" }), "kiosk_id"],
      [() => risks.getStockoutRisks({ pageSize: 501 }), "page_size"],
      [() => risks.getStockoutRisks({ pageToken: "not-a-token" }), "page_token"],
      [() => risks.getRestockPlan({ serviceLevel: 1.5 }), "service_level"],
      [() => risks.getRestockPlan({ visitIntervalHours: -1 }), "visit_interval_hours"],
    ] as const) {
      const err = await failure(call());
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toMatch(new RegExp(`^${field}:`));
    }
  });

  it("ranks the low kiosk first, plans its restock at the service level and publishes the crossing", async () => {
    const yesterday = dayOf(Math.floor(Date.now() / dayMs) - 1);
    const { sales: generated } = generateSales({ seed: 5, kiosks: 4, days: 70, endDay: yesterday });
    await sales.insertGenerated(f.pool, generated);
    // catalog: the products; plenty everywhere except the low pair.
    const skus = [...new Set(generated.map((s) => s.sku))];
    const kiosks = [...new Set(generated.map((s) => s.kioskId))];
    const admin = await f.auth.adminToken();
    for (const sku of skus) {
      await clientFor(ProductService, f.catalog!.url, admin).createProduct({
        product: { sku, name: `Product ${sku}`, category: "snacks", priceMinor: 200n, currency: "EUR", taxRateBasisPoints: 2100, active: true },
      });
      for (const kioskId of kiosks) {
        const quantity = kioskId === low.kioskId && sku === low.sku ? low.units : 100_000n;
        await clientFor(InventoryService, f.catalog!.url, admin).restock({ kioskId, sku, quantity, reason: "test stock" });
      }
    }
    const trained = await f.as(ModelService, f.tokens.admin).retrain({});
    expect(trained.promoted).toBe(true);

    const risks = f.as(StockoutService, f.tokens.viewer);
    // ai reads catalog's stock in the background: poll until every pair is there.
    const first = await expect
      .poll(async () => (await risks.getStockoutRisks({ visitIntervalHours: 72, pageSize: 500 })).totalSize, eventually)
      .toBe(skus.length * kiosks.length)
      .then(() => risks.getStockoutRisks({ visitIntervalHours: 72, pageSize: 3 }));
    const top = first.risks[0]!;
    expect([top.kioskId, top.sku, top.available]).toEqual([low.kioskId, low.sku, low.units]);
    expect(top.stockoutProbability).toBeGreaterThan(0.9);
    expect(top.stockoutExpected).toBe(true);
    expect(first.risks[1]!.stockoutProbability).toBeLessThan(0.01);
    expect(first.nextPageToken).not.toBe("");
    const second = await risks.getStockoutRisks({ visitIntervalHours: 72, pageSize: 3, pageToken: first.nextPageToken });
    expect(second.risks[0]!.kioskId + second.risks[0]!.sku).not.toBe(top.kioskId + top.sku);

    // The stock-out time is what the forecast's daily means say: available / (μ per hour),
    // μ between the lowest and highest daily median of the coming week.
    const forecast = (await f.as(ForecastService, f.tokens.viewer).getForecast({ kioskId: low.kioskId, sku: low.sku, horizonDays: 8 })).points;
    const p50s = forecast.map((p) => p.p50);
    const units = Number(low.units);
    expect(top.stockoutHours).toBeGreaterThan(((units * 24) / Math.max(...p50s)) * 0.9);
    expect(top.stockoutHours).toBeLessThan(((units * 24) / Math.min(...p50s)) * 1.1);
    expect(top.stockoutEarlyHours).toBeLessThanOrEqual(top.stockoutHours);
    expect(top.stockoutLateHours).toBeGreaterThanOrEqual(top.stockoutHours);

    // The restock plan for a 7-day visit at 90 %: the model's own quantiles bound it. The
    // window (now … now + 168 h) holds days 1..6 whole and parts of today and day 7 that
    // add up to at most one day.
    const level = 0.9;
    const plan = await risks.getRestockPlan({ kioskId: low.kioskId, serviceLevel: level, visitIntervalHours: 168 });
    expect(plan.serviceLevel).toBe(level);
    expect(plan.kiosks.map((k) => k.kioskId)).toEqual([low.kioskId]);
    const line = plan.kiosks[0]!.lines.find((l) => l.sku === low.sku)!;
    const variance = forecast.map((p) => ((p.p90 - p.p50) / z90) ** 2);
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const z = normalQuantile(level);
    const lower = sum(p50s.slice(0, 6)) + z * Math.sqrt(sum(variance.slice(0, 6)));
    const upper = sum(p50s.slice(0, 7)) + Math.max(...p50s) + z * Math.sqrt(sum(variance.slice(0, 7)) + Math.max(...variance));
    expect(line.demandAtServiceLevel).toBeGreaterThan(lower - 0.01);
    expect(line.demandAtServiceLevel).toBeLessThan(upper + 0.01);
    expect(line.demandAtServiceLevel).toBeGreaterThan(line.demandMean);
    expect(Number(line.quantity)).toBe(Math.ceil(line.demandAtServiceLevel - units));
    expect(Number(line.available) + Number(line.quantity)).toBeGreaterThanOrEqual(line.demandAtServiceLevel);
    // A higher service level brings more.
    const higher = await risks.getRestockPlan({ kioskId: low.kioskId, serviceLevel: 0.99, visitIntervalHours: 168 });
    expect(higher.kiosks[0]!.lines.find((l) => l.sku === low.sku)!.quantity).toBeGreaterThan(line.quantity);
    // Kiosks with plenty: nothing to bring.
    const all = await risks.getRestockPlan({ visitIntervalHours: 72 });
    expect(all.kiosks.map((k) => k.kioskId)).toEqual([low.kioskId]);

    // Forecast vs actual: the past days carry what was sold beside the model's numbers.
    const both = (await f.as(ForecastService, f.tokens.viewer).getForecast({ kioskId: low.kioskId, sku: low.sku, horizonDays: 3, historyDays: 7 })).points;
    expect(both.map((p) => p.hasActual)).toEqual([true, true, true, true, true, true, false, false, false, false]);
    const sold = generated.find((g) => g.kioskId === low.kioskId && g.sku === low.sku && g.day === both[5]!.date)!;
    expect(both[5]!.actual).toBe(sold.quantity);
    expect(both[7]!.date).toBe(forecast[0]!.date);
    expect((await failure(f.as(ForecastService, f.tokens.viewer).getForecast({ kioskId: low.kioskId, sku: low.sku, horizonDays: 3, historyDays: 29 }))).rawMessage).toMatch(/^history_days:/);

    // ai.stockout.<kiosk>.predicted on stream AI, through ai's outbox.
    const nc = await connect({ servers: inject("infra").natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      const msg = await expect
        .poll(async () => jsm.streams.getMessage(aiSubjects.stream.name, { last_by_subj: aiSubjects.stockoutPredicted(low.kioskId) }).catch(() => null), eventually)
        .toBeTruthy()
        .then(() => jsm.streams.getMessage(aiSubjects.stream.name, { last_by_subj: aiSubjects.stockoutPredicted(low.kioskId) }));
      const event = fromBinary(StockoutPredictedEventSchema, msg!.data);
      expect(event.risk!.sku).toBe(low.sku);
      expect(event.risk!.stockoutProbability).toBeGreaterThanOrEqual(event.threshold);

      // Restocked: the risk falls back below the threshold and ai.stockout.<kiosk>.cleared follows.
      await clientFor(InventoryService, f.catalog!.url, admin).restock({ kioskId: low.kioskId, sku: low.sku, quantity: 100_000n, reason: "test restock" });
      const cleared = await expect
        .poll(async () => jsm.streams.getMessage(aiSubjects.stream.name, { last_by_subj: aiSubjects.stockoutCleared(low.kioskId) }).catch(() => null), eventually)
        .toBeTruthy()
        .then(() => jsm.streams.getMessage(aiSubjects.stream.name, { last_by_subj: aiSubjects.stockoutCleared(low.kioskId) }));
      const clearedEvent = fromBinary(StockoutPredictedEventSchema, cleared!.data);
      expect(clearedEvent.risk!.sku).toBe(low.sku);
      expect(clearedEvent.risk!.stockoutProbability).toBeLessThan(clearedEvent.threshold);
    } finally {
      await nc.close();
    }
  });

  it("marks the day a kiosk's product is sold out as a stock-out in its sales history (censored, not trained on)", async () => {
    const today = dayOf(Math.floor(Date.now() / dayMs));
    const yesterday = dayOf(Math.floor(Date.now() / dayMs) - 1);
    const [gone, kept] = [
      { kioskId: "censor-1", sku: "SNK-WATER-05" },
      { kioskId: "censor-2", sku: "SNK-WATER-05" },
    ];
    for (const p of [gone, kept]) await sales.addSale(f.pool, p.kioskId, p.sku, yesterday, 3, 150);
    const admin = await f.auth.adminToken();
    for (const p of [gone, kept]) await clientFor(InventoryService, f.catalog!.url, admin).restock({ kioskId: p.kioskId, sku: p.sku, quantity: 2n, reason: "test stock" });
    // Both units of one pair held for a sale (as orders holds them): nothing left to sell there.
    await clientFor(ReservationService, f.catalog!.url, await f.auth.serviceToken("orders")).reserve({
      reservationId: crypto.randomUUID(),
      kioskId: gone.kioskId,
      items: [{ sku: gone.sku, quantity: 2n }],
    });
    const todayRow = async (p: { kioskId: string; sku: string }) =>
      (await f.pool.query<{ stockout: boolean; quantity: string }>("SELECT stockout, quantity FROM sales_daily WHERE kiosk_id = $1 AND sku = $2 AND day = $3::date", [p.kioskId, p.sku, today])).rows[0];
    await expect.poll(() => todayRow(gone), eventually).toEqual({ stockout: true, quantity: "0" });
    // The pair with stock left is not censored; the history the model trains on leaves the day out.
    expect(await todayRow(kept)).toBeUndefined();
    expect((await sales.all(f.pool)).find((r) => r.kioskId === gone.kioskId && r.day === Math.floor(Date.now() / dayMs))?.stockout).toBe(true);
  });
});

// The pure parts: the generator's structure, the model against the seasonal-naive baseline
// on a held-out 14 days (daily and hourly), and the ONNX graph computing what the TypeScript
// model computes.
import { describe, expect, it } from "vitest";
import { dayIndex, generateSales, hourProfile, weekdayOf, weekdayProfile, type DailySale } from "../src/generator.js";
import { evaluate, predictTs, train, type FittedModel, type HistoryRow } from "../src/model.js";
import { loadModel, toOnnx } from "../src/onnx.js";

const endDay = "2026-11-30";
const history = (sales: DailySale[]): HistoryRow[] =>
  sales.map((s) => ({ kioskId: s.kioskId, sku: s.sku, day: dayIndex(s.day), quantity: s.quantity, unitPriceMinor: s.unitPriceMinor, stockout: s.stockout, hourly: s.hourly }));

describe("generator", () => {
  it("is deterministic from its seed", () => {
    const a = generateSales({ seed: 3, kiosks: 3, days: 10, endDay });
    const b = generateSales({ seed: 3, kiosks: 3, days: 10, endDay });
    const c = generateSales({ seed: 4, kiosks: 3, days: 10, endDay });
    expect(a.sales).toEqual(b.sales);
    expect(a.sales).not.toEqual(c.sales);
  });

  it("has each location type's weekday and hour-of-day shape, and censors stock-out days", () => {
    const { kiosks, sales } = generateSales({ seed: 5, kiosks: 6, days: 140, endDay, promoRate: 0, stockoutRate: 0.05 });
    for (const type of ["station", "mall"] as const) {
      const ids = new Set(kiosks.filter((k) => k.locationType === type).map((k) => k.kioskId));
      const byDow = new Array<number>(7).fill(0);
      const byHour = new Array<number>(24).fill(0);
      for (const s of sales.filter((s) => ids.has(s.kioskId) && !s.stockout)) {
        byDow[weekdayOf(dayIndex(s.day))]! += s.demand;
        s.hourly.forEach((q, h) => (byHour[h]! += q));
      }
      const profile = weekdayProfile[type];
      // The busiest and quietest weekdays are the profile's.
      expect(byDow.indexOf(Math.max(...byDow))).toBe(profile.indexOf(Math.max(...profile)));
      expect(byDow.indexOf(Math.min(...byDow))).toBe(profile.indexOf(Math.min(...profile)));
      // Nothing sells in the hours the location type is closed.
      hourProfile[type].forEach((w, h) => (w === 0 ? expect(byHour[h]).toBe(0) : undefined));
    }
    const out = sales.filter((s) => s.stockout);
    expect(out.length).toBeGreaterThan(0);
    for (const s of out) expect(s.quantity).toBeLessThanOrEqual(s.demand);
    expect(out.some((s) => s.quantity < s.demand)).toBe(true);
    for (const s of sales) expect(s.hourly.reduce((a, b) => a + b, 0)).toBe(s.quantity);
  });

  it("sells more at promotional prices (elasticity < 0)", () => {
    const { sales } = generateSales({ seed: 9, kiosks: 6, days: 120, endDay, promoRate: 0.3, stockoutRate: 0 });
    const mean = (xs: DailySale[]) => xs.reduce((a, s) => a + s.demand, 0) / xs.length;
    const sku = "SNK-CHOC-DARK";
    const promo = sales.filter((s) => s.sku === sku && s.unitPriceMinor < 349);
    const list = sales.filter((s) => s.sku === sku && s.unitPriceMinor === 349);
    expect(mean(promo)).toBeGreaterThan(mean(list) * 1.1);
  });
});

describe("demand model", () => {
  // Small enough to train and evaluate in well under a second.
  const { sales } = generateSales({ seed: 7, kiosks: 6, days: 70, endDay });
  const rows = history(sales);
  const origin = dayIndex(endDay) - 13;
  const model: FittedModel = train(rows.filter((r) => r.day < origin));

  it("beats seasonal-naive by at least 20 % WAPE on the held-out 14 days, with 80 % intervals covering 75–85 %", async () => {
    const served = await loadModel(1, model.layout, toOnnx(model));
    try {
      const { model: m, baseline } = await evaluate(model.layout, rows, origin, served.predict);
      expect(m.points).toBeGreaterThan(250);
      expect(m.wape).toBeLessThanOrEqual(baseline.wape * 0.8);
      expect(m.coverage80).toBeGreaterThanOrEqual(0.75);
      expect(m.coverage80).toBeLessThanOrEqual(0.85);
    } finally {
      await served.release();
    }
  });

  it("forecasts hours too: the hourly profile beats the hourly seasonal-naive, and its 80 % intervals cover sanely", async () => {
    const served = await loadModel(1, model.layout, toOnnx(model));
    try {
      const { model: m, baseline } = await evaluate(model.layout, rows, origin, served.predict, 14, "hourly");
      expect(m.points).toBeGreaterThan(250 * 24);
      expect(m.wape).toBeLessThanOrEqual(baseline.wape * 0.8);
      // Hourly counts are small integers: an interval either holds 0 and 1 or not, so coverage
      // runs above the nominal 80 % (measured 0.88); it must not collapse nor hold everything.
      expect(m.coverage80).toBeGreaterThanOrEqual(0.75);
      expect(m.coverage80).toBeLessThanOrEqual(0.92);
      // The hours of a day add up to the day.
      const pair = 0;
      const hours = Array.from({ length: 24 }, (_, h) => h);
      const hourly = await served.predict(hours.map(() => pair), hours.map(() => origin), hours.map(() => model.layout.refPrice[pair]!), hours);
      const [daily] = await served.predict([pair], [origin], [model.layout.refPrice[pair]!]);
      expect(hourly.reduce((a, q) => a + q.p50, 0)).toBeCloseTo(daily!.p50, 2);
      // Closed hours (a station sells nothing 0–4 UTC in the generator) get (almost) nothing.
      expect(Math.min(...hourly.map((q) => q.p50))).toBeLessThan(daily!.p50 * 0.01);
    } finally {
      await served.release();
    }
  });

  it("the ONNX graph's outputs equal the TypeScript model's on the same inputs, per day and per hour", async () => {
    const served = await loadModel(1, model.layout, toOnnx(model));
    try {
      const pairs = model.layout.pairs.map((_, i) => i);
      const cases = pairs.flatMap((p) =>
        [origin, origin + 3, origin + 13].flatMap((d) => [undefined, 8, 17].map((h) => ({ p, d, h, price: model.layout.refPrice[p]! * (d % 2 ? 0.8 : 1) }))),
      );
      const daily = cases.filter((c) => c.h === undefined);
      const hourly = cases.filter((c) => c.h !== undefined);
      const onnxDaily = await served.predict(daily.map((c) => c.p), daily.map((c) => c.d), daily.map((c) => c.price));
      const onnxHourly = await served.predict(hourly.map((c) => c.p), hourly.map((c) => c.d), hourly.map((c) => c.price), hourly.map((c) => c.h!));
      for (const [list, onnx] of [[daily, onnxDaily], [hourly, onnxHourly]] as const)
        list.forEach((c, i) => {
          const ts = predictTs(model, c.p, c.d, c.price, c.h);
          for (const q of ["p10", "p50", "p90"] as const) expect(onnx[i]![q]).toBeCloseTo(ts[q], 3);
        });
    } finally {
      await served.release();
    }
  });

  it("holds at 300 kiosks × 4 SKUs (1,200 pairs), where the old one-hot design needed a 3,601² Hessian", async () => {
    const big = history(generateSales({ seed: 8, kiosks: 300, days: 70, endDay }).sales);
    const fitted = train(big.filter((r) => r.day < origin));
    expect(fitted.layout.pairs).toHaveLength(1200);
    const served = await loadModel(1, fitted.layout, toOnnx(fitted));
    try {
      const { model: m, baseline } = await evaluate(fitted.layout, big, origin, served.predict);
      expect(m.wape).toBeLessThanOrEqual(baseline.wape * 0.8);
      expect(m.coverage80).toBeGreaterThanOrEqual(0.75);
      expect(m.coverage80).toBeLessThanOrEqual(0.85);
    } finally {
      await served.release();
    }
  });

  it("without the weekday features it does worse (what the gate must refuse)", async () => {
    const weak = train(rows.filter((r) => r.day < origin), { groups: [] });
    const strong = await evaluate(model.layout, rows, origin, (p, d, pr) => p.map((pi, i) => predictTs(model, pi, d[i]!, pr[i]!)));
    const worse = await evaluate(weak.layout, rows, origin, (p, d, pr) => p.map((pi, i) => predictTs(weak, pi, d[i]!, pr[i]!)));
    expect(worse.model.wape).toBeGreaterThan(strong.model.wape);
  });
});

// The generator's process as the selling simulator runs it after the seeded history
// (packages/kiosk-sdk/src/selling.ts): hourly rates that add up to the generator's daily
// means, and basket start rates that, with partners and extras joining as the basket
// structure adds them, buy each product at its own rate. Pure, no processes.
import { expect, it } from "vitest";
import { dailyMean, dayIndex, defaultProducts, generateKiosks, generateSales, hourlyRate, rng } from "../src/generator.js";
import { basketStartRates, completeBasket, demoAffinities, demoBasketProducts } from "../src/generator-baskets.js";

const historyStart = "2026-09-01";

it("spreads a kiosk × product day over the hours by the location type's profile, with the day's own effect", () => {
  const kiosks = generateKiosks(1, 6);
  for (const k of kiosks) {
    for (const p of defaultProducts) {
      const day = dayIndex("2026-12-02");
      const hours = Array.from({ length: 24 }, (_, h) => hourlyRate(1, k, p, new Date(Date.UTC(2026, 11, 2, h, 30)), historyStart, p.listPriceMinor));
      const total = hours.reduce((a, b) => a + b, 0);
      // The day effect is gamma(40)/40: within ±60 % of the mean, the same for every hour of the day.
      const effect = total / dailyMean(k, p, day, dayIndex(historyStart), p.listPriceMinor);
      expect(effect).toBeGreaterThan(0.4);
      expect(effect).toBeLessThan(1.6);
      expect(hourlyRate(1, k, p, new Date(Date.UTC(2026, 11, 2, 12, 59)), historyStart, p.listPriceMinor)).toBe(hours[12]);
    }
  }
  // Malls sell nothing at 3 in the morning; a discount raises demand by the elasticity.
  const mall = kiosks.find((k) => k.locationType === "mall")!;
  const water = defaultProducts.find((p) => p.sku === "SNK-WATER-05")!;
  const at = new Date(Date.UTC(2026, 11, 2, 3));
  expect(hourlyRate(1, mall, water, at, historyStart, water.listPriceMinor)).toBe(0);
  const noon = new Date(Date.UTC(2026, 11, 2, 12));
  expect(hourlyRate(1, mall, water, noon, historyStart, 120) / hourlyRate(1, mall, water, noon, historyStart, 150)).toBeCloseTo(Math.pow(120 / 150, water.elasticity), 10);
});

it("matches the seeded history's mean: the hourly rates over many days average what generateSales draws", () => {
  const [k] = generateKiosks(1, 1);
  const end = "2026-11-30";
  const days = 364;
  const { sales } = generateSales({ seed: 1, kiosks: 1, days, endDay: end, stockoutRate: 0, promoRate: 0 });
  for (const p of defaultProducts) {
    const generated = sales.filter((s) => s.sku === p.sku).reduce((n, s) => n + s.quantity, 0);
    let live = 0;
    const start = dayIndex(end) - days + 1;
    for (let d = start; d <= dayIndex(end); d++)
      for (let h = 0; h < 24; h++) live += hourlyRate(1, k!, p, new Date(d * 86_400_000 + h * 3_600_000), new Date(start * 86_400_000).toISOString().slice(0, 10), p.listPriceMinor);
    expect(live / generated).toBeGreaterThan(0.97);
    expect(live / generated).toBeLessThan(1.03);
  }
});

function buy(demand: Map<string, number>, seed: number): { bought: Map<string, number>; starts: Map<string, number> } {
  const products = demoBasketProducts.filter((p) => demand.has(p.sku));
  const plan = basketStartRates(demand, products, demoAffinities.filter((a) => demand.has(a.a) && demand.has(a.b)));
  const total = [...plan.starts.values()].reduce((a, b) => a + b, 0);
  const u = rng(seed);
  const count = new Map<string, number>();
  const n = 200_000;
  for (let i = 0; i < n; i++) {
    let r = u() * total;
    let first = products.at(-1)!.sku;
    for (const [sku, rate] of plan.starts)
      if ((r -= rate) < 0) {
        first = sku;
        break;
      }
    for (const sku of completeBasket(first, u, products, plan.affinities, plan.extra)) count.set(sku, (count.get(sku) ?? 0) + 1);
  }
  return { bought: new Map([...count].map(([sku, c]) => [sku, (c / n) * total])), starts: plan.starts };
}

it("starts baskets so that each product, partners and extras included, is bought at its own rate", () => {
  // The demo products' base demand: chips are mostly bought with water, so fewer baskets start with them than chips sell.
  const base = new Map(defaultProducts.map((p) => [p.sku, p.base]));
  const { bought, starts } = buy(base, 11);
  for (const [sku, rate] of base) expect(bought.get(sku)! / rate, sku).toBeCloseTo(1, 1);
  expect(starts.get("SNK-CHIPS-SALT")!).toBeLessThan(base.get("SNK-CHIPS-SALT")! * 0.5);
  // A day when chips sell far below what water's baskets alone would take: the pair is damped, the rates still hold.
  const skewed = new Map([...base].map(([sku, rate]) => [sku, sku === "SNK-CHIPS-SALT" ? rate * 0.4 : sku === "SNK-WATER-05" ? rate * 1.3 : rate]));
  const damped = buy(skewed, 12);
  for (const [sku, rate] of skewed) expect(damped.bought.get(sku)! / rate, sku).toBeCloseTo(1, 1);
  expect(damped.starts.get("SNK-CHIPS-SALT")).toBeGreaterThanOrEqual(0);
});

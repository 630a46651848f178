// Leases sized from ai's demand forecast (issue 18, docs/offline.md) against a real ai
// process trained on generated history and a real catalog that asks it as itself: the
// lease holds the kiosk's forecast demand over the next hours (the sum of the hourly 90 %
// quantiles, rounded up, as GetForecast answers them), within the cap and the stock free;
// when ai cannot answer — a SKU it has no history for, or ai down — the documented
// fallback is granted, and the lease says which.
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ForecastService, Granularity, ModelService } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { InventoryService, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { LeaseService, LeaseSource, LeaseState } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { createDatabase, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { clientFor, Role } from "../../../test/support/auth.js";
import { dayMs, dayOf, generateSales } from "../../ai/src/generator.js";
import { sales } from "../../ai/src/store.js";
import { startAi, type AiFixture } from "../../ai/test/fixture.js";

let ai: AiFixture;
let catalog: StartedService;
let operator: string;
const kiosk = "sim-0002";
const sku = "SNK-WATER-05";
const hours = 12;

beforeAll(async () => {
  ai = await startAi();
  const { sales: generated } = generateSales({ seed: 11, kiosks: 6, days: 70, endDay: dayOf(Math.floor(Date.now() / dayMs) - 1) });
  await sales.insertGenerated(ai.pool, generated);
  expect((await ai.as(ModelService, ai.tokens.admin).retrain({})).promoted).toBe(true);
  catalog = await startTestService("catalog", {
    DATABASE_URL: await createDatabase(inject("infra").databaseUrl, "catalog"),
    REDIS_URL: ai.auth.redisUrl,
    NATS_URL: inject("infra").natsUrl,
    AUTH_JWKS_URL: `${ai.auth.service.url}/.well-known/jwks.json`,
    AI_URL: ai.ai.url,
    ...ai.auth.serviceEnv("catalog"),
    LEASE_FORECAST_FALLBACK_UNITS: "4",
    HEALTH_PROBE_INTERVAL_MS: "300",
    SHUTDOWN_GRACE_MS: "3000",
  });
  operator = (await ai.auth.userWithRole(Role.OPERATOR)).accessToken;
  const products = clientFor(ProductService, catalog.url, ai.tokens.admin);
  await waitFor("catalog to verify tokens", async () => (await products.listProducts({}), true), { timeout: 60_000, interval: 500, retry: (err) => ConnectError.from(err).code === Code.Unavailable });
  for (const s of [sku, "NEW-ONLY-HERE"]) {
    await products.createProduct({ product: { sku: s, name: s, category: "drinks", priceMinor: 150n, currency: "EUR", taxRateBasisPoints: 900, active: true } });
    await clientFor(InventoryService, catalog.url, operator).restock({ kioskId: kiosk, sku: s, quantity: 200n, reason: "test" });
  }
}, 240_000);
afterAll(async () => {
  await catalog?.stop();
  await ai?.stop();
});

/** What the lease should hold: GetForecast's hourly p90 over [now, now + hours), summed and rounded up. */
async function forecastUnits(now: number): Promise<number> {
  const from = Math.floor(now / 3_600_000) * 3_600_000;
  const horizonDays = Math.ceil((new Date(from).getUTCHours() + hours) / 24);
  const { points } = await ai.as(ForecastService, ai.tokens.viewer).getForecast({ kioskId: kiosk, sku, horizonDays, historyDays: 1, granularity: Granularity.HOURLY });
  const p90 = points.filter((p) => {
    const start = Date.parse(`${p.date}T00:00:00Z`) + p.hour * 3_600_000;
    return start >= from && start < now + hours * 3_600_000;
  }).reduce((n, p) => n + p.p90, 0);
  return Math.ceil(p90 - 1e-9);
}

describe("a lease sized from ai's forecast", () => {
  it("holds the kiosk's forecast demand for the next hours; a SKU ai cannot forecast, or ai down, gets the fallback", async () => {
    const leases = clientFor(LeaseService, catalog.url, operator);
    const before = await forecastUnits(Date.now());
    const { lease } = await leases.grantLease({ leaseId: randomUUID(), kioskId: kiosk, items: [{ sku, quantity: 100n }, { sku: "NEW-ONLY-HERE", quantity: 0n }], forecastHours: hours });
    const after = await forecastUnits(Date.now());
    expect(lease).toMatchObject({ kioskId: kiosk, state: LeaseState.ACTIVE, source: LeaseSource.FORECAST });
    const water = lease!.items.find((i) => i.sku === sku)!;
    expect(before).toBeGreaterThan(0);
    // (An hour may turn between the reads: the lease matches the forecast of one of them.)
    expect([before, after].map(BigInt)).toContain(water.quantity);
    expect(water.sizing).toMatch(new RegExp(`^forecast: p90 [0-9.]+ units over ${hours} h \\(model v[0-9]+\\)$`));
    // ai has no history for this SKU: the fallback (LEASE_FORECAST_FALLBACK_UNITS), and why.
    const fresh = lease!.items.find((i) => i.sku === "NEW-ONLY-HERE")!;
    expect(fresh.quantity).toBe(4n);
    expect(fresh.sizing).toMatch(/^fallback: ai answered /);
    const { stock } = await clientFor(InventoryService, catalog.url, operator).getStock({ kioskId: kiosk, sku });
    expect(stock!.reserved).toBe(water.quantity);
    // The same lease id again answers the same lease (not sized anew).
    const { lease: again } = await leases.grantLease({ leaseId: lease!.leaseId, kioskId: kiosk, items: [{ sku, quantity: 100n }, { sku: "NEW-ONLY-HERE", quantity: 0n }], forecastHours: hours });
    expect(again!.items.map((i) => i.quantity)).toEqual(lease!.items.map((i) => i.quantity));
    // Bad input names the field.
    const bad = await leases.grantLease({ leaseId: randomUUID(), kioskId: kiosk, items: [{ sku, quantity: 1n }], forecastHours: 49 }).catch((e: unknown) => ConnectError.from(e));
    expect(bad).toBeInstanceOf(ConnectError);
    expect([(bad as ConnectError).code, (bad as ConnectError).rawMessage]).toEqual([Code.InvalidArgument, expect.stringMatching(/^forecast_hours:/)]);

    // ai down: the lease still goes out, with the fallback.
    await ai.ai.stop();
    const { lease: fallback } = await leases.grantLease({ leaseId: randomUUID(), kioskId: kiosk, items: [{ sku, quantity: 3n }], forecastHours: hours });
    expect(fallback!.items[0]).toMatchObject({ sku, quantity: 3n, sizing: expect.stringMatching(/^fallback: ai answered Unavailable/) });
  });
});

// The simulated fleet's selling (selling.ts) against real processes: auth, catalog,
// payments with its provider simulator, orders, and ai recording completed orders into its
// sales history. Two simulated kiosks sell at a high speed-up; their completed sales reach
// ai's sales_daily with the generator's products (and nothing else catalog has); a product
// that runs out at a kiosk is not sold there again until the simulated route driver restocks it.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { InventoryService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { OrderService, OrderState, type Order } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createDatabase, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { createLogger, createPool, type Pool } from "@adminkiosk/runtime";
import { inject } from "vitest";
import { defaultProducts } from "../../../services/ai/src/generator.js";
import { startSale, type SaleFixture } from "../../../services/orders/test/fixture.js";
import { clientFor } from "../../../test/support/auth.js";
import { startSelling, type Selling } from "../src/selling.js";

let f: SaleFixture;
let ai: StartedService;
let pool: Pool;
let selling: Selling | undefined;
// Kiosks 2 and 5 are airport kiosks in the generator: they have demand at every hour of the day.
const prefix = `selltest-${randomBytes(3).toString("hex")}`;
const [a, b] = [`${prefix}-0002`, `${prefix}-0005`];
const water = "SNK-WATER-05";
const other = `TEST-OTHER-${randomBytes(2).toString("hex").toUpperCase()}`;

beforeAll(async () => {
  f = await startSale();
  const infra = inject("infra");
  const databaseUrl = await createDatabase(infra.databaseUrl, "ai");
  ai = await startTestService("ai", {
    DATABASE_URL: databaseUrl,
    REDIS_URL: f.auth.redisUrl,
    NATS_URL: infra.natsUrl,
    AUTH_JWKS_URL: `${f.auth.service.url}/.well-known/jwks.json`,
    HEALTH_PROBE_INTERVAL_MS: "300",
    SHUTDOWN_GRACE_MS: "3000",
    ORDERS_EVENTS_CONSUMER: `ai-orders-selling-${prefix}`,
    AI_LINK_EVENTS_CONSUMER: `ai-link-selling-${prefix}`,
    AI_LINK_EVENTS_SINCE_START: "true",
  });
  pool = createPool(databaseUrl, "ai", createLogger("ai-test", "warn"), 2);
  // The generator's products at their list prices (as catalog's demo seed has them), and one it does not model.
  for (const p of defaultProducts) await f.product(p.sku, BigInt(p.listPriceMinor), { [a]: p.sku === water ? 3n : 500n, [b]: 500n });
  await f.product(other, 199n, { [a]: 500n, [b]: 500n });
}, 120_000);

afterAll(async () => {
  await selling?.stop();
  await pool?.end();
  await ai?.stop();
  await f?.stop();
});

/** Units per kiosk × SKU in ai's sales history. */
async function history(): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ kiosk_id: string; sku: string; quantity: string }>(
    "SELECT kiosk_id, sku, sum(quantity)::text AS quantity FROM sales_daily WHERE kiosk_id = ANY($1) GROUP BY 1, 2",
    [[a, b]],
  );
  return new Map(rows.map((r) => [`${r.kiosk_id}|${r.sku}`, Number(r.quantity)]));
}

async function completedOrders(kioskId: string): Promise<Order[]> {
  const orders = clientFor(OrderService, f.orders.url, f.tokens.viewer);
  const all: Order[] = [];
  for (let pageToken = ""; ; ) {
    const page = await orders.listOrders({ kioskId, state: OrderState.COMPLETED, pageSize: 500, pageToken });
    all.push(...page.orders);
    if (!page.nextPageToken) return all;
    pageToken = page.nextPageToken;
  }
}

it("sells the generator's products through orders into ai's history, and a sold-out product only after the route driver restocks it", { timeout: 120_000 }, async () => {
  const credentials = [{ kioskId: a, deviceCredential: await f.device(a) }, { kioskId: b, deviceCredential: await f.device(b) }];
  // 20,000×: an hour of demand in 0.18 s; the route driver comes after 2,000 simulated minutes (6 s).
  selling = startSelling({
    ordersUrl: f.orders.url,
    catalogUrl: f.catalog.url,
    kiosks: credentials,
    historyStart: new Date(Date.now() - 90 * 86_400_000).toISOString().slice(0, 10),
    speedup: 20_000,
    // The same demand at any time of day (at night these kiosks sell little or nothing).
    demandHourUtc: 14,
    concurrency: 2,
    restock: { token: async () => f.tokens.operator, afterMinutes: 2_000 },
  });

  // Every generator product sells at both kiosks, the product the generator does not model never,
  // and kiosk A's water goes past its 3 units once the route driver has been.
  const sold = await waitFor(
    "every generator product sold at both kiosks and kiosk A's water restocked and sold again",
    async () => {
      const h = await history();
      const all = [a, b].every((k) => defaultProducts.every((p) => (h.get(`${k}|${p.sku}`) ?? 0) > 0));
      return all && (h.get(`${a}|${water}`) ?? 0) > 3 ? h : undefined;
    },
    { timeout: 60_000, interval: 250 },
  );
  expect([...sold.keys()].filter((key) => key.endsWith(`|${other}`))).toEqual([]);

  // The route driver's visit, through catalog's admin API as an operator.
  const { restocks } = await f.catalogAs(InventoryService, f.tokens.admin).listRestocks({ kioskId: a, sku: water });
  const visits = restocks.filter((r) => r.reason === "simulated restock visit");
  expect(visits.length).toBeGreaterThanOrEqual(1);
  const restockedAt = timestampDate(visits.at(-1)!.restockTime!).getTime();
  const firstVisit = Math.min(...visits.map((v) => timestampDate(v.restockTime!).getTime()));

  // Before the first visit kiosk A sold exactly the 3 units it had, after it more.
  const waterUnits = (orders: Order[]) => orders.reduce((n, o) => n + o.lines.filter((l) => l.sku === water).reduce((m, l) => m + Number(l.quantity), 0), 0);
  const orders = await completedOrders(a);
  const created = (o: Order) => timestampDate(o.createTime!).getTime();
  expect(waterUnits(orders.filter((o) => created(o) < firstVisit))).toBe(3);
  expect(waterUnits(orders.filter((o) => created(o) > firstVisit))).toBeGreaterThan(0);
  expect(restockedAt).toBeGreaterThanOrEqual(firstVisit);
  // Once out, the kiosk stopped offering it: catalog refused it at most a few times (stale stock), not at every arrival.
  expect(selling.stats.refusedOutOfStock).toBeLessThanOrEqual(4);
  // ai's totals are what orders completed there, each completed order once (compared once selling has stopped).
  await selling.stop();
  await expect
    .poll(async () => {
      const [h, completed] = await Promise.all([history(), completedOrders(a)]);
      return h.get(`${a}|${water}`) === waterUnits(completed);
    }, { timeout: 20_000 })
    .toBe(true);
});

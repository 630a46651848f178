// Recommendations and product search on real processes: generated baskets with known pairs
// arrive as completed orders on stream ORDERS, ai's consumer records them, and each pair's
// partner comes first for its product, at a kiosk with its own history (from its own
// baskets) and at a kiosk with none (from the fleet's); what is in the cart or not stocked at
// the kiosk is never offered; baskets past the retention are forgotten. Product search reads a
// real catalog's products as ai and finds Spanish and English names whatever the accents,
// plurals and case.
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { RecommendationReason, RecommendationService } from "@adminkiosk/proto/adminkiosk/ai/v1/recommendations_pb";
import { InventoryService, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { OrderCompletedEventSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/events_pb";
import { eventually, waitFor } from "@adminkiosk/devstack";
import { ordersSubjects } from "@adminkiosk/runtime";
import { clientFor, failure } from "../../../test/support/auth.js";
import { demoAffinities, demoBasketProducts, generateBaskets } from "../src/generator-baskets.js";
import { baskets } from "../src/recommend.js";
import { startAi, type AiFixture } from "./fixture.js";

let f: AiFixture;
// SKUs of this run only: other tests' orders on the shared NATS must not look like these.
const run = Math.random().toString(36).slice(2, 7).toUpperCase();
const sku = (demo: string) => `${demo}.${run}`;
const products = demoBasketProducts.map((p) => ({ ...p, sku: sku(p.sku) }));
const affinities = demoAffinities.map((a) => ({ ...a, a: sku(a.a), b: sku(a.b) }));
const kiosks = ["rec-0001", "rec-0002", "rec-0003"];
const names: Record<string, string> = {
  "SNK-CHOC-DARK": "Dark chocolate bar",
  "SNK-CHIPS-SALT": "Potato chips, salted",
  "SNK-WATER-05": "Still water 0.5 l",
  "FLW-ROSE-RED": "Red roses",
  "FLW-TULIP-MIX": "Tulip bouquet",
  "MRC-MUG": "Admin Kiosk mug",
  "MRC-TSHIRT": "Festival T-shirt",
};
const extra = [
  { sku: sku("BEB-FRIAS"), name: "Bebidas frías", description: "Refrescos y zumos, siempre fríos", category: "bebidas" },
  { sku: sku("SAN-JAMON"), name: "Sándwich de jamón", description: "Pan de molde con jamón serrano y tomate", category: "comida" },
  { sku: sku("CAF-CALIENTE"), name: "Café caliente", description: "Café recién hecho", category: "bebidas" },
];

beforeAll(async () => {
  f = await startAi({ AI_CATALOG_REFRESH_MS: "300", AI_BASKET_PRUNE_INTERVAL_MS: "300", AI_BASKET_RETENTION_DAYS: "180" }, { withCatalog: true });
  const admin = await f.auth.adminToken();
  const catalog = clientFor(ProductService, f.catalog!.url, admin);
  for (const p of demoBasketProducts)
    await catalog.createProduct({ product: { sku: sku(p.sku), name: names[p.sku]!, category: "demo", priceMinor: 300n, currency: "EUR", taxRateBasisPoints: 2100, active: true } });
  for (const p of extra) await catalog.createProduct({ product: { ...p, priceMinor: 250n, currency: "EUR", taxRateBasisPoints: 2100, active: true } });
  // Only products ai has read from catalog are offered: wait until it has read them all.
  const search = f.as(RecommendationService, f.tokens.viewer);
  await waitFor("ai to read catalog's products", async () => ((await search.searchProducts({ query: "café" }).catch(() => undefined))?.indexedProducts === products.length + extra.length ? true : undefined));

  // The baskets, as orders' completed-order events.
  const nc = await connect({ servers: inject("infra").natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.info(ordersSubjects.stream.name).catch(() => jsm.streams.add({ name: ordersSubjects.stream.name, subjects: ordersSubjects.stream.subjects }));
    const js = jetstream(nc);
    const generated = generateBaskets({ seed: 7, kioskIds: kiosks, basketsPerKiosk: 160, products, affinities, end: new Date(), days: 30, prefix: `rec-${run}` });
    await Promise.all(
      generated.map((b) => {
        const when = timestampFromDate(b.completedAt);
        const event = create(OrderCompletedEventSchema, {
          time: when,
          order: { orderId: b.orderId, kioskId: b.kioskId, completeTime: when, lines: b.skus.map((s, i) => ({ lineNumber: i + 1, sku: s, quantity: 1n, unitPriceMinor: 300n, totalMinor: 300n })) },
        });
        return js.publish(ordersSubjects.order(b.orderId, "completed"), toBinary(OrderCompletedEventSchema, event), { msgID: b.orderId });
      }),
    );
  } finally {
    await nc.close();
  }
  const viewer = f.as(RecommendationService, f.tokens.viewer);
  for (const kioskId of kiosks)
    await waitFor(`ai to record ${kioskId}'s baskets`, async () => ((await viewer.getRecommendations({ kioskId })).kioskBaskets === 160n ? true : undefined), { timeout: 60_000, interval: 200 });
});
afterAll(async () => {
  await f?.stop();
});

describe("bought-together recommendations", () => {
  it("puts each product's generated partner first, from the kiosk's own baskets and, at a new kiosk, the fleet's", async () => {
    const viewer = f.as(RecommendationService, f.tokens.viewer);
    for (const { a, b } of affinities) {
      for (const [cart, partner] of [
        [a, b],
        [b, a],
      ] as const) {
        const here = await viewer.getRecommendations({ kioskId: "rec-0001", cartSkus: [cart], limit: 3 });
        expect(here.recommendations[0], `${cart} at rec-0001`).toMatchObject({ sku: partner, reason: RecommendationReason.BOUGHT_TOGETHER_HERE });
        expect(here.recommendations[0]!.lift).toBeGreaterThan(1.2);
        expect(here.recommendations[0]!.name).toBe(names[partner.split(".")[0]!]);
        const fresh = await viewer.getRecommendations({ kioskId: "rec-new", cartSkus: [cart], limit: 3 });
        expect(fresh.recommendations[0], `${cart} at a new kiosk`).toMatchObject({ sku: partner, reason: RecommendationReason.BOUGHT_TOGETHER_FLEET });
        expect(fresh.kioskBaskets).toBe(0n);
      }
    }
    // Never what is in the cart; the rest filled with best sellers: every other product sold.
    const cart = [affinities[0]!.a, affinities[0]!.b];
    const full = await viewer.getRecommendations({ kioskId: "rec-0002", cartSkus: cart, limit: 20 });
    expect(full.recommendations.map((r) => r.sku).sort()).toEqual(products.map((p) => p.sku).filter((s) => !cart.includes(s)).sort());
    expect(full.recommendations.at(-1)!.reason).toBe(RecommendationReason.POPULAR);
    // An empty cart: the kiosk's best sellers, water (the most popular first product) first.
    const empty = await viewer.getRecommendations({ kioskId: "rec-0002" });
    expect(empty.recommendations[0]).toMatchObject({ sku: sku("SNK-WATER-05"), reason: RecommendationReason.POPULAR });
  });

  it("offers only products with stock at the kiosk, once ai knows its stock", async () => {
    const admin = await f.auth.adminToken();
    const inventory = clientFor(InventoryService, f.catalog!.url, admin);
    const { a, b } = affinities[1]!; // roses → chocolate
    for (const p of products) if (p.sku !== b) await inventory.restock({ kioskId: "rec-0003", sku: p.sku, quantity: 10n, reason: "test stock" });
    const viewer = f.as(RecommendationService, f.tokens.viewer);
    // Once ai has read the kiosk's stock (every product restocked, one sweep may see only some
    // of them), everything but the cart's item and the one with no stock is offered there.
    const rest = products.map((p) => p.sku).filter((sku) => sku !== a && sku !== b).sort();
    await expect
      .poll(async () => (await viewer.getRecommendations({ kioskId: "rec-0003", cartSkus: [a], limit: 10 })).recommendations.map((r) => r.sku).sort(), eventually)
      .toEqual(rest);
    // Elsewhere it is still offered.
    expect((await viewer.getRecommendations({ kioskId: "rec-0001", cartSkus: [a] })).recommendations[0]!.sku).toBe(b);
  });

  it("answers a kiosk device for its own kiosk only, and names bad input", async () => {
    const device = f.as(RecommendationService, await f.device("rec-0001"));
    const own = await device.getRecommendations({ cartSkus: [affinities[2]!.a] });
    expect(own.kioskId).toBe("rec-0001");
    expect(own.recommendations[0]!.sku).toBe(affinities[2]!.b);
    expect((await failure(device.getRecommendations({ kioskId: "rec-0002" }))).code).toBe(Code.PermissionDenied);
    const viewer = f.as(RecommendationService, f.tokens.viewer);
    for (const [call, field] of [
      [() => viewer.getRecommendations({ kioskId: "rec-0001", limit: 21 }), "limit"],
      [() => viewer.getRecommendations({ kioskId: "rec-0001", limit: -1 }), "limit"],
      [() => viewer.getRecommendations({ kioskId: "rec-0001", cartSkus: ["bad sku"] }), "cart_skus\\[0\\]"],
      [() => viewer.getRecommendations({ kioskId: "rec-0001", cartSkus: ["A", "B", "A"] }), "cart_skus\\[2\\]"],
      [() => viewer.getRecommendations({ kioskId: "" }), "kiosk_id"],
      [() => viewer.searchProducts({ query: "   " }), "query"],
      [() => viewer.searchProducts({ query: "x".repeat(201) }), "query"],
      [() => viewer.searchProducts({ query: "agua", limit: 51 }), "limit"],
    ] as const) {
      const err = await failure(call());
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toMatch(new RegExp(`^${field}:`));
    }
  });
  it("forgets baskets older than the retention, counts and all, and keeps the recent ones", async () => {
    const old = new Date(Date.now() - 200 * 86_400_000);
    const pair = [affinities[2]!.a, affinities[2]!.b];
    const added = await baskets.record(f.pool, Array.from({ length: 30 }, (_, i) => ({ orderId: `old-${run}-${i}`, kioskId: "rec-old", skus: pair, completedAt: old })), "orders");
    expect(added).toBe(30);
    const viewer = f.as(RecommendationService, f.tokens.viewer);
    await expect.poll(async () => (await viewer.getRecommendations({ kioskId: "rec-old", cartSkus: [pair[0]!] })).kioskBaskets, eventually).toBe(0n);
    const left = await f.pool.query("SELECT 1 FROM basket_pairs WHERE kiosk_id = 'rec-old' UNION ALL SELECT 1 FROM basket_items WHERE kiosk_id = 'rec-old' UNION ALL SELECT 1 FROM baskets WHERE kiosk_id = 'rec-old'");
    expect(left.rows).toEqual([]);
    // The generated baskets (the last 30 days) stay.
    expect((await viewer.getRecommendations({ kioskId: "rec-0001" })).kioskBaskets).toBe(160n);
  });
});

describe("product search", () => {
  it("finds Spanish and English products whatever the accents, plurals and case", async () => {
    const viewer = f.as(RecommendationService, f.tokens.viewer);
    const top = async (query: string) => {
      const res = await viewer.searchProducts({ query, limit: 3 });
      return res.products[0]?.name;
    };
    // ai reads catalog in the background: wait until it has this run's products.
    await expect.poll(() => top("bebida fria"), eventually).toBe("Bebidas frías");
    expect(await top("sandwich")).toBe("Sándwich de jamón");
    expect(await top("SÁNDWICHES JAMÓN")).toBe("Sándwich de jamón");
    expect(await top("café")).toBe("Café caliente");
    expect(await top("rose")).toBe("Red roses");
    expect(await top("chocolates")).toBe("Dark chocolate bar");
    expect(await top("sandw")).toBe("Sándwich de jamón"); // typed so far
    const drinks = await viewer.searchProducts({ query: "bebidas", limit: 10 });
    expect(drinks.products.map((p) => p.name).slice(0, 2).sort()).toEqual(["Bebidas frías", "Café caliente"]);
    expect(drinks.products[0]!.score).toBeGreaterThan(drinks.products[1]!.score);
    expect((await viewer.searchProducts({ query: "helicóptero" })).products).toEqual([]);
  });

  it("searches a device's own kiosk: only what is stocked there", async () => {
    const device = f.as(RecommendationService, await f.device("rec-0003"));
    // rec-0003 stocks the demo products but none of the Spanish ones.
    await expect.poll(async () => (await device.searchProducts({ query: "chocolate roses" })).products.length, eventually).toBeGreaterThan(0);
    expect((await device.searchProducts({ query: "sandwich" })).products).toEqual([]);
    expect((await failure(device.searchProducts({ query: "sandwich", kioskId: "rec-0001" }))).code).toBe(Code.PermissionDenied);
  });
});

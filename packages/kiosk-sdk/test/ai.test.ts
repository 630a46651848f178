// The SDK's recommendations() and searchProducts() against a real ai (reading a real
// catalog as itself), with an enrolled kiosk's own device credential: the kiosk gets its
// own kiosk's answers and bad input comes back as ai's InvalidArgument.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { RecommendationReason } from "@adminkiosk/proto/adminkiosk/ai/v1/recommendations_pb";
import { eventually } from "@adminkiosk/devstack";
import { generateBaskets } from "../../../services/ai/src/generator-baskets.js";
import { baskets } from "../../../services/ai/src/recommend.js";
import { startAi, type AiFixture } from "../../../services/ai/test/fixture.js";
import { clientFor } from "../../../test/support/auth.js";
import { recommendations, searchProducts } from "../src/index.js";

let f: AiFixture;
let credential: string;
const products = [
  { sku: "SDK-CHIPS", name: "Patatas fritas", weight: 30 },
  { sku: "SDK-AGUA", name: "Agua mineral", weight: 30 },
  { sku: "SDK-SANDWICH", name: "Sándwich de jamón", weight: 20 },
  { sku: "SDK-CAFE", name: "Café con leche", weight: 20 },
];

beforeAll(async () => {
  f = await startAi({ AI_CATALOG_REFRESH_MS: "300" }, { withCatalog: true });
  const catalog = clientFor(ProductService, f.catalog!.url, await f.auth.adminToken());
  for (const p of products) await catalog.createProduct({ product: { sku: p.sku, name: p.name, category: "kiosk", priceMinor: 200n, currency: "EUR", taxRateBasisPoints: 1000, active: true } });
  // Baskets as ai's orders consumer records them: the sandwich goes with coffee.
  const generated = generateBaskets({
    seed: 3,
    kioskIds: ["sdk-ai-1", "sdk-ai-2"],
    basketsPerKiosk: 150,
    products,
    affinities: [{ a: "SDK-SANDWICH", b: "SDK-CAFE", probability: 0.7 }],
    end: new Date(),
    days: 14,
    prefix: "sdk",
  });
  await baskets.record(f.pool, generated, "generated");
  credential = await f.device("sdk-ai-1");
});
afterAll(async () => {
  await f?.stop();
});

it("recommends what goes with the cart at the kiosk, with the kiosk's own credential", async () => {
  // Only products ai has read from catalog are offered: wait until it has read this test's.
  await expect.poll(async () => (await recommendations(["SDK-SANDWICH"], { aiAddress: f.ai.url, credential, limit: 3 }))[0]?.sku, eventually).toBe("SDK-CAFE");
  const recs = await recommendations(["SDK-SANDWICH"], { aiAddress: f.ai.url, credential, limit: 3 });
  expect(recs[0]).toMatchObject({ sku: "SDK-CAFE", reason: RecommendationReason.BOUGHT_TOGETHER_HERE });
  expect(recs.map((r) => r.sku)).not.toContain("SDK-SANDWICH");
  expect(recs.length).toBeLessThanOrEqual(3);
  await expect(recommendations(["not a sku"], { aiAddress: f.ai.url, credential })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^cart_skus\[0\]:/) });
});

it("searches the kiosk's products in Spanish without accents", async () => {
  await expect.poll(async () => (await searchProducts("sandwich jamon", { aiAddress: f.ai.url, credential }))[0]?.name, eventually).toBe("Sándwich de jamón");
  expect((await searchProducts("cafés", { aiAddress: f.ai.url, credential }))[0]?.sku).toBe("SDK-CAFE");
  await expect(searchProducts(" ", { aiAddress: f.ai.url, credential })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^query:/) });
});

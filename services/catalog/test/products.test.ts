// Products as admins manage them, viewers and kiosks read them, and search finds them.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { failure } from "../../../test/support/auth.js";
import { createProduct, startCatalog, type CatalogFixture } from "./fixture.js";

let f: CatalogFixture;
beforeAll(async () => {
  f = await startCatalog();
  const items: [string, string, string, string, bigint][] = [
    ["FLW-ROSE-RED", "Red roses", "A dozen long-stemmed red roses, fresh every morning", "flowers", 2499n],
    ["FLW-TULIP", "Tulip bouquet", "Ten mixed tulips", "flowers", 1599n],
    ["SNK-CHOC-DARK", "Dark chocolate bar", "70% cocoa, 100 g", "snacks", 349n],
    ["SNK-CHIPS", "Potato chips", "Salted, 150 g", "snacks", 299n],
    ["MRC-MUG", "Concert mug", "Ceramic mug with the hall's logo; also sold: chocolate", "merchandise", 1299n],
  ];
  for (const [sku, name, description, category, priceMinor] of items) await createProduct(f, sku, { name, description, category, priceMinor });
  await createProduct(f, "SNK-OLD", { name: "Old chocolate", category: "snacks", active: false });
});
afterAll(() => f?.stop());

const products = (token: string) => f.as(ProductService, token);

describe("managing products", () => {
  it("an admin creates, updates and deactivates a product; a viewer reads it", async () => {
    const created = await createProduct(f, "TEST-1", { name: "Water", priceMinor: 150n });
    expect(created).toMatchObject({ sku: "TEST-1", name: "Water", priceMinor: 150n, currency: "EUR", taxRateBasisPoints: 2100, active: true });
    const { product: updated } = await products(f.tokens.admin).updateProduct({ sku: "TEST-1", priceMinor: 175n, updateImageUrls: true, imageUrls: ["https://img.example/water.png"] });
    expect(updated).toMatchObject({ name: "Water", priceMinor: 175n, imageUrls: ["https://img.example/water.png"] });
    const { product: deleted } = await products(f.tokens.admin).deleteProduct({ sku: "TEST-1" });
    expect(deleted?.active).toBe(false);
    const { product: read } = await products(f.tokens.viewer).getProduct({ sku: "TEST-1" });
    expect(read).toMatchObject({ active: false, priceMinor: 175n });
  });

  it("kiosks see only what is for sale", async () => {
    const kiosk = await f.device("prod-kiosk-1");
    expect((await failure(products(kiosk).getProduct({ sku: "SNK-OLD" }))).code).toBe(Code.NotFound);
    const { products: listed } = await products(kiosk).listProducts({ includeInactive: true, category: "snacks" });
    expect(listed.map((p) => p.sku)).toEqual(["SNK-CHIPS", "SNK-CHOC-DARK"]);
  });

  it("viewers and operators cannot change products; kiosks cannot either", async () => {
    expect((await failure(products(f.tokens.viewer).createProduct({ product: { sku: "X" } }))).code).toBe(Code.PermissionDenied);
    expect((await failure(products(f.tokens.operator).updateProduct({ sku: "SNK-CHIPS", priceMinor: 1n }))).code).toBe(Code.PermissionDenied);
    expect((await failure(products(await f.device("prod-kiosk-1")).deleteProduct({ sku: "SNK-CHIPS" }))).code).toBe(Code.PermissionDenied);
  });

  it("a second product with the same SKU is AlreadyExists; an unknown one NotFound", async () => {
    expect((await failure(createProduct(f, "SNK-CHIPS"))).code).toBe(Code.AlreadyExists);
    expect((await failure(products(f.tokens.viewer).getProduct({ sku: "NOPE" }))).code).toBe(Code.NotFound);
  });

  it("bad input is InvalidArgument naming the field", async () => {
    const base = { sku: "OK-1", name: "N", category: "c", priceMinor: 1n, currency: "EUR", taxRateBasisPoints: 0, imageUrls: [], active: true, description: "" };
    const cases: [() => Promise<unknown>, string][] = [
      [() => products(f.tokens.admin).createProduct({}), "product"],
      [() => products(f.tokens.admin).createProduct({ product: { ...base, sku: "bad sku" } }), "product.sku"],
      [() => products(f.tokens.admin).createProduct({ product: { ...base, name: "" } }), "product.name"],
      [() => products(f.tokens.admin).createProduct({ product: { ...base, priceMinor: -1n } }), "product.price_minor"],
      [() => products(f.tokens.admin).createProduct({ product: { ...base, currency: "euro" } }), "product.currency"],
      [() => products(f.tokens.admin).createProduct({ product: { ...base, taxRateBasisPoints: 10001 } }), "product.tax_rate_basis_points"],
      [() => products(f.tokens.admin).createProduct({ product: { ...base, imageUrls: ["ftp://x/y.png"] } }), "product.image_urls[0]"],
      [() => products(f.tokens.admin).updateProduct({ sku: "SNK-CHIPS", currency: "eu" }), "currency"],
      [() => products(f.tokens.viewer).listProducts({ pageSize: 501 }), "page_size"],
      [() => products(f.tokens.viewer).listProducts({ minPriceMinor: 500n, maxPriceMinor: 100n }), "max_price_minor"],
      [() => products(f.tokens.viewer).listProducts({ pageToken: "forged" }), "page_token"],
    ];
    for (const [call, field] of cases) {
      const err = await failure(call());
      expect(err.code, field).toBe(Code.InvalidArgument);
      expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe(field);
    }
  });
});

describe("search", () => {
  const search = async (query: string, extra: { category?: string } = {}) =>
    (await products(f.tokens.viewer).listProducts({ query, ...extra })).products.map((p) => p.sku);

  it("finds by word with stemming, ranking name matches above description matches", async () => {
    expect(await search("rose")).toEqual(["FLW-ROSE-RED"]);
    const chocolate = await search("chocolate");
    expect(chocolate[0]).toBe("SNK-CHOC-DARK");
    expect(chocolate).toContain("MRC-MUG");
    expect(chocolate).not.toContain("SNK-OLD");
  });

  it("forgives typos", async () => {
    expect(await search("chocolte")).toContain("SNK-CHOC-DARK");
    expect(await search("bouqet")).toEqual(["FLW-TULIP"]);
    expect(await search("potatoe chps")).toEqual(["SNK-CHIPS"]);
  });

  it("combines with filters and pages by relevance", async () => {
    expect(await search("chocolate", { category: "Merchandise" })).toEqual(["MRC-MUG"]);
    const first = await products(f.tokens.viewer).listProducts({ query: "chocolate", pageSize: 1 });
    expect(first.totalSize).toBe(2);
    const second = await products(f.tokens.viewer).listProducts({ query: "chocolate", pageSize: 1, pageToken: first.nextPageToken });
    expect([...first.products, ...second.products].map((p) => p.sku)).toEqual(["SNK-CHOC-DARK", "MRC-MUG"]);
    expect(second.nextPageToken).toBe("");
  });

  it("browses by SKU with category and price filters", async () => {
    const { products: flowers } = await products(f.tokens.viewer).listProducts({ category: "flowers", maxPriceMinor: 2000n });
    expect(flowers.map((p) => p.sku)).toEqual(["FLW-TULIP"]);
    const all: string[] = [];
    let pageToken = "";
    do {
      const page = await products(f.tokens.viewer).listProducts({ pageSize: 2, pageToken });
      all.push(...page.products.map((p) => p.sku));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(all).toEqual([...all].sort());
    expect(all).not.toContain("SNK-OLD");
  });
});

// npm start's demo catalog: the products ai's sales-history generator models are there at the
// generator's list prices, with stock at every simulated kiosk, so the seeded history, ai's
// forecasts and the simulated fleet's live sales (packages/kiosk-sdk/src/selling.ts) are about
// the same SKUs at the same prices. Seeding again adds nothing.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, inject, it } from "vitest";
import { createDatabase } from "@adminkiosk/devstack";
import { createLogger, createPool } from "@adminkiosk/runtime";
import { defaultProducts } from "../../ai/src/generator.js";

const script = fileURLToPath(new URL("../src/seed-demo.ts", import.meta.url));
const seed = (databaseUrl: string) => {
  const r = spawnSync(process.execPath, ["--import", "tsx", script], { env: { ...process.env, DATABASE_URL: databaseUrl, SIM_KIOSKS: "3" }, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { products: number; stock: number; event: boolean };
};

it("seeds the generator's products at its list prices, stocked at each simulated kiosk, once", async () => {
  const databaseUrl = await createDatabase(inject("infra").databaseUrl, "catalog_seed");
  expect(seed(databaseUrl)).toEqual({ products: 7, stock: 3 * 7, event: true });
  expect(seed(databaseUrl)).toEqual({ products: 0, stock: 0, event: false });
  const pool = createPool(databaseUrl, "catalog", createLogger("catalog-seed-test", "warn"), 1);
  try {
    const { rows } = await pool.query<{ sku: string; price_minor: string; active: boolean; kiosks: number }>(
      "SELECT p.sku, p.price_minor::text AS price_minor, p.active, count(s.kiosk_id)::int AS kiosks FROM products p LEFT JOIN stock s ON s.sku = p.sku GROUP BY 1, 2, 3",
    );
    const bySku = new Map(rows.map((r) => [r.sku, r]));
    for (const p of defaultProducts) {
      expect(bySku.get(p.sku), p.sku).toMatchObject({ price_minor: String(p.listPriceMinor), active: true, kiosks: 3 });
    }
  } finally {
    await pool.end();
  }
});

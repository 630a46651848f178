// A small demo catalog for `npm start` (the dev launcher runs it at every start; never
// deployed): a few products, stock for the simulated kiosks sim-0001… and one event with
// a seat map. Descriptions say it in Spanish too (ai's product search reads both languages).
// Idempotent: what exists already is left as it is. Prints one JSON line.
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { EventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { ConfigError, createLogger, createPool, inTransaction, loadConfig, migrate, url } from "@adminkiosk/runtime";
import { z } from "zod";
import { publishStockLevels } from "./events.js";
import { toStockLevel, type StockRow } from "./inventory.js";
import { products } from "./products.js";
import { events, requireNewEvent } from "./seating.js";

const demoProducts = [
  { sku: "SNK-CHOC-DARK", name: "Dark chocolate bar", description: "70% cocoa, 100 g. Chocolate negro", category: "snacks", price: 349n },
  { sku: "SNK-CHIPS-SALT", name: "Potato chips, salted", description: "150 g bag. Patatas fritas con sal", category: "snacks", price: 299n },
  { sku: "SNK-WATER-05", name: "Still water 0.5 l", description: "Mineral water, still. Agua mineral sin gas, bebida fría", category: "snacks", price: 150n },
  { sku: "FLW-ROSE-RED", name: "Red roses", description: "A dozen long-stemmed red roses. Una docena de rosas rojas", category: "flowers", price: 2499n },
  { sku: "FLW-TULIP-MIX", name: "Tulip bouquet", description: "Ten mixed tulips. Ramo de diez tulipanes", category: "flowers", price: 1599n },
  { sku: "MRC-MUG", name: "Admin Kiosk mug", description: "Ceramic mug, 300 ml. Taza de cerámica", category: "merchandise", price: 1299n },
  { sku: "MRC-TSHIRT", name: "Festival T-shirt", description: "Organic cotton, unisex. Camiseta de algodón orgánico", category: "merchandise", price: 2499n },
];
const demoEventName = "Summer Open Air (demo)";
const by = "seed:npm-start";

async function main() {
  const config = loadConfig({
    DATABASE_URL: url(["postgres:", "postgresql:"]),
    SIM_KIOSKS: z.coerce.number().int().min(0).max(100_000).default(50),
    LOG_LEVEL: z.string().default("warn"),
  });
  const log = createLogger("catalog-seed", config.LOG_LEVEL);
  await migrate(config.DATABASE_URL, "catalog", fileURLToPath(new URL("../migrations", import.meta.url)), log);
  const pool = createPool(config.DATABASE_URL, "catalog", log, 1);
  try {
    const created = await inTransaction(pool, async (tx) => {
      // One seeder at a time (two launchers on one database).
      await tx.query("SELECT pg_advisory_xact_lock(hashtext('catalog:seed-demo'))");
      let newProducts = 0;
      for (const p of demoProducts) {
        const row = await products.insert(tx, p.sku, {
          name: p.name,
          description: p.description,
          category: p.category,
          priceMinor: p.price,
          currency: "EUR",
          taxRateBasisPoints: p.category === "flowers" ? 1200 : 2100,
          imageUrls: [],
          active: true,
        });
        if (row) newProducts++;
      }
      // Stock for each simulated kiosk, only where the kiosk has no record for the SKU yet;
      // a few start at or below their threshold so low stock shows.
      const kiosks = Array.from({ length: config.SIM_KIOSKS }, (_, i) => `sim-${String(i + 1).padStart(4, "0")}`);
      const pairs = kiosks.flatMap((kioskId, k) => demoProducts.map((p, j) => ({ kioskId, sku: p.sku, onHand: ((k * 7 + j * 5) % 23) + 1 })));
      const { rows: stocked } = await tx.query<StockRow>(
        `INSERT INTO stock (kiosk_id, sku, on_hand, low_stock_threshold)
         SELECT k, s, n, 3 FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(k, s, n)
         ON CONFLICT (kiosk_id, sku) DO NOTHING RETURNING kiosk_id, sku, on_hand, reserved, low_stock_threshold, updated_at`,
        [pairs.map((p) => p.kioskId), pairs.map((p) => p.sku), pairs.map((p) => p.onHand)],
      );
      await tx.query(
        `INSERT INTO restocks (kiosk_id, sku, quantity, reason, restocked_by, on_hand_after)
         SELECT k, s, n, 'demo stock', $4, n FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(k, s, n)`,
        [stocked.map((r) => r.kiosk_id), stocked.map((r) => r.sku), stocked.map((r) => r.on_hand), by],
      );
      // Through the outbox (drained by catalog when it runs), like any other change of stock.
      await publishStockLevels(tx, stocked.map(toStockLevel));
      const { rows: existing } = await tx.query("SELECT 1 FROM events WHERE name = $1", [demoEventName]);
      if (existing.length === 0) await events.insert(tx, demoEvent());
      return { products: newProducts, stock: stocked.length, event: existing.length === 0 };
    });
    console.log(JSON.stringify(created));
  } finally {
    await pool.end();
  }
}

/** Four weeks from the first start: stalls (standard) and a balcony (premium). */
function demoEvent() {
  const start = new Date(Date.now() + 28 * 86_400_000);
  start.setUTCHours(18, 0, 0, 0);
  const rows = (count: number, seats: number, tierId: string) =>
    Array.from({ length: count }, (_, r) => ({ rowId: String(r + 1), seats: Array.from({ length: seats }, (_, s) => ({ number: String(s + 1), tierId })) }));
  return requireNewEvent(
    "event",
    create(EventSchema, {
      name: demoEventName,
      venue: "Riverside Stage",
      description: "An evening of live music by the river.",
      startTime: { seconds: BigInt(Math.floor(start.getTime() / 1000)), nanos: 0 },
      active: true,
      priceTiers: [
        { tierId: "standard", name: "Standard", priceMinor: 3500n, currency: "EUR" },
        { tierId: "premium", name: "Premium", priceMinor: 7900n, currency: "EUR" },
      ],
      sections: [
        { sectionId: "STALLS", name: "Stalls", rows: rows(6, 14, "standard") },
        { sectionId: "BALCONY", name: "Balcony", rows: rows(2, 10, "premium") },
      ],
    }),
  );
}

main().catch((err: unknown) => {
  console.error(`catalog seed-demo: ${err instanceof Error && err instanceof ConfigError ? err.message : String(err)}`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});

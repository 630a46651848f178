// Generated sales history for `npm start` (the dev launcher runs it at every start; never
// deployed): ~90 days up to yesterday for the simulated kiosks sim-0001… and the demo
// catalog's snack and merchandise SKUs, so ai has something to train on, and order baskets
// with known bought-together pairs for its recommendations. Cheap on restart:
// it does nothing when generated history exists already. Prints one JSON line, with the
// history's first day (historyStart), from which the simulated kiosks keep selling along
// the same process (packages/kiosk-sdk/src/selling.ts).
import { fileURLToPath } from "node:url";
import { createLogger, createPool, inTransaction, loadConfig, migrate, url } from "@adminkiosk/runtime";
import { z } from "zod";
import { dayOf, dayMs, generateSales, simulatedKioskIds } from "./generator.js";
import { generateBaskets } from "./generator-baskets.js";
import { baskets as basketStore } from "./recommend.js";
import { sales } from "./store.js";

async function main() {
  const config = loadConfig({
    DATABASE_URL: url(["postgres:", "postgresql:"]),
    SIM_KIOSKS: z.coerce.number().int().min(0).max(100_000).default(50),
    AI_SEED_DAYS: z.coerce.number().int().min(0).max(730).default(90),
    LOG_LEVEL: z.string().default("warn"),
  });
  const log = createLogger("ai-seed", config.LOG_LEVEL);
  await migrate(config.DATABASE_URL, "ai", fileURLToPath(new URL("../migrations", import.meta.url)), log, { consumerTables: true });
  const pool = createPool(config.DATABASE_URL, "ai", log, 1);
  try {
    const added = await inTransaction(pool, async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock(hashtext('ai:seed-demo'))");
      const { rows } = await tx.query("SELECT 1 FROM sales_daily WHERE source = 'generated' LIMIT 1");
      if (rows.length > 0 || config.SIM_KIOSKS === 0 || config.AI_SEED_DAYS === 0) return 0;
      const yesterday = dayOf(Math.floor(Date.now() / dayMs) - 1);
      const { sales: generated } = generateSales({ seed: 1, kiosks: config.SIM_KIOSKS, days: config.AI_SEED_DAYS, endDay: yesterday });
      return sales.insertGenerated(tx, generated);
    });
    // Order baskets with known pairs (generator-baskets.ts), so recommendations have something to show.
    const baskets = await inTransaction(pool, async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock(hashtext('ai:seed-demo-baskets'))");
      const { rows } = await tx.query("SELECT 1 FROM baskets WHERE source = 'generated' LIMIT 1");
      if (rows.length > 0 || config.SIM_KIOSKS === 0 || config.AI_SEED_DAYS === 0) return 0;
      const generated = generateBaskets({ seed: 1, kioskIds: simulatedKioskIds(config.SIM_KIOSKS), basketsPerKiosk: 120, end: new Date(), days: config.AI_SEED_DAYS, prefix: "demo" });
      let recorded = 0;
      for (let i = 0; i < generated.length; i += 2000) recorded += await basketStore.record(tx, generated.slice(i, i + 2000), "generated");
      return recorded;
    });
    // The generated history's first day: the selling simulator carries on the same process from it (its trend starts there).
    const { rows: first } = await pool.query<{ day: string | null }>("SELECT to_char(min(day), 'YYYY-MM-DD') AS day FROM sales_daily WHERE source = 'generated'");
    console.log(JSON.stringify({ rows: added, baskets, historyStart: first[0]?.day ?? null }));
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});

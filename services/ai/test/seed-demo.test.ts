// npm start's seeding of ai's sales history and order baskets: ~90 days for the simulated
// kiosks on the first start, nothing on the next (restarts stay cheap).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import { createDatabase } from "@adminkiosk/devstack";
import { createLogger, createPool } from "@adminkiosk/runtime";

const script = fileURLToPath(new URL("../src/seed-demo.ts", import.meta.url));
const seed = (databaseUrl: string) => {
  const r = spawnSync(process.execPath, ["--import", "tsx", script], { env: { ...process.env, DATABASE_URL: databaseUrl, SIM_KIOSKS: "3" }, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { rows: number; baskets: number; historyStart: string | null };
};

describe("seed-demo", () => {
  it("adds 90 days for each simulated kiosk × demo SKU once, then nothing", async () => {
    const databaseUrl = await createDatabase(inject("infra").databaseUrl, "ai_seed");
    const yesterday = () => new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const before = yesterday();
    const first = seed(databaseUrl);
    expect(first).toMatchObject({ rows: 3 * 4 * 90, baskets: 3 * 120 });
    // The history's first day, for the selling simulator to carry on from (also when nothing was added).
    expect(seed(databaseUrl)).toEqual({ rows: 0, baskets: 0, historyStart: first.historyStart });
    const pool = createPool(databaseUrl, "ai", createLogger("ai-seed-test", "warn"), 1);
    try {
      const { rows } = await pool.query<{ kiosks: number; first: string; last: string }>(
        "SELECT count(DISTINCT kiosk_id)::int AS kiosks, to_char(min(day), 'YYYY-MM-DD') AS first, to_char(max(day), 'YYYY-MM-DD') AS last FROM sales_daily",
      );
      expect(rows[0]!.kiosks).toBe(3);
      expect(first.historyStart).toBe(rows[0]!.first);
      // Up to yesterday (the day the script ran in, which a UTC midnight could move on).
      expect([before, yesterday()]).toContain(rows[0]!.last);
      // The baskets' known pairs are there for the recommendations: roses with chocolate.
      const { rows: pairs } = await pool.query<{ other: string }>(
        "SELECT other FROM basket_pairs WHERE kiosk_id = '' AND sku = 'FLW-ROSE-RED' ORDER BY baskets DESC LIMIT 1",
      );
      expect(pairs[0]?.other).toBe("SNK-CHOC-DARK");
    } finally {
      await pool.end();
    }
  });
});

// Importing sales history on a real ai process: a file with bad lines imports nothing and
// names each line and field; a good file streamed by `npm run ai:import` lands in the daily
// history (sales per day, stock-out days flagged), importing it again adds nothing twice,
// and Retrain trains on it: the imported kiosk × SKU gets a forecast.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ForecastService, ModelService } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { HistoryFormat, HistoryService } from "@adminkiosk/proto/adminkiosk/ai/v1/history_pb";
import { repoRoot } from "@adminkiosk/devstack";
import { adminEmail, adminPassword, failure } from "../../../test/support/auth.js";
import { dayMs, dayOf, generateSales } from "../src/generator.js";
import { startAi, type AiFixture } from "./fixture.js";

let f: AiFixture;
beforeAll(async () => {
  f = await startAi();
});
afterAll(async () => {
  await f?.stop();
});

const encoder = new TextEncoder();
/** The file in pieces of `size` bytes (lines split across messages). */
async function* chunks(format: HistoryFormat, text: string, size: number) {
  const bytes = encoder.encode(text);
  yield { format, source: "test" };
  for (let i = 0; i < bytes.length; i += size) yield { data: bytes.subarray(i, i + size) };
}

/** This file's kiosks' rows (ai's orders consumer also records other test files' sales from the shared NATS). */
const rowCount = async () => Number((await f.pool.query<{ n: string }>("SELECT count(*) AS n FROM sales_daily WHERE kiosk_id LIKE 'imp-%'")).rows[0]!.n);

/** `npm run ai:import -- FILE` as an operator runs it (the script package.json names). */
function importCli(file: string, credentials: Record<string, string> = { AI_IMPORT_TOKEN: f.tokens.admin }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["run", "--silent", "ai:import", "--", file], {
      cwd: repoRoot,
      env: { ...process.env, AI_URL: f.ai.url, ...credentials },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe("sales-history import", () => {
  it("imports nothing from a file with bad lines, and names each bad line and field", async () => {
    const history = f.as(HistoryService, f.tokens.admin);
    const csv = [
      "kiosk_id,sku,time,quantity,unit_price_minor",
      "imp-bad,SNK-WATER-05,2026-01-05T10:15:00Z,2,150",
      "imp-bad,SNK-WATER-05,2026-01-05T11:15:00+01:00,1,150",
      "imp-bad,SNK-WATER-05,2026-01-05T12:00:00Z,-2,150",
      "",
      "imp-bad,SNK-WATER-05,yesterday,1,150",
      'imp-bad,"SNK WATER",2026-01-06,1,150',
      "imp-bad,SNK-WATER-05,2026-02-30,1,150",
    ].join("\r\n");
    // 7-byte messages: lines arrive split across messages.
    const err = await failure(history.importHistory(chunks(HistoryFormat.CSV, csv, 7)));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toMatch(/^data: 4 bad lines, nothing imported/);
    expect(err.rawMessage).toContain("line 4: quantity: must be a whole number from 1 to 1,000,000");
    expect(err.rawMessage).toContain("line 6: time: must be an RFC 3339 time");
    expect(err.rawMessage).toContain("line 7: sku:");
    expect(err.rawMessage).toContain("line 8: time:");
    expect(await rowCount()).toBe(0);

    const jsonl = [
      JSON.stringify({ kiosk_id: "imp-bad", sku: "SNK-WATER-05", time: "2026-01-05T10:15:00Z", quantity: 2, unit_price_minor: 150 }),
      JSON.stringify({ kiosk_id: "imp-bad", sku: "SNK-WATER-05", time: "2026-01-05T10:15:00Z", qty: 2, unit_price_minor: 150 }),
      JSON.stringify({ kind: "stockout", kiosk_id: "imp-bad", sku: "SNK-WATER-05", start: "2026-01-05T12:00:00Z", end: "2026-01-05T11:00:00Z" }),
    ].join("\n");
    const err2 = await failure(history.importHistory(chunks(HistoryFormat.JSONL, jsonl, 1 << 20)));
    expect(err2.code).toBe(Code.InvalidArgument);
    expect(err2.rawMessage).toContain("line 2: qty: is not a known field");
    expect(err2.rawMessage).toContain("line 3: end: must be after start");
    expect(await rowCount()).toBe(0);

    // A header that cannot be read, no format, no rows.
    const err3 = await failure(history.importHistory(chunks(HistoryFormat.CSV, "kiosk,sku,time,quantity,unit_price_minor\nk,s,2026-01-05,1,1\n", 100)));
    expect(err3.rawMessage).toContain('line 1: header: unknown column "kiosk"');
    expect((await failure(history.importHistory(chunks(HistoryFormat.UNSPECIFIED, "", 1)))).rawMessage).toMatch(/^format:/);
    expect((await failure(history.importHistory(chunks(HistoryFormat.CSV, "kiosk_id,sku,time,quantity,unit_price_minor\n", 100)))).rawMessage).toMatch(/^data: has no rows/);
    // Admins only.
    expect((await failure(f.as(HistoryService, f.tokens.viewer).importHistory(chunks(HistoryFormat.CSV, csv, 100)))).code).toBe(Code.PermissionDenied);
  });

  it("imports a good file with `npm run ai:import`, idempotently, and Retrain forecasts the imported kiosks", async () => {
    const yesterday = dayOf(Math.floor(Date.now() / dayMs) - 1);
    const { sales } = generateSales({ seed: 11, kiosks: ["imp-0001", "imp-0002", "imp-0003"], days: 63, endDay: yesterday });
    // One row per kiosk × SKU × hour with sales (a POS export's receipts, summed by hour), and
    // the stock-out days as intervals from the hour the shelf ran empty to midnight.
    const lines = ["kind,kiosk_id,sku,time,quantity,unit_price_minor,start,end"];
    for (const s of sales) {
      s.hourly.forEach((q, h) => {
        if (q > 0) lines.push(`sale,${s.kioskId},${s.sku},${s.day}T${String(h).padStart(2, "0")}:20:00Z,${q},${s.unitPriceMinor},,`);
      });
      if (s.stockout) {
        const next = dayOf(Math.floor(Date.parse(`${s.day}T00:00:00Z`) / dayMs) + 1);
        lines.push(`stockout,${s.kioskId},${s.sku},,,,${s.day}T18:00:00Z,${next}T00:00:00Z`);
      }
    }
    const file = join(mkdtempSync(join(inject("infra").tmpDir, "import-")), "history.csv");
    writeFileSync(file, lines.join("\n") + "\n");

    const first = await importCli(file);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const summary = JSON.parse(first.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
    const soldDays = sales.filter((s) => s.quantity > 0 || s.stockout).length;
    expect(summary).toMatchObject({ kiosks: 3, skus: 4, daysReplaced: 0, lines: lines.length, stockoutRows: sales.filter((s) => s.stockout).length });
    expect(summary["days"]).toBeGreaterThanOrEqual(soldDays);

    // Every generated day is in the history as sold (stock-out days flagged, so not trained on).
    const stored = await f.pool.query<{ kiosk_id: string; sku: string; day: string; quantity: string; unit_price_minor: string; stockout: boolean; hourly: number[] | null }>(
      "SELECT kiosk_id, sku, to_char(day, 'YYYY-MM-DD') AS day, quantity, unit_price_minor, stockout, hourly FROM sales_daily WHERE kiosk_id LIKE 'imp-0%'",
    );
    const byKey = new Map(stored.rows.map((r) => [`${r.kiosk_id}|${r.sku}|${r.day}`, r]));
    for (const s of sales) {
      const row = byKey.get(`${s.kioskId}|${s.sku}|${s.day}`);
      if (s.quantity === 0 && !s.stockout) continue;
      expect(row, `${s.kioskId} ${s.sku} ${s.day}`).toBeDefined();
      expect(Number(row!.quantity)).toBe(s.quantity);
      expect(row!.stockout).toBe(s.stockout);
      // The sales' UTC hours, as the hourly model reads them.
      expect(row!.hourly).toEqual(s.hourly);
      if (s.quantity > 0) expect(Number(row!.unit_price_minor)).toBe(s.unitPriceMinor);
    }
    const total = sales.reduce((n, s) => n + s.quantity, 0);
    const sum = async () => Number((await f.pool.query<{ n: string }>("SELECT sum(quantity) AS n FROM sales_daily WHERE kiosk_id LIKE 'imp-0%'")).rows[0]!.n);
    expect(await sum()).toBe(total);

    // The same file again (signing in with an admin's email and password this time): every
    // day replaced by itself, nothing added twice.
    const again = await importCli(file, { AUTH_URL: f.auth.service.url, ADMIN_EMAIL: adminEmail, ADMIN_PASSWORD: adminPassword });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout.trim().split("\n").at(-1)!)).toMatchObject({ days: summary["days"], daysReplaced: summary["days"] });
    expect(await sum()).toBe(total);

    // A corrected file replaces what an earlier import said about its days; a sale given by
    // date alone leaves the day's hours unknown.
    const history = f.as(HistoryService, f.tokens.admin);
    const day = sales[5]!.day;
    const row = (kioskId: string) => f.pool.query<{ quantity: string; hourly: number[] | null }>("SELECT quantity, hourly FROM sales_daily WHERE kiosk_id = $1 AND day = $2::date", [kioskId, day]);
    const byDate = JSON.stringify({ kiosk_id: "imp-day", sku: "SNK-MUG", time: day, quantity: 3, unit_price_minor: "1299" });
    await history.importHistory(chunks(HistoryFormat.JSONL, byDate, 1 << 20));
    expect((await row("imp-day")).rows).toEqual([{ quantity: "3", hourly: null }]);
    const corrected = JSON.stringify({ kiosk_id: "imp-day", sku: "SNK-MUG", time: `${day}T14:05:00+02:00`, quantity: 5, unit_price_minor: 1299 });
    const replaced = await history.importHistory(chunks(HistoryFormat.JSONL, corrected, 1 << 20));
    expect(replaced).toMatchObject({ days: 1n, daysReplaced: 1n });
    expect((await row("imp-day")).rows).toEqual([{ quantity: "5", hourly: Array.from({ length: 24 }, (_, h) => (h === 12 ? 5 : 0)) }]);

    const trained = await f.as(ModelService, f.tokens.admin).retrain({});
    expect(trained.promoted).toBe(true);
    await expect
      .poll(async () => (await f.as(ForecastService, f.tokens.viewer).getForecast({ kioskId: "imp-0002", sku: "SNK-CHIPS-SALT", horizonDays: 7 }).catch(() => undefined))?.points.length, {
        timeout: 30_000,
        interval: 250,
      })
      .toBe(7);
  });
});

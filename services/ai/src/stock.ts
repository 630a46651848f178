// Stock levels and stock-out risks. catalog's stock is read as ai (its service token,
// InventoryService.ListStock) every AI_STOCK_REFRESH_MS into stock_levels; each pass (one
// replica at a time, under an advisory lock) re-evaluates every kiosk × product against the
// serving model and publishes ai.stockout.<kiosk>.predicted through the outbox when the
// probability of running out before the next visit crosses the alert threshold, and
// ai.stockout.<kiosk>.cleared when it falls back below. A pair found sold out marks its
// day as a stock-out in ai's sales history (censored sales, left out of training).
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import { StockoutRiskSchema, type StockoutRisk } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { StockoutPredictedEventSchema } from "@adminkiosk/proto/adminkiosk/ai/v1/events_pb";
import type { InventoryService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { aiSubjects, callOptions, enqueueEvent, inTransaction, type Logger, type Pool } from "@adminkiosk/runtime";
import type { Lifecycle } from "./lifecycle.js";
import { pairKey } from "./model.js";
import type { ServedModel } from "./onnx.js";
import { dayMs, demandPath, stockoutRisk, type DemandPath, type Risk } from "./risk.js";

export interface StockRow {
  kioskId: string;
  sku: string;
  available: number;
  onHand?: number;
  stockTime: Date | null;
}

export interface Evaluated {
  row: StockRow;
  path: DemandPath;
}

/** Each kiosk × product the serving model knows, with its demand path from `nowMs`. */
export async function evaluateStock(served: ServedModel, rows: StockRow[], nowMs: number): Promise<Evaluated[]> {
  const index = new Map(served.layout.pairs.map((p, i) => [p, i]));
  const known = rows.filter((r) => index.has(pairKey(r.kioskId, r.sku)));
  const today = Math.floor(nowMs / dayMs);
  const days = Array.from({ length: 16 }, (_, i) => today + i);
  const pairIdx: number[] = [];
  const dayArg: number[] = [];
  const prices: number[] = [];
  for (const r of known) {
    const i = index.get(pairKey(r.kioskId, r.sku))!;
    for (const d of days) {
      pairIdx.push(i);
      dayArg.push(d);
      prices.push(served.layout.lastPrice[i]!);
    }
  }
  const preds = pairIdx.length > 0 ? await served.predict(pairIdx, dayArg, prices) : [];
  return known.map((row, k) => ({
    row,
    path: demandPath(nowMs, served.layout.alpha, (day) => preds[k * days.length + Math.min(days.length - 1, Math.max(0, day - today))]!.p50),
  }));
}

export function toRisk(e: Evaluated, r: Risk, modelVersion: number): StockoutRisk {
  const late = Number.isNaN(r.lateHours) ? 0 : r.lateHours;
  return create(StockoutRiskSchema, {
    kioskId: e.row.kioskId,
    sku: e.row.sku,
    available: BigInt(e.row.available),
    stockoutProbability: r.probability,
    stockoutExpected: r.expected,
    stockoutHours: r.expected ? r.hours : 0,
    stockoutEarlyHours: Number.isNaN(r.earlyHours) ? 0 : r.earlyHours,
    stockoutLateHours: r.expected ? late : 0,
    demandToVisit: r.demandToVisit,
    stockTime: e.row.stockTime ? timestampFromDate(e.row.stockTime) : undefined,
    modelVersion: BigInt(modelVersion),
  });
}

export const stockLevels = {
  async list(pool: Pool, kioskId?: string): Promise<StockRow[]> {
    const { rows } = await pool.query<{ kiosk_id: string; sku: string; available: string; stock_time: Date | null }>(
      `SELECT kiosk_id, sku, available, stock_time FROM stock_levels WHERE ($1::text IS NULL OR kiosk_id = $1) ORDER BY kiosk_id, sku`,
      [kioskId ?? null],
    );
    return rows.map((r) => ({ kioskId: r.kiosk_id, sku: r.sku, available: Number(r.available), stockTime: r.stock_time }));
  },
};

export interface StockSweeper {
  /** One pass now (read catalog's stock, re-evaluate, publish crossings). */
  pass(): Promise<void>;
  stop(): Promise<void>;
}

export interface StockSweeperOptions {
  pool: Pool;
  log: Logger;
  lifecycle: Lifecycle;
  catalog: Client<typeof InventoryService>;
  intervalMs: number;
  visitHours: number;
  threshold: number;
  now?: () => number;
}

export function startStockSweeper(o: StockSweeperOptions): StockSweeper {
  const now = o.now ?? Date.now;
  let running: Promise<void> = Promise.resolve();
  let failures = 0;

  async function readCatalog(): Promise<StockRow[]> {
    const all: StockRow[] = [];
    let pageToken = "";
    do {
      const page = await o.catalog.listStock({ pageSize: 1000, pageToken }, callOptions(undefined, { timeoutMs: 10_000 }));
      for (const s of page.stock)
        all.push({ kioskId: s.kioskId, sku: s.sku, available: Number(s.available), onHand: Number(s.onHand), stockTime: s.updateTime ? timestampDate(s.updateTime) : null });
      pageToken = page.nextPageToken;
    } while (pageToken);
    return all;
  }

  async function passNow() {
    const rows = await readCatalog();
    const served = o.lifecycle.served();
    const evaluated = served ? await evaluateStock(served, rows, now()) : [];
    await inTransaction(o.pool, async (tx) => {
      // One replica's pass at a time; another replica skips its turn.
      const { rows: got } = await tx.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock(hashtext('ai:stock')) AS ok");
      if (!got[0]!.ok) return;
      for (let i = 0; i < rows.length; i += 1000) {
        const chunk = rows.slice(i, i + 1000);
        await tx.query(
          `INSERT INTO stock_levels (kiosk_id, sku, on_hand, available, stock_time, fetched_at)
           SELECT k, s, h, a, t, now() FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::bigint[]) AS u(k, s, a, t, h)
           ON CONFLICT (kiosk_id, sku) DO UPDATE SET on_hand = EXCLUDED.on_hand, available = EXCLUDED.available, stock_time = EXCLUDED.stock_time, fetched_at = now()`,
          [chunk.map((r) => r.kioskId), chunk.map((r) => r.sku), chunk.map((r) => r.available), chunk.map((r) => r.stockTime?.toISOString() ?? null), chunk.map((r) => r.onHand ?? r.available)],
        );
      }
      // A kiosk × product sold out now: today's sales are censored (not its demand), as the
      // generator's stock-out days are — training and scoring leave the day out. Only pairs
      // that have sold there before (their last price carries the day's row).
      const out = rows.filter((r) => r.available <= 0);
      if (out.length > 0)
        await tx.query(
          `INSERT INTO sales_daily (kiosk_id, sku, day, quantity, unit_price_minor, stockout, source, hourly)
           SELECT u.k, u.s, $3::date, 0, last.unit_price_minor, true, 'orders', array_fill(0, ARRAY[24])
           FROM unnest($1::text[], $2::text[]) AS u(k, s)
           CROSS JOIN LATERAL (SELECT unit_price_minor FROM sales_daily d WHERE d.kiosk_id = u.k AND d.sku = u.s ORDER BY day DESC LIMIT 1) AS last
           ON CONFLICT (kiosk_id, sku, day) DO UPDATE SET stockout = true WHERE NOT sales_daily.stockout`,
          [out.map((r) => r.kioskId), out.map((r) => r.sku), new Date(now()).toISOString().slice(0, 10)],
        );
      if (!served) return;
      const { rows: firing } = await tx.query<{ kiosk_id: string; sku: string }>("SELECT kiosk_id, sku FROM stockout_alerts WHERE firing");
      const isFiring = new Set(firing.map((r) => pairKey(r.kiosk_id, r.sku)));
      for (const e of evaluated) {
        const risk = stockoutRisk(e.path, e.row.available, o.visitHours);
        const key = pairKey(e.row.kioskId, e.row.sku);
        const above = risk.probability >= o.threshold;
        if (above === isFiring.has(key)) continue;
        await tx.query(
          `INSERT INTO stockout_alerts (kiosk_id, sku, firing, probability) VALUES ($1, $2, $3, $4)
           ON CONFLICT (kiosk_id, sku) DO UPDATE SET firing = EXCLUDED.firing, probability = EXCLUDED.probability, changed_at = now()`,
          [e.row.kioskId, e.row.sku, above, risk.probability],
        );
        // Predicted on the way up, cleared on the way down (notifications resolves its alert).
        await enqueueEvent(
          tx,
          above ? aiSubjects.stockoutPredicted(e.row.kioskId) : aiSubjects.stockoutCleared(e.row.kioskId),
          StockoutPredictedEventSchema,
          create(StockoutPredictedEventSchema, { risk: toRisk(e, risk, served.version), threshold: o.threshold, visitIntervalHours: o.visitHours, time: timestampNow() }),
        );
      }
    });
  }

  const pass = () => {
    const run = running.then(passNow);
    running = run.then(
      () => {
        if (failures > 0) o.log.info("reading catalog's stock works again");
        failures = 0;
      },
      (err: unknown) => {
        if (failures++ === 0) o.log.warn({ err }, "the stock pass failed; retrying every interval");
      },
    );
    return run;
  };
  const timer = setInterval(() => void pass().catch(() => {}), o.intervalMs);
  timer.unref();
  void pass().catch(() => {});
  return {
    pass,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

// ai's tables: the sales history it learns from and the model registry.
import type { Pool, PoolClient } from "@adminkiosk/runtime";
import { dayIndex, dayOf, type DailySale } from "./generator.js";
import { hoursPerWeek, type HistoryRow, type HourCounts, type Layout, type Metrics } from "./model.js";

type Db = Pool | PoolClient;

export const sales = {
  /** All history (the models train on every kiosk × SKU the service has seen). */
  async all(db: Db): Promise<HistoryRow[]> {
    const { rows } = await db.query<{ kiosk_id: string; sku: string; day: string; quantity: string; unit_price_minor: string; stockout: boolean }>(
      "SELECT kiosk_id, sku, to_char(day, 'YYYY-MM-DD') AS day, quantity, unit_price_minor, stockout FROM sales_daily ORDER BY day, kiosk_id, sku",
    );
    return rows.map((r) => ({ kioskId: r.kiosk_id, sku: r.sku, day: dayIndex(r.day), quantity: Number(r.quantity), unitPriceMinor: Number(r.unit_price_minor), stockout: r.stockout }));
  },
  /** The first and last day with sales history. */
  async range(db: Db): Promise<{ first: number; last: number } | undefined> {
    const { rows } = await db.query<{ first: string | null; last: string | null }>(
      "SELECT to_char(min(day), 'YYYY-MM-DD') AS first, to_char(max(day), 'YYYY-MM-DD') AS last FROM sales_daily",
    );
    return rows[0]?.first && rows[0].last ? { first: dayIndex(rows[0].first), last: dayIndex(rows[0].last) } : undefined;
  },
  async count(db: Db): Promise<number> {
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM sales_daily");
    return Number(rows[0]!.n);
  },
  /** A pair's days from `fromDay` on (for the seasonal-naive column and the actuals), with their hours when known. */
  async recent(db: Db, kioskId: string, sku: string, fromDay: number): Promise<Map<number, number>> {
    return new Map([...(await sales.recentDays(db, kioskId, sku, fromDay))].map(([d, r]) => [d, r.quantity]));
  },
  async recentDays(db: Db, kioskId: string, sku: string, fromDay: number): Promise<Map<number, { quantity: number; hourly: number[] | null }>> {
    const { rows } = await db.query<{ day: string; quantity: string; hourly: number[] | null }>(
      "SELECT to_char(day, 'YYYY-MM-DD') AS day, quantity, hourly FROM sales_daily WHERE kiosk_id = $1 AND sku = $2 AND day >= $3::date",
      [kioskId, sku, dayOf(fromDay)],
    );
    return new Map(rows.map((r) => [dayIndex(r.day), { quantity: Number(r.quantity), hourly: r.hourly }]));
  },
  /** The days fromDay … toDay (inclusive) with their hours (for backtests and the hourly holdout). */
  async window(db: Db, fromDay: number, toDay: number): Promise<HistoryRow[]> {
    const { rows } = await db.query<{ kiosk_id: string; sku: string; day: string; quantity: string; unit_price_minor: string; stockout: boolean; hourly: number[] | null }>(
      `SELECT kiosk_id, sku, to_char(day, 'YYYY-MM-DD') AS day, quantity, unit_price_minor, stockout, hourly FROM sales_daily
       WHERE day BETWEEN $1::date AND $2::date ORDER BY day, kiosk_id, sku`,
      [dayOf(fromDay), dayOf(toDay)],
    );
    return rows.map((r) => ({
      kioskId: r.kiosk_id,
      sku: r.sku,
      day: dayIndex(r.day),
      quantity: Number(r.quantity),
      unitPriceMinor: Number(r.unit_price_minor),
      stockout: r.stockout,
      hourly: r.hourly,
    }));
  },
  /** Units per kiosk × weekday × UTC hour before `beforeDay` (stock-out days left out), summed in the database. */
  async hourCounts(db: Db, beforeDay: number): Promise<HourCounts> {
    const { rows } = await db.query<{ kiosk_id: string; slot: number; units: number }>(
      `SELECT kiosk_id, (extract(dow FROM day)::int * 24 + u.h::int - 1) AS slot, sum(u.q)::float8 AS units
       FROM sales_daily, unnest(hourly) WITH ORDINALITY AS u(q, h)
       WHERE hourly IS NOT NULL AND NOT stockout AND day < $1::date GROUP BY 1, 2`,
      [dayOf(beforeDay)],
    );
    const out = new Map<string, Float64Array>();
    for (const r of rows) {
      let c = out.get(r.kiosk_id);
      if (!c) out.set(r.kiosk_id, (c = new Float64Array(hoursPerWeek)));
      c[r.slot] = r.units;
    }
    return out;
  },
  /** Generated history; days that exist already are left as they are. Returns rows added. */
  async insertGenerated(db: Db, rows: DailySale[]): Promise<number> {
    let added = 0;
    for (let i = 0; i < rows.length; i += 1000) {
      const chunk = rows.slice(i, i + 1000);
      const r = await db.query(
        `INSERT INTO sales_daily (kiosk_id, sku, day, quantity, unit_price_minor, stockout, source, hourly)
         SELECT k, s, d, q, p, o, 'generated', string_to_array(h, ',')::integer[]
         FROM unnest($1::text[], $2::text[], $3::date[], $4::bigint[], $5::bigint[], $6::boolean[], $7::text[]) AS u(k, s, d, q, p, o, h)
         ON CONFLICT DO NOTHING`,
        [
          chunk.map((s) => s.kioskId),
          chunk.map((s) => s.sku),
          chunk.map((s) => s.day),
          chunk.map((s) => s.quantity),
          chunk.map((s) => s.unitPriceMinor),
          chunk.map((s) => s.stockout),
          chunk.map((s) => s.hourly.join(",")),
        ],
      );
      added += r.rowCount ?? 0;
    }
    return added;
  },
  /** A completed order's lines, added to their days and UTC hour. */
  async addSale(db: Db, kioskId: string, sku: string, day: string, quantity: number, unitPriceMinor: number, hour?: number): Promise<void> {
    // A day whose hours were never known (imported by day) stays without hours.
    await db.query(
      `INSERT INTO sales_daily (kiosk_id, sku, day, quantity, unit_price_minor, source, hourly)
       VALUES ($1, $2, $3::date, $4, $5, 'orders', CASE WHEN $6::int IS NULL THEN NULL ELSE array_fill(0, ARRAY[24]) END)
       ON CONFLICT (kiosk_id, sku, day) DO UPDATE SET quantity = sales_daily.quantity + EXCLUDED.quantity, unit_price_minor = EXCLUDED.unit_price_minor`,
      [kioskId, sku, day, quantity, unitPriceMinor, hour ?? null],
    );
    if (hour !== undefined) {
      await db.query("UPDATE sales_daily SET hourly[$4::int + 1] = hourly[$4::int + 1] + $5 WHERE kiosk_id = $1 AND sku = $2 AND day = $3::date AND hourly IS NOT NULL", [
        kioskId,
        sku,
        day,
        hour,
        quantity,
      ]);
    }
  },
};

export type ModelStatusName = "candidate" | "serving" | "retired" | "rejected";

export interface ModelMetrics {
  model: Metrics;
  baseline: Metrics;
  /** The version serving when this one was evaluated, scored on the same window. */
  serving: (Metrics & { version: number }) | null;
  /** Per UTC hour on the same held-out days (those with known hours); absent in versions from before hourly forecasts. */
  hourly?: { model: Metrics; baseline: Metrics };
}

export interface ModelRow {
  version: number;
  kind: string;
  status: ModelStatusName;
  train_from: string;
  train_to: string;
  holdout_from: string;
  holdout_to: string;
  features: string[];
  layout: Layout;
  metrics: ModelMetrics;
  onnx_bytes: number;
  training_rows: number;
  training_seconds: number;
  gate_reason: string;
  created_at: Date;
  created_by: string;
  promoted_at: Date | null;
}

const columns = `version::int AS version, kind, status, to_char(train_from, 'YYYY-MM-DD') AS train_from, to_char(train_to, 'YYYY-MM-DD') AS train_to,
  to_char(holdout_from, 'YYYY-MM-DD') AS holdout_from, to_char(holdout_to, 'YYYY-MM-DD') AS holdout_to, features, layout, metrics,
  octet_length(onnx) AS onnx_bytes, training_rows::int AS training_rows, training_seconds, gate_reason, created_at, created_by, promoted_at`;

export interface NewModel {
  kind: string;
  status: ModelStatusName;
  trainFrom: string;
  trainTo: string;
  holdoutFrom: string;
  holdoutTo: string;
  features: string[];
  layout: Layout;
  metrics: ModelMetrics;
  onnx: Uint8Array;
  trainingRows: number;
  trainingSeconds: number;
  gateReason: string;
  createdBy: string;
}

export const models = {
  async list(db: Db): Promise<ModelRow[]> {
    return (await db.query<ModelRow>(`SELECT ${columns} FROM models ORDER BY version DESC`)).rows;
  },
  async get(db: Db, version: number): Promise<ModelRow | undefined> {
    return (await db.query<ModelRow>(`SELECT ${columns} FROM models WHERE version = $1`, [version])).rows[0];
  },
  async serving(db: Db): Promise<ModelRow | undefined> {
    return (await db.query<ModelRow>(`SELECT ${columns} FROM models WHERE status = 'serving'`)).rows[0];
  },
  async servingVersion(db: Db): Promise<number | undefined> {
    return (await db.query<{ version: number }>("SELECT version::int AS version FROM models WHERE status = 'serving'")).rows[0]?.version;
  },
  async onnx(db: Db, version: number): Promise<Uint8Array> {
    return (await db.query<{ onnx: Buffer }>("SELECT onnx FROM models WHERE version = $1", [version])).rows[0]!.onnx;
  },
  async insert(db: Db, m: NewModel): Promise<number> {
    const { rows } = await db.query<{ version: number }>(
      `INSERT INTO models (kind, status, train_from, train_to, holdout_from, holdout_to, features, layout, metrics, onnx, training_rows, training_seconds, gate_reason, created_by, promoted_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, CASE WHEN $2 = 'serving' THEN now() END) RETURNING version::int AS version`,
      [m.kind, m.status, m.trainFrom, m.trainTo, m.holdoutFrom, m.holdoutTo, m.features, JSON.stringify(m.layout), JSON.stringify(m.metrics), Buffer.from(m.onnx), m.trainingRows, m.trainingSeconds, m.gateReason, m.createdBy],
    );
    return rows[0]!.version;
  },
  /** The serving version becomes `retired`; `version` serves. */
  async promote(db: Db, version: number): Promise<void> {
    await db.query("UPDATE models SET status = 'retired' WHERE status = 'serving'");
    await db.query("UPDATE models SET status = 'serving', promoted_at = now() WHERE version = $1", [version]);
  },
  /** The version promoted before the serving one (for rollback). */
  async previous(db: Db, serving: number): Promise<number | undefined> {
    const { rows } = await db.query<{ version: number }>(
      `SELECT version::int AS version FROM models WHERE status = 'retired' AND promoted_at IS NOT NULL AND version <> $1
       ORDER BY promoted_at DESC LIMIT 1`,
      [serving],
    );
    return rows[0]?.version;
  },
};

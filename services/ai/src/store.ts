// ai's tables: the sales history it learns from and the model registry.
import type { Pool, PoolClient } from "@adminkiosk/runtime";
import { dayIndex, dayOf, type DailySale } from "./generator.js";
import type { HistoryRow, Layout, Metrics } from "./model.js";

type Db = Pool | PoolClient;

export const sales = {
  /** All history (the models train on every kiosk × SKU the service has seen). */
  async all(db: Db): Promise<HistoryRow[]> {
    const { rows } = await db.query<{ kiosk_id: string; sku: string; day: string; quantity: string; unit_price_minor: string; stockout: boolean }>(
      "SELECT kiosk_id, sku, to_char(day, 'YYYY-MM-DD') AS day, quantity, unit_price_minor, stockout FROM sales_daily ORDER BY day, kiosk_id, sku",
    );
    return rows.map((r) => ({ kioskId: r.kiosk_id, sku: r.sku, day: dayIndex(r.day), quantity: Number(r.quantity), unitPriceMinor: Number(r.unit_price_minor), stockout: r.stockout }));
  },
  async count(db: Db): Promise<number> {
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM sales_daily");
    return Number(rows[0]!.n);
  },
  /** A pair's days from `fromDay` on (for the seasonal-naive column). */
  async recent(db: Db, kioskId: string, sku: string, fromDay: number): Promise<Map<number, number>> {
    const { rows } = await db.query<{ day: string; quantity: string }>(
      "SELECT to_char(day, 'YYYY-MM-DD') AS day, quantity FROM sales_daily WHERE kiosk_id = $1 AND sku = $2 AND day >= $3::date",
      [kioskId, sku, dayOf(fromDay)],
    );
    return new Map(rows.map((r) => [dayIndex(r.day), Number(r.quantity)]));
  },
  /** Generated history; days that exist already are left as they are. Returns rows added. */
  async insertGenerated(db: Db, rows: DailySale[]): Promise<number> {
    let added = 0;
    for (let i = 0; i < rows.length; i += 1000) {
      const chunk = rows.slice(i, i + 1000);
      const r = await db.query(
        `INSERT INTO sales_daily (kiosk_id, sku, day, quantity, unit_price_minor, stockout, source)
         SELECT * , 'generated' FROM unnest($1::text[], $2::text[], $3::date[], $4::bigint[], $5::bigint[], $6::boolean[])
         ON CONFLICT DO NOTHING`,
        [chunk.map((s) => s.kioskId), chunk.map((s) => s.sku), chunk.map((s) => s.day), chunk.map((s) => s.quantity), chunk.map((s) => s.unitPriceMinor), chunk.map((s) => s.stockout)],
      );
      added += r.rowCount ?? 0;
    }
    return added;
  },
  /** A completed order's lines, added to their days. */
  async addSale(db: Db, kioskId: string, sku: string, day: string, quantity: number, unitPriceMinor: number): Promise<void> {
    await db.query(
      `INSERT INTO sales_daily (kiosk_id, sku, day, quantity, unit_price_minor, source) VALUES ($1, $2, $3::date, $4, $5, 'orders')
       ON CONFLICT (kiosk_id, sku, day) DO UPDATE SET quantity = sales_daily.quantity + EXCLUDED.quantity, unit_price_minor = EXCLUDED.unit_price_minor`,
      [kioskId, sku, day, quantity, unitPriceMinor],
    );
  },
};

export type ModelStatusName = "candidate" | "serving" | "retired" | "rejected";

export interface ModelMetrics {
  model: Metrics;
  baseline: Metrics;
  /** The version serving when this one was evaluated, scored on the same window. */
  serving: (Metrics & { version: number }) | null;
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

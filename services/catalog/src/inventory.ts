// Each kiosk's stock (schema "catalog"): on hand, reserved, low-stock thresholds and
// the restock history. Units move with conditional UPDATEs, so available stock
// (on_hand - reserved) never goes negative, whatever runs at the same time.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { RestockRecordSchema, StockLevelSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import type { Pool, PoolClient } from "@adminkiosk/runtime";
import { publishRestocked, publishStockCrossing, publishStockLevels } from "./events.js";

type Db = Pool | PoolClient;

export interface StockRow {
  kiosk_id: string;
  sku: string;
  on_hand: string;
  reserved: string;
  low_stock_threshold: string;
  updated_at: Date;
}

export interface RestockRow {
  restock_id: string;
  seq: string;
  kiosk_id: string;
  sku: string;
  quantity: string;
  reason: string;
  restocked_by: string;
  on_hand_after: string;
  created_at: Date;
}

export function toStockLevel(row: StockRow): MessageInitShape<typeof StockLevelSchema> {
  const onHand = BigInt(row.on_hand);
  const reserved = BigInt(row.reserved);
  const threshold = BigInt(row.low_stock_threshold);
  return {
    kioskId: row.kiosk_id,
    sku: row.sku,
    onHand,
    reserved,
    available: onHand - reserved,
    lowStockThreshold: threshold,
    low: onHand <= threshold,
    updateTime: timestampFromDate(row.updated_at),
  };
}

export function toRestockRecord(row: RestockRow): MessageInitShape<typeof RestockRecordSchema> {
  return {
    restockId: row.restock_id,
    kioskId: row.kiosk_id,
    sku: row.sku,
    quantity: BigInt(row.quantity),
    reason: row.reason,
    restockedBy: row.restocked_by,
    restockTime: timestampFromDate(row.created_at),
    onHandAfter: BigInt(row.on_hand_after),
  };
}

export interface StockFilter {
  kioskId?: string;
  sku?: string;
  lowOnly: boolean;
}

const stockColumns = "kiosk_id, sku, on_hand, reserved, low_stock_threshold, updated_at";

function where(f: StockFilter, params: unknown[]): string {
  const clauses = ["true"];
  if (f.kioskId !== undefined) clauses.push(`kiosk_id = $${params.push(f.kioskId)}`);
  if (f.sku !== undefined) clauses.push(`sku = $${params.push(f.sku)}`);
  if (f.lowOnly) clauses.push("on_hand <= low_stock_threshold");
  return clauses.join(" AND ");
}

export const stock = {
  async get(db: Db, kioskId: string, sku: string) {
    const { rows } = await db.query<StockRow>(`SELECT ${stockColumns} FROM stock WHERE kiosk_id = $1 AND sku = $2`, [kioskId, sku]);
    return rows[0];
  },
  async list(db: Db, filter: StockFilter, page: { limit: number; after?: { kioskId: string; sku: string } }) {
    const params: unknown[] = [];
    const condition = where(filter, params);
    const after = page.after ? ` AND (kiosk_id, sku) > ($${params.push(page.after.kioskId)}, $${params.push(page.after.sku)})` : "";
    const { rows } = await db.query<StockRow>(
      `SELECT ${stockColumns} FROM stock WHERE ${condition}${after} ORDER BY kiosk_id, sku LIMIT $${params.push(page.limit)}`,
      params,
    );
    return rows;
  },
  async count(db: Db, filter: StockFilter) {
    const params: unknown[] = [];
    const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM stock WHERE ${where(filter, params)}`, params);
    return Number(rows[0]!.n);
  },
  /** Kiosk × SKU pairs whose stock is low now (a gauge). */
  async lowCount(db: Db) {
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM stock WHERE on_hand <= low_stock_threshold");
    return Number(rows[0]!.n);
  },

  /** Adds units (creating the kiosk's record for the SKU) and records who, when and why. */
  async restock(tx: PoolClient, r: { kioskId: string; sku: string; quantity: number; reason: string; by: string }) {
    const before = await lockOrCreate(tx, r.kioskId, r.sku);
    const { rows } = await tx.query<StockRow>(
      `UPDATE stock SET on_hand = on_hand + $3, updated_at = now() WHERE kiosk_id = $1 AND sku = $2 RETURNING ${stockColumns}`,
      [r.kioskId, r.sku, r.quantity],
    );
    const after = rows[0]!;
    const { rows: restocks } = await tx.query<RestockRow>(
      `INSERT INTO restocks (kiosk_id, sku, quantity, reason, restocked_by, on_hand_after) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [r.kioskId, r.sku, r.quantity, r.reason, r.by, after.on_hand],
    );
    // A brand-new record was never low in anyone's eyes: no "replenished" for it.
    if (!before.created) await publishStockCrossing(tx, crossing(before, after));
    await publishRestocked(tx, { kioskId: r.kioskId, sku: r.sku, quantity: BigInt(r.quantity), onHand: BigInt(after.on_hand), reserved: BigInt(after.reserved) });
    await publishStockLevels(tx, [toStockLevel(after)]);
    return { stock: after, restock: restocks[0]! };
  },

  async setThreshold(tx: PoolClient, kioskId: string, sku: string, threshold: number) {
    const before = await lockOrCreate(tx, kioskId, sku);
    const { rows } = await tx.query<StockRow>(
      `UPDATE stock SET low_stock_threshold = $3, updated_at = now() WHERE kiosk_id = $1 AND sku = $2 RETURNING ${stockColumns}`,
      [kioskId, sku, threshold],
    );
    const after = rows[0]!;
    await publishStockLevels(tx, [toStockLevel(after)]);
    // A brand-new record (nothing on hand yet) is not news.
    if (before.created) return after;
    await publishStockCrossing(tx, crossing(before, after));
    return after;
  },

  async restocks(db: Db, kioskId: string, sku: string | undefined, page: { limit: number; beforeSeq?: string }) {
    const params: unknown[] = [kioskId];
    const bySku = sku === undefined ? "" : ` AND sku = $${params.push(sku)}`;
    const before = page.beforeSeq === undefined ? "" : ` AND seq < $${params.push(page.beforeSeq)}`;
    const { rows } = await db.query<RestockRow>(
      `SELECT * FROM restocks WHERE kiosk_id = $1${bySku}${before} ORDER BY seq DESC LIMIT $${params.push(page.limit)}`,
      params,
    );
    return rows;
  },

  /**
   * Takes `quantity` units into reservation if that many are available; returns the
   * row, or undefined (nothing changed) when there are not enough or none stocked.
   */
  async reserve(tx: PoolClient, kioskId: string, sku: string, quantity: bigint) {
    const { rows } = await tx.query<StockRow>(
      `UPDATE stock SET reserved = reserved + $3, updated_at = now()
       WHERE kiosk_id = $1 AND sku = $2 AND on_hand - reserved >= $3 RETURNING ${stockColumns}`,
      [kioskId, sku, quantity.toString()],
    );
    return rows[0];
  },

  /**
   * A sale's units of one SKU: reserved, in one statement, only if the product is for sale and
   * that many are available; answers the product's price, currency and tax rate, or undefined
   * (nothing changed: the caller asks why).
   */
  async reserveForSale(tx: PoolClient, kioskId: string, sku: string, quantity: bigint) {
    const { rows } = await tx.query<{ price_minor: string; currency: string; tax_rate_basis_points: number }>(
      `UPDATE stock SET reserved = reserved + $3, updated_at = now()
       FROM products p
       WHERE stock.kiosk_id = $1 AND stock.sku = $2 AND p.sku = stock.sku AND p.active AND stock.on_hand - stock.reserved >= $3
       RETURNING p.price_minor, p.currency, p.tax_rate_basis_points`,
      [kioskId, sku, quantity.toString()],
    );
    return rows[0];
  },

  /** Locks the rows in (kiosk, SKU) order, the one order every writer uses, so writers never deadlock. */
  async lockInOrder(tx: PoolClient, keys: { kioskId: string; sku: string }[]) {
    if (keys.length === 0) return;
    await tx.query(
      `SELECT 1 FROM stock WHERE (kiosk_id, sku) IN (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY kiosk_id, sku FOR UPDATE`,
      [keys.map((k) => k.kioskId), keys.map((k) => k.sku)],
    );
  },

  /** Returns reserved units (released or expired reservations), all in one statement; rows must be locked. */
  async unreserveAll(tx: PoolClient, units: { kioskId: string; sku: string; quantity: bigint }[]) {
    if (units.length === 0) return;
    await tx.query(
      `UPDATE stock SET reserved = reserved - u.quantity, updated_at = now()
       FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(kiosk_id, sku, quantity)
       WHERE stock.kiosk_id = u.kiosk_id AND stock.sku = u.sku`,
      [units.map((u) => u.kioskId), units.map((u) => u.sku), units.map((u) => u.quantity.toString())],
    );
  },

  /** Reserved units leave the kiosk (a committed sale); publishes the new level and a low-stock crossing. Rows must be locked. */
  /**
   * Sells held units. With `committing`, the reservation they were held by is marked committed
   * in the same statement (reservations.ts: one round trip fewer per sale).
   */
  async sell(tx: PoolClient, kioskId: string, sku: string, quantity: bigint, committing?: { reservationId: string; at: Date }) {
    const { rows } = await tx.query<StockRow>(
      `${committing ? "WITH committed AS (UPDATE reservations SET state = 'committed', updated_at = $5 WHERE reservation_id = $4) " : ""}
       UPDATE stock SET on_hand = on_hand - $3, reserved = reserved - $3, updated_at = now()
       WHERE kiosk_id = $1 AND sku = $2 RETURNING ${stockColumns}`,
      [kioskId, sku, quantity.toString(), ...(committing ? [committing.reservationId, committing.at] : [])],
    );
    const after = rows[0]!;
    await publishStockLevels(tx, [toStockLevel(after)]);
    await publishStockCrossing(tx, {
      kioskId,
      sku,
      onHandBefore: BigInt(after.on_hand) + quantity,
      thresholdBefore: BigInt(after.low_stock_threshold),
      onHand: BigInt(after.on_hand),
      threshold: BigInt(after.low_stock_threshold),
    });
  },
};

async function lockOrCreate(tx: PoolClient, kioskId: string, sku: string): Promise<StockRow & { created: boolean }> {
  const { rows } = await tx.query<StockRow & { created: boolean }>(
    `INSERT INTO stock (kiosk_id, sku) VALUES ($1, $2)
     ON CONFLICT (kiosk_id, sku) DO UPDATE SET updated_at = stock.updated_at
     RETURNING ${stockColumns}, (xmax = 0) AS created`,
    [kioskId, sku],
  );
  return rows[0]!;
}

function crossing(before: StockRow, after: StockRow) {
  return {
    kioskId: after.kiosk_id,
    sku: after.sku,
    onHandBefore: BigInt(before.on_hand),
    thresholdBefore: BigInt(before.low_stock_threshold),
    onHand: BigInt(after.on_hand),
    threshold: BigInt(after.low_stock_threshold),
  };
}

// HistoryService.ImportHistory: a sales-history file streamed in (CSV or JSON lines, see
// import-format.ts) into the tables the models train on, all or nothing.
//
// One transaction: every good row is staged in a temporary table as it arrives (batches, so
// neither side holds the file), then, if no line was bad, the rows become kiosk × SKU × UTC
// day cells (sales summed, the day's last price, days touched by a stock-out interval
// flagged as censored, and 0 sold on days the kiosk sold other things within the product's
// imported span) and are merged into sales_daily. Re-import is idempotent: imported_days
// keeps what the latest import said about each cell, and sales_daily.quantity is what
// orders recorded plus that, so a cell imported again is replaced, not added twice. Sales
// with a time of day fill the day's UTC hours (sales_daily.hourly) as orders' do; a day with
// a sale given by date alone has unknown hours (NULL), as ai's hourly model expects.
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { HistoryFormat, type ImportHistoryRequest, type ImportHistoryResponse } from "@adminkiosk/proto/adminkiosk/ai/v1/history_pb";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { invalid, requireText, type Logger, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { HistoryReader, type HistoryRow, type LineError } from "./import-format.js";

export const maxChunkBytes = 1024 * 1024;
/** Bad lines listed in the error (all are counted). */
export const listedErrors = 20;
const batchRows = 5_000;
const hourSums = Array.from({ length: 24 }, (_, h) => `coalesce(sum(quantity) FILTER (WHERE h = ${h}), 0)`).join(", ");

export type ImportResult = Omit<ImportHistoryResponse, "$typeName" | "$unknown">;

function badLines(reader: HistoryReader): ConnectError {
  const list = reader.errors.map((e: LineError) => `line ${e.line}: ${e.field}: ${e.message}`);
  const more = reader.badLines > reader.errors.length ? `; … and ${reader.badLines - reader.errors.length} more` : "";
  const what = reader.badLines === 1 ? "1 bad line" : `${reader.badLines} bad lines`;
  return new ConnectError(`data: ${what}, nothing imported: ${list.join("; ")}${more}`, Code.InvalidArgument, undefined, [
    {
      desc: BadRequestSchema,
      value: { fieldViolations: reader.errors.map((e) => ({ field: `data[line ${e.line}].${e.field}`, description: e.message })) },
    },
  ]);
}

async function stage(tx: PoolClient, rows: HistoryRow[]) {
  if (rows.length === 0) return;
  const col = <T>(f: (r: HistoryRow) => T) => rows.map(f);
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  await tx.query(
    `INSERT INTO import_rows (line, stockout, kiosk_id, sku, t, quantity, price, s, e, timed, day, h)
     SELECT * FROM unnest($1::bigint[], $2::boolean[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::bigint[], $8::timestamptz[], $9::timestamptz[],
       $10::boolean[], $11::date[], $12::smallint[])`,
    [
      col((r) => r.line),
      col((r) => r.kind === "stockout"),
      col((r) => r.kioskId),
      col((r) => r.sku),
      col((r) => iso(r.kind === "sale" ? r.time : undefined)),
      col((r) => (r.kind === "sale" ? r.quantity : null)),
      col((r) => (r.kind === "sale" ? r.unitPriceMinor : null)),
      col((r) => iso(r.kind === "stockout" ? r.start : undefined)),
      col((r) => iso(r.kind === "stockout" ? r.end : undefined)),
      col((r) => r.kind === "sale" && r.timed),
      // The sale's UTC day and hour, worked out here once rather than per aggregate in SQL.
      col((r) => (r.kind === "sale" ? new Date(r.time).toISOString().slice(0, 10) : null)),
      col((r) => (r.kind === "sale" ? new Date(r.time).getUTCHours() : null)),
    ],
  );
}

export async function importHistory(deps: { pool: Pool; log: Logger }, requests: AsyncIterable<ImportHistoryRequest>, by: string): Promise<ImportResult> {
  const started = performance.now();
  const client = await deps.pool.connect();
  let reader: HistoryReader | undefined;
  let source = "";
  let format = "";
  try {
    await client.query("BEGIN");
    // Large files: the merge statements may run longer than the pool's 30 s default.
    await client.query("SET LOCAL statement_timeout = '30min'");
    await client.query(
      `CREATE TEMP TABLE import_rows (line bigint NOT NULL, stockout boolean NOT NULL, kiosk_id text NOT NULL, sku text NOT NULL,
         t timestamptz, quantity bigint, price bigint, s timestamptz, e timestamptz, timed boolean NOT NULL, day date, h smallint) ON COMMIT DROP`,
    );
    let batch: HistoryRow[] = [];
    const take = async (rows: HistoryRow[]) => {
      // Once a line is bad nothing will be imported: the rest is only read and checked.
      if (reader!.badLines > 0) return;
      for (const r of rows) batch.push(r);
      if (batch.length >= batchRows) {
        await stage(client, batch);
        batch = [];
      }
    };
    for await (const req of requests) {
      if (!reader) {
        if (req.format !== HistoryFormat.CSV && req.format !== HistoryFormat.JSONL) throw invalid("format", "must be HISTORY_FORMAT_CSV or HISTORY_FORMAT_JSONL in the first message");
        format = req.format === HistoryFormat.CSV ? "csv" : "jsonl";
        source = req.source === "" ? "" : requireText("source", req.source, { max: 200 });
        reader = new HistoryReader({ format: format as "csv" | "jsonl", keepErrors: listedErrors });
      } else if (req.format !== HistoryFormat.UNSPECIFIED || req.source !== "") throw invalid("format", "only the first message names the format and source");
      if (req.data.length > maxChunkBytes) throw invalid("data", `must be at most ${maxChunkBytes} bytes per message`);
      await take(reader.push(req.data));
    }
    if (!reader) throw invalid("format", "must be HISTORY_FORMAT_CSV or HISTORY_FORMAT_JSONL in the first message");
    await take(reader.end());
    if (reader.badLines > 0) throw badLines(reader);
    if (reader.saleRows + reader.stockoutRows === 0) throw invalid("data", "has no rows (a CSV file needs a header line and at least one row)");
    await stage(client, batch);
    const merging = performance.now();
    const result = await merge(client, { source, format, by, lines: reader.lines, saleRows: reader.saleRows, stockoutRows: reader.stockoutRows });
    await client.query("COMMIT");
    const seconds = (performance.now() - started) / 1000;
    deps.log.info({ ...result, source, by, seconds, mergeSeconds: (performance.now() - merging) / 1000 }, "sales history imported");
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

async function merge(
  tx: PoolClient,
  m: { source: string; format: string; by: string; lines: number; saleRows: number; stockoutRows: number },
): Promise<ImportResult> {
  // The file's cells: sales per UTC day (the day's last price), 0 sold on the kiosk's other
  // selling days within the product's span, and the days each stock-out touches.
  // Temporary tables are never analysed by autovacuum: without statistics the planner guesses.
  await tx.query("ANALYZE import_rows");
  await tx.query(
    `CREATE TEMP TABLE import_sales ON COMMIT DROP AS
       SELECT kiosk_id, sku, day, sum(quantity) AS quantity,
              (array_agg(price ORDER BY t DESC, line DESC))[1] AS price,
              -- Units per UTC hour, when every sale of the day has a time of day.
              CASE WHEN bool_and(timed) THEN ARRAY[${hourSums}]::integer[] END AS hourly
       FROM import_rows WHERE NOT stockout GROUP BY 1, 2, 3`,
  );
  await tx.query("CREATE INDEX ON import_sales (kiosk_id, sku, day)");
  await tx.query("ANALYZE import_sales");
  await tx.query(
    `CREATE TEMP TABLE import_cells ON COMMIT DROP AS
     WITH kiosk_days AS (SELECT DISTINCT kiosk_id, day FROM import_sales),
          spans AS (SELECT kiosk_id, sku, min(day) AS first, max(day) AS last FROM import_sales GROUP BY 1, 2),
          outs AS (
            SELECT DISTINCT kiosk_id, sku, d::date AS day
            FROM import_rows, generate_series((s AT TIME ZONE 'UTC')::date, ((e - interval '1 microsecond') AT TIME ZONE 'UTC')::date, interval '1 day') AS d
            WHERE stockout
          ),
          cells AS (
            SELECT kiosk_id, sku, day FROM import_sales
            UNION SELECT sp.kiosk_id, sp.sku, kd.day FROM spans sp JOIN kiosk_days kd ON kd.kiosk_id = sp.kiosk_id AND kd.day BETWEEN sp.first AND sp.last
            UNION SELECT kiosk_id, sku, day FROM outs
          )
     SELECT c.kiosk_id, c.sku, c.day, coalesce(s.quantity, 0) AS quantity,
            coalesce(
              s.price,
              (SELECT p.price FROM import_sales p WHERE p.kiosk_id = c.kiosk_id AND p.sku = c.sku AND p.day < c.day ORDER BY p.day DESC LIMIT 1),
              (SELECT p.price FROM import_sales p WHERE p.kiosk_id = c.kiosk_id AND p.sku = c.sku AND p.day > c.day ORDER BY p.day LIMIT 1),
              (SELECT d.unit_price_minor FROM sales_daily d WHERE d.kiosk_id = c.kiosk_id AND d.sku = c.sku ORDER BY d.day DESC LIMIT 1)
            ) AS price,
            o.day IS NOT NULL AS stockout,
            CASE WHEN s.day IS NULL THEN array_fill(0, ARRAY[24]) ELSE s.hourly END AS hourly
     FROM cells c LEFT JOIN import_sales s USING (kiosk_id, sku, day) LEFT JOIN outs o USING (kiosk_id, sku, day)`,
  );
  // A stock-out of a product the kiosk never sold (in the file or before) has no price and
  // tells the models nothing: not written.
  await tx.query("DELETE FROM import_cells WHERE price IS NULL");
  // One import merges at a time (two overlapping ones would each read the other's old values).
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('ai:history-import'))");
  await tx.query(
    `CREATE TEMP TABLE import_merge ON COMMIT DROP AS
       SELECT c.*, o.quantity AS old_quantity, o.stockout AS old_stockout, o.hourly AS old_hourly
       FROM import_cells c LEFT JOIN imported_days o USING (kiosk_id, sku, day)`,
  );
  const importId = randomUUID();
  const { rows } = await tx.query<{ days: string; replaced: string; kiosks: number; skus: number; first: string | null; last: string | null }>(
    `SELECT count(*) AS days, count(old_quantity) AS replaced, count(DISTINCT kiosk_id)::int AS kiosks, count(DISTINCT sku)::int AS skus,
            to_char(min(day), 'YYYY-MM-DD') AS first, to_char(max(day), 'YYYY-MM-DD') AS last FROM import_merge`,
  );
  const s = rows[0]!;
  await tx.query(
    `INSERT INTO history_imports (import_id, source, format, lines, sale_rows, stockout_rows, days, days_replaced, first_day, last_day, imported_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [importId, m.source, m.format, m.lines, m.saleRows, m.stockoutRows, s.days, s.replaced, s.first, s.last, m.by],
  );
  // Rows first (0 sold), then the imported part replaced under the row's lock, so an order
  // completing at the same moment adds to the same row and neither is lost.
  await tx.query(
    `INSERT INTO sales_daily (kiosk_id, sku, day, quantity, unit_price_minor, stockout, source, hourly)
     SELECT kiosk_id, sku, day, 0, price, false, 'import', array_fill(0, ARRAY[24]) FROM import_merge ON CONFLICT (kiosk_id, sku, day) DO NOTHING`,
  );
  await tx.query(
    `UPDATE sales_daily d SET
       quantity = d.quantity - coalesce(m.old_quantity, 0) + m.quantity,
       unit_price_minor = CASE WHEN d.source = 'import' THEN m.price ELSE d.unit_price_minor END,
       -- Censored if this import says so, or if something other than an earlier import did.
       stockout = m.stockout OR (d.stockout AND NOT coalesce(m.old_stockout, false)),
       -- The hours: the import's own where the row holds nothing else; otherwise the row's
       -- hours with the earlier import's replaced, or unknown (NULL) where either is.
       hourly = CASE
         WHEN d.quantity = coalesce(m.old_quantity, 0) THEN m.hourly
         WHEN d.hourly IS NULL OR m.hourly IS NULL OR (m.old_quantity IS NOT NULL AND m.old_hourly IS NULL) THEN NULL
         ELSE (SELECT array_agg(a - coalesce(b, 0) + c ORDER BY i) FROM unnest(d.hourly, m.old_hourly, m.hourly) WITH ORDINALITY AS u(a, b, c, i))
       END
     FROM import_merge m WHERE d.kiosk_id = m.kiosk_id AND d.sku = m.sku AND d.day = m.day`,
  );
  await tx.query(
    `INSERT INTO imported_days (kiosk_id, sku, day, quantity, unit_price_minor, stockout, hourly, import_id)
     SELECT kiosk_id, sku, day, quantity, price, stockout, hourly, $1 FROM import_merge
     ON CONFLICT (kiosk_id, sku, day) DO UPDATE SET quantity = EXCLUDED.quantity, unit_price_minor = EXCLUDED.unit_price_minor,
       stockout = EXCLUDED.stockout, hourly = EXCLUDED.hourly, import_id = EXCLUDED.import_id`,
    [importId],
  );
  return {
    importId,
    lines: BigInt(m.lines),
    saleRows: BigInt(m.saleRows),
    stockoutRows: BigInt(m.stockoutRows),
    days: BigInt(s.days),
    daysReplaced: BigInt(s.replaced),
    kiosks: s.kiosks,
    skus: s.skus,
    firstDay: s.first ?? "",
    lastDay: s.last ?? "",
  };
}

// orders' own SQL (schema "orders"): orders with their lines, tickets and receipts,
// operators' refunds.
import type { DescMessage } from "@bufbuild/protobuf";
import { changeWithEvent, type DomainErrorKind, type OutboxEvent, type Pool, type PoolClient } from "@adminkiosk/runtime";

export type OrderStateName = "created" | "pending_payment" | "completed" | "failed" | "partially_refunded" | "refunded";

export interface OrderRow {
  id: string;
  kiosk_id: string;
  idempotency_key: string;
  request_hash: Buffer;
  state: OrderStateName;
  currency: string;
  total_minor: string;
  refunded_minor: string;
  payment_intent_id: string;
  failure_code: string;
  failure_message: string;
  /** The refusal CreateOrder answered, answered again on a retry; null when the order did not fail by a refusal. */
  failure_kind: DomainErrorKind | null;
  receipt: Buffer | null;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
}

export interface LineRow {
  order_id: string;
  line_number: number;
  sku: string;
  quantity: string;
  event_id: string;
  seat_id: string;
  tier_id: string;
  unit_price_minor: string;
  tax_rate_basis_points: number;
  refunded_quantity: string;
}

export interface TicketRow {
  id: string;
  order_id: string;
  event_id: string;
  seat_id: string;
  qr_payload: string;
  void: boolean;
}

export interface FullOrder {
  row: OrderRow;
  lines: LineRow[];
  tickets: TicketRow[];
}

type Db = Pool | PoolClient;

/** Order lines as the parameter arrays of an `unnest(int[], text[], bigint[], text[], text[], text[], bigint[], int[])` in column order. */
function lineColumns(lines: Omit<LineRow, "order_id" | "refunded_quantity">[]) {
  return [
    lines.map((l) => l.line_number),
    lines.map((l) => l.sku),
    lines.map((l) => l.quantity),
    lines.map((l) => l.event_id),
    lines.map((l) => l.seat_id),
    lines.map((l) => l.tier_id),
    lines.map((l) => l.unit_price_minor),
    lines.map((l) => l.tax_rate_basis_points),
  ];
}

export const orders = {
  /** Claims (kiosk, key) for a new order; undefined when the key is taken (see byKey). */
  async insert(tx: Db, o: { id: string; kioskId: string; key: string; hash: Buffer }): Promise<OrderRow | undefined> {
    const { rows } = await tx.query<OrderRow>(
      `INSERT INTO orders (id, kiosk_id, idempotency_key, request_hash, state)
       VALUES ($1, $2, $3, $4, 'created') ON CONFLICT (kiosk_id, idempotency_key) DO NOTHING RETURNING *`,
      [o.id, o.kioskId, o.key, o.hash],
    );
    return rows[0];
  },

  /** A new order's row as `insertWithEvent` writes it (the defaults of the table; both times `at`). */
  newRow(o: { id: string; kioskId: string; key: string; hash: Buffer; at: Date }): OrderRow {
    return {
      id: o.id,
      kiosk_id: o.kioskId,
      idempotency_key: o.key,
      request_hash: o.hash,
      state: "created",
      currency: "",
      total_minor: "0",
      refunded_minor: "0",
      payment_intent_id: "",
      failure_code: "",
      failure_message: "",
      failure_kind: null,
      receipt: null,
      created_at: o.at,
      updated_at: o.at,
      completed_at: null,
    };
  },

  /**
   * Claims (kiosk, key) with `row` (newRow) and queues `event` with it, in one statement; false
   * when the key is taken (see byKey).
   */
  async insertWithEvent(db: Db, row: OrderRow, event: OutboxEvent): Promise<boolean> {
    const inserted = await changeWithEvent<{ id: string }, DescMessage>(
      db,
      {
        text: `INSERT INTO orders (id, kiosk_id, idempotency_key, request_hash, state, created_at, updated_at)
               VALUES ($1, $2, $3, $4, 'created', $5, $5) ON CONFLICT (kiosk_id, idempotency_key) DO NOTHING RETURNING id`,
        values: [row.id, row.kiosk_id, row.idempotency_key, row.request_hash, row.created_at],
      },
      event,
    );
    return inserted.length > 0;
  },

  async byKey(db: Db, kioskId: string, key: string): Promise<OrderRow | undefined> {
    const { rows } = await db.query<OrderRow>("SELECT * FROM orders WHERE kiosk_id = $1 AND idempotency_key = $2", [kioskId, key]);
    return rows[0];
  },

  async byId(db: Db, id: string, options: { forUpdate?: boolean } = {}): Promise<OrderRow | undefined> {
    const { rows } = await db.query<OrderRow>(`SELECT * FROM orders WHERE id = $1${options.forUpdate ? " FOR UPDATE" : ""}`, [id]);
    return rows[0];
  },

  /**
   * What a payment event needs to know of its order, in one statement: the row, whether it was
   * sold offline, and its lines (fixed once reserved, before the payment starts).
   */
  async forPayment(db: Db, id: string): Promise<(OrderRow & { offline: boolean; lines: LineRow[] }) | undefined> {
    const { rows } = await db.query<OrderRow & { offline: boolean; lines: LineRow[] }>(
      `SELECT o.*, EXISTS (SELECT 1 FROM offline_sales s WHERE s.order_id = o.id) AS offline,
         (SELECT coalesce(json_agg(json_build_object('order_id', l.order_id, 'line_number', l.line_number, 'sku', l.sku, 'quantity', l.quantity::text,
                   'event_id', l.event_id, 'seat_id', l.seat_id, 'tier_id', l.tier_id, 'unit_price_minor', l.unit_price_minor::text,
                   'tax_rate_basis_points', l.tax_rate_basis_points, 'refunded_quantity', l.refunded_quantity::text) ORDER BY l.line_number), '[]'::json)
            FROM order_lines l WHERE l.order_id = o.id) AS lines
       FROM orders o WHERE o.id = $1`,
      [id],
    );
    return rows[0];
  },

  /**
   * Locks the order to complete it and, while it is still open, takes its receipt number in the
   * same statement (a number is taken again, leaving a gap, only when a concurrent change
   * made PostgreSQL re-read the row; a rolled-back completion leaves one as before).
   */
  async lockToComplete(tx: PoolClient, id: string): Promise<(OrderRow & { receipt_number: string | null }) | undefined> {
    const { rows } = await tx.query<OrderRow & { receipt_number: string | null }>(
      `SELECT *, CASE WHEN state IN ('created', 'pending_payment') THEN nextval('receipt_numbers')::text END AS receipt_number
       FROM orders WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return rows[0];
  },

  async full(db: Db, id: string, options: { forUpdate?: boolean } = {}): Promise<FullOrder | undefined> {
    const row = await orders.byId(db, id, options);
    if (!row) return undefined;
    const [lines, tickets] = await Promise.all([
      db.query<LineRow>("SELECT * FROM order_lines WHERE order_id = $1 ORDER BY line_number", [id]),
      db.query<TicketRow>("SELECT * FROM tickets WHERE order_id = $1 ORDER BY event_id, seat_id", [id]),
    ]);
    return { row, lines: lines.rows, tickets: tickets.rows };
  },

  /**
   * Records what catalog reserved (priced lines) once, in one statement; a retry finds them
   * already there. Answers the order's total as recorded, and whether this call wrote it.
   */
  async setReserved(db: Db, id: string, currency: string, total: bigint, lines: Omit<LineRow, "order_id" | "refunded_quantity">[]): Promise<{ currency: string; total_minor: string; wrote: boolean }> {
    const { rows } = await db.query<{ currency: string; total_minor: string; wrote: boolean }>(
      `WITH upd AS (
         UPDATE orders SET currency = $2, total_minor = $3, updated_at = now() WHERE id = $1 AND currency = '' RETURNING id, currency, total_minor
       ), added AS (
         INSERT INTO order_lines (order_id, line_number, sku, quantity, event_id, seat_id, tier_id, unit_price_minor, tax_rate_basis_points)
         SELECT upd.id, l.* FROM upd, unnest($4::int[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::int[]) AS l
       )
       SELECT currency, total_minor::text, true AS wrote FROM upd`,
      [
        id,
        currency,
        total,
        ...lineColumns(lines),
      ],
    );
    if (rows[0]) return rows[0];
    // Recorded before (a retry), or by a concurrent retry this UPDATE waited for: read in a
    // statement of its own, whose snapshot sees that commit (the one above predates it).
    const { rows: recorded } = await db.query<{ currency: string; total_minor: string }>("SELECT currency, total_minor::text FROM orders WHERE id = $1", [id]);
    if (!recorded[0]) throw new Error(`order ${id} vanished`);
    return { ...recorded[0], wrote: false };
  },

  /**
   * A retry carries a 'created' order on: it counts as progress (the abandoned-order sweeper
   * waits from here). Undefined when the order is no longer 'created' (the sweeper failed it
   * first; it waits for this statement's lock, or this one for its).
   */
  async touchCreated(db: Db, id: string): Promise<OrderRow | undefined> {
    const { rows } = await db.query<OrderRow>("UPDATE orders SET updated_at = now() WHERE id = $1 AND state = 'created' RETURNING *", [id]);
    return rows[0];
  },

  /**
   * CREATED → PENDING_PAYMENT once the intent exists, with what catalog reserved (the priced
   * lines and total) recorded in the same statement unless a retry recorded them before — one
   * round trip where setReserved and setPaymentStarted were two. Answers the order as it is
   * now, and whether this call wrote the lines.
   */
  async setReservedAndPaymentStarted(
    db: Db,
    id: string,
    paymentIntentId: string,
    reserved: { currency: string; total: bigint; lines: Omit<LineRow, "order_id" | "refunded_quantity">[] },
  ): Promise<{ row: OrderRow; wrote: boolean } | undefined> {
    const { lines } = reserved;
    const { rows } = await db.query<OrderRow & { lines_written: boolean }>(
      `WITH upd AS (
         UPDATE orders SET payment_intent_id = $2, updated_at = now(),
           state = CASE WHEN state = 'created' THEN 'pending_payment' ELSE state END,
           currency = CASE WHEN currency = '' THEN $3 ELSE currency END,
           total_minor = CASE WHEN currency = '' THEN $4 ELSE total_minor END
         WHERE id = $1 RETURNING *
       ), added AS (
         INSERT INTO order_lines (order_id, line_number, sku, quantity, event_id, seat_id, tier_id, unit_price_minor, tax_rate_basis_points)
         SELECT upd.id, l.* FROM upd, unnest($5::int[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::int[]) AS l
         ON CONFLICT (order_id, line_number) DO NOTHING
         RETURNING 1
       )
       SELECT upd.*, EXISTS (SELECT 1 FROM added) AS lines_written FROM upd`,
      [
        id,
        paymentIntentId,
        reserved.currency,
        reserved.total,
        ...lineColumns(lines),
      ],
    );
    if (!rows[0]) return undefined;
    const { lines_written, ...row } = rows[0];
    return { row, wrote: lines_written };
  },

  /** CREATED → PENDING_PAYMENT once the intent exists (the worker may have moved it on already). */
  async setPaymentStarted(db: Db, id: string, paymentIntentId: string): Promise<OrderRow | undefined> {
    const { rows } = await db.query<OrderRow>(
      `UPDATE orders SET payment_intent_id = $2, updated_at = now(),
         state = CASE WHEN state = 'created' THEN 'pending_payment' ELSE state END
       WHERE id = $1 RETURNING *`,
      [id, paymentIntentId],
    );
    return rows[0];
  },

  async setFailed(tx: Db, id: string, f: { code: string; message: string; kind?: DomainErrorKind }) {
    await tx.query(
      `UPDATE orders SET state = 'failed', failure_code = $2, failure_message = $3, failure_kind = $4, updated_at = now()
       WHERE id = $1`,
      [id, f.code, f.message, f.kind ?? null],
    );
  },

  async setCompleted(tx: PoolClient, id: string, paymentIntentId: string, receipt: Buffer, at: Date): Promise<OrderRow> {
    const { rows } = await tx.query<OrderRow>(
      `UPDATE orders SET state = 'completed', payment_intent_id = $2, receipt = $3, completed_at = $4, updated_at = now() WHERE id = $1 RETURNING *`,
      [id, paymentIntentId, receipt, at],
    );
    return rows[0]!;
  },

  /**
   * The locked, open order's completion (`completed`: its row as it becomes, both times its
   * completed_at) and its completed event, in one statement.
   */
  async completeWithEvent(tx: PoolClient, completed: OrderRow, event: OutboxEvent): Promise<void> {
    await changeWithEvent<{ id: string }, DescMessage>(
      tx,
      {
        text: `UPDATE orders SET state = 'completed', payment_intent_id = $2, receipt = $3, completed_at = $4, updated_at = $4 WHERE id = $1 RETURNING id`,
        values: [completed.id, completed.payment_intent_id, completed.receipt, completed.completed_at],
      },
      event,
    );
  },

  async nextReceiptNumber(tx: PoolClient): Promise<string> {
    const { rows } = await tx.query<{ n: string }>("SELECT nextval('receipt_numbers')::text AS n");
    return rows[0]!.n.padStart(8, "0");
  },

  async list(db: Db, f: { kioskId?: string; state?: OrderStateName; from?: Date; to?: Date }, page: { limit: number; before?: { at: Date; id: string } }): Promise<OrderRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.kioskId !== undefined) where.push(`kiosk_id = $${params.push(f.kioskId)}`);
    if (f.state !== undefined) where.push(`state = $${params.push(f.state)}`);
    if (f.from) where.push(`created_at >= $${params.push(f.from)}`);
    if (f.to) where.push(`created_at < $${params.push(f.to)}`);
    if (page.before) where.push(`(created_at, id) < ($${params.push(page.before.at)}, $${params.push(page.before.id)})`);
    const { rows } = await db.query<OrderRow>(
      `SELECT * FROM orders ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id DESC LIMIT $${params.push(page.limit)}`,
      params,
    );
    return rows;
  },

  async linesOf(db: Db, ids: string[]): Promise<LineRow[]> {
    const { rows } = await db.query<LineRow>("SELECT * FROM order_lines WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, line_number", [ids]);
    return rows;
  },

  async ticketsOf(db: Db, ids: string[]): Promise<TicketRow[]> {
    const { rows } = await db.query<TicketRow>("SELECT * FROM tickets WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, event_id, seat_id", [ids]);
    return rows;
  },
};

export const tickets = {
  /** An order's tickets, in one statement. */
  async insertAll(tx: PoolClient, ts: Omit<TicketRow, "void">[]): Promise<TicketRow[]> {
    if (ts.length === 0) return [];
    const { rows } = await tx.query<TicketRow>(
      `INSERT INTO tickets (id, order_id, event_id, seat_id, qr_payload)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[]) RETURNING *`,
      [ts.map((t) => t.id), ts.map((t) => t.order_id), ts.map((t) => t.event_id), ts.map((t) => t.seat_id), ts.map((t) => t.qr_payload)],
    );
    return rows.sort((a, b) => (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : a.seat_id < b.seat_id ? -1 : a.seat_id > b.seat_id ? 1 : 0));
  },
  async voidSeats(tx: PoolClient, orderId: string, seats: { eventId: string; seatId: string }[]) {
    if (seats.length === 0) return;
    await tx.query(
      "UPDATE tickets SET void = true WHERE order_id = $1 AND (event_id, seat_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))",
      [orderId, seats.map((s) => s.eventId), seats.map((s) => s.seatId)],
    );
  },
};

export interface RefundRow {
  id: string;
  scope: string;
  idempotency_key: string;
  request_hash: Buffer;
  order_id: string;
  amount_minor: string;
  lines: { line: number; quantity: string }[];
  reason: string;
  state: "requested" | "succeeded";
  requested_by: string;
}

export const refunds = {
  async byKey(db: Db, scope: string, key: string): Promise<RefundRow | undefined> {
    const { rows } = await db.query<RefundRow>("SELECT * FROM refunds WHERE scope = $1 AND idempotency_key = $2", [scope, key]);
    return rows[0];
  },
  async insert(tx: PoolClient, r: Omit<RefundRow, "id" | "state">): Promise<RefundRow> {
    const { rows } = await tx.query<RefundRow>(
      `INSERT INTO refunds (scope, idempotency_key, request_hash, order_id, amount_minor, lines, reason, state, requested_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'requested', $8) RETURNING *`,
      [r.scope, r.idempotency_key, r.request_hash, r.order_id, r.amount_minor, JSON.stringify(r.lines), r.reason, r.requested_by],
    );
    return rows[0]!;
  },
  async markSucceeded(tx: PoolClient, id: string) {
    await tx.query("UPDATE refunds SET state = 'succeeded' WHERE id = $1", [id]);
  },
  async remove(tx: PoolClient, id: string) {
    await tx.query("DELETE FROM refunds WHERE id = $1", [id]);
  },
};

/** Claims an event for this transaction; false when it was applied before. */
/** A successful payment that could not complete its order (refunded); recorded once per intent. */
export async function recordStrayPayment(
  db: Db,
  p: { paymentIntentId: string; orderId: string; kioskId: string; amountMinor: bigint; currency: string; reason: string },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO stray_payments (payment_intent_id, order_id, kiosk_id, amount_minor, currency, reason)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (payment_intent_id) DO NOTHING`,
    [p.paymentIntentId, p.orderId, p.kioskId, p.amountMinor.toString(), p.currency, p.reason],
  );
  return rowCount === 1;
}

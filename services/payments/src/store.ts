// payments' SQL: intents, refunds, provider jobs. Ledger SQL is in ledger.ts and
// idempotency keys in idempotency.ts.
import type { DescMessage } from "@bufbuild/protobuf";
import { changeWithEvent, currentTraceparent, type OutboxEvent, type Pool, type PoolClient } from "@adminkiosk/runtime";

type Db = Pool | PoolClient;

export type IntentState = "requires_payment" | "processing" | "succeeded" | "failed" | "canceled" | "partially_refunded" | "refunded";
export type RefundState = "pending" | "succeeded" | "failed";

export interface IntentRow {
  id: string;
  seq: string;
  kiosk_id: string;
  order_id: string;
  amount_minor: string;
  currency: string;
  state: IntentState;
  refunded_minor: string;
  description: string;
  payment_method: string;
  failure_code: string;
  failure_message: string;
  cancellation_reason: string;
  provider_charge_id: string | null;
  processing_since: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface RefundRow {
  id: string;
  intent_id: string;
  amount_minor: string;
  currency: string;
  reason: string;
  state: RefundState;
  automatic: boolean;
  requested_by: string;
  failure_code: string;
  provider_refund_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface JobRow {
  id: string;
  kind: "charge" | "cancel_charge" | "refund";
  intent_id: string;
  refund_id: string | null;
  attempts: number;
  /** The request that queued it (tracing.ts), or null. */
  traceparent: string | null;
  /** A charge job's intent as it was when the job was claimed (read with the claim: no second statement). */
  charge: ChargeOfJob | null;
}

/** What submitting a charge needs of its intent (amounts as text, as pg reads bigint). */
export interface ChargeOfJob {
  state: IntentRow["state"];
  amount_minor: string;
  currency: string;
  payment_method: string;
  description: string;
}

export interface NewIntent {
  kioskId: string;
  orderId: string;
  amountMinor: bigint;
  currency: string;
  description: string;
}

export interface IntentFilter {
  kioskId?: string;
  orderId?: string;
  state?: IntentState;
}

export const intents = {
  /**
   * A new intent, unless the order already has a live one (undefined then): confirmed at once
   * when a payment method is given, with its charge job queued (and the provider workers woken
   * at commit), in one statement.
   */
  async insertUnlessLive(db: Db, i: NewIntent & { paymentMethod: string }): Promise<IntentRow | undefined> {
    const { rows } = await db.query<IntentRow>(
      `WITH added AS (
         INSERT INTO payment_intents (kiosk_id, order_id, amount_minor, currency, state, description, payment_method, processing_since)
         VALUES ($1, $2, $3, $4, CASE WHEN $6 = '' THEN 'requires_payment' ELSE 'processing' END, $5, $6, CASE WHEN $6 = '' THEN NULL ELSE now() END)
         ON CONFLICT (kiosk_id, order_id) WHERE state NOT IN ('failed', 'canceled') DO NOTHING
         RETURNING *
       ), job AS (
         INSERT INTO provider_jobs (kind, intent_id, traceparent) SELECT 'charge', id, $7::text FROM added WHERE state = 'processing' RETURNING 1
       )
       SELECT added.*, (SELECT pg_notify('payments_provider_jobs', '') FROM job) AS woke FROM added`,
      [i.kioskId, i.orderId, i.amountMinor.toString(), i.currency, i.description, i.paymentMethod, currentTraceparent() ?? null],
    );
    if (!rows[0]) return undefined;
    const { woke: _, ...row } = rows[0] as IntentRow & { woke: unknown };
    return row;
  },

  async insert(db: Db, i: NewIntent): Promise<IntentRow> {
    const { rows } = await db.query<IntentRow>(
      `INSERT INTO payment_intents (kiosk_id, order_id, amount_minor, currency, state, description)
       VALUES ($1, $2, $3, $4, 'requires_payment', $5) RETURNING *`,
      [i.kioskId, i.orderId, i.amountMinor.toString(), i.currency, i.description],
    );
    return rows[0]!;
  },

  async byId(db: Db, id: string, opts: { kioskId?: string; forUpdate?: boolean } = {}): Promise<IntentRow | undefined> {
    const { rows } = await db.query<IntentRow>(
      `SELECT * FROM payment_intents WHERE id = $1 AND ($2::text IS NULL OR kiosk_id = $2)${opts.forUpdate ? " FOR UPDATE" : ""}`,
      [id, opts.kioskId ?? null],
    );
    return rows[0];
  },

  async liveForOrder(db: Db, kioskId: string, orderId: string): Promise<IntentRow | undefined> {
    const { rows } = await db.query<IntentRow>(
      "SELECT * FROM payment_intents WHERE kiosk_id = $1 AND order_id = $2 AND state NOT IN ('failed', 'canceled')",
      [kioskId, orderId],
    );
    return rows[0];
  },

  async list(db: Db, f: IntentFilter, page: { limit: number; beforeSeq?: string }): Promise<IntentRow[]> {
    const { rows } = await db.query<IntentRow>(
      `SELECT * FROM payment_intents
       WHERE ($1::text IS NULL OR kiosk_id = $1) AND ($2::text IS NULL OR order_id = $2) AND ($3::text IS NULL OR state = $3)
         AND ($4::bigint IS NULL OR seq < $4)
       ORDER BY seq DESC LIMIT $5`,
      [f.kioskId ?? null, f.orderId ?? null, f.state ?? null, page.beforeSeq ?? null, page.limit],
    );
    return rows;
  },

  async toProcessing(db: Db, id: string, paymentMethod: string): Promise<IntentRow> {
    const { rows } = await db.query<IntentRow>(
      `UPDATE payment_intents SET state = 'processing', payment_method = $2, processing_since = now(), updated_at = now()
       WHERE id = $1 RETURNING *`,
      [id, paymentMethod],
    );
    return rows[0]!;
  },

  async setState(db: Db, id: string, state: IntentState, fields: { failureCode?: string; failureMessage?: string; cancellationReason?: string } = {}): Promise<IntentRow> {
    const { rows } = await db.query<IntentRow>(
      `UPDATE payment_intents SET state = $2, failure_code = COALESCE($3, failure_code), failure_message = COALESCE($4, failure_message),
         cancellation_reason = COALESCE($5, cancellation_reason), updated_at = now()
       WHERE id = $1 RETURNING *`,
      [id, state, fields.failureCode ?? null, fields.failureMessage ?? null, fields.cancellationReason ?? null],
    );
    return rows[0]!;
  },

  /** PROCESSING → SUCCEEDED with its charge, in one statement (the caller holds the row's lock). */
  /**
   * A processing intent (locked by the caller) succeeded: the change and its event in one
   * statement, the event built from the row as the change leaves it (its own timestamp).
   */
  async succeedWithEvent(tx: PoolClient, locked: IntentRow, chargeId: string, event: (row: IntentRow) => OutboxEvent): Promise<IntentRow> {
    const now = new Date();
    const expected: IntentRow = { ...locked, provider_charge_id: locked.provider_charge_id ?? chargeId, state: "succeeded", updated_at: now };
    const [row] = await changeWithEvent<IntentRow, DescMessage>(
      tx,
      { text: "UPDATE payment_intents SET provider_charge_id = COALESCE(provider_charge_id, $2), state = 'succeeded', updated_at = $3 WHERE id = $1 RETURNING *", values: [locked.id, chargeId, now] },
      event(expected),
    );
    if (!row) throw new Error(`payment intent ${locked.id} vanished`);
    return row;
  },

  /**
   * The provider's answer to a charge job, in one statement: the charge id recorded, the job
   * done, and, when the intent ended (timed out, canceled) while the call was on its way, a job
   * voiding the charge queued (and the workers woken at commit).
   */
  async chargeSubmitted(db: Db, id: string, chargeId: string, jobId: string): Promise<void> {
    await db.query(
      `WITH charged AS (
         UPDATE payment_intents SET provider_charge_id = COALESCE(provider_charge_id, $2), updated_at = now() WHERE id = $1 RETURNING id, state
       ), void_it AS (
         INSERT INTO provider_jobs (kind, intent_id, traceparent) SELECT 'cancel_charge', id, $4::text FROM charged WHERE state IN ('failed', 'canceled') RETURNING 1
       ), done AS (
         UPDATE provider_jobs SET done_at = now(), last_error = '' WHERE id = $3
       )
       SELECT (SELECT pg_notify('payments_provider_jobs', '') FROM void_it) AS woke`,
      [id, chargeId, jobId, currentTraceparent() ?? null],
    );
  },

  async setChargeId(db: Db, id: string, chargeId: string): Promise<IntentRow> {
    const { rows } = await db.query<IntentRow>(
      "UPDATE payment_intents SET provider_charge_id = COALESCE(provider_charge_id, $2), updated_at = now() WHERE id = $1 RETURNING *",
      [id, chargeId],
    );
    return rows[0]!;
  },

  async addRefunded(db: Db, id: string, amountMinor: bigint): Promise<IntentRow> {
    const { rows } = await db.query<IntentRow>(
      `UPDATE payment_intents SET refunded_minor = refunded_minor + $2,
         state = CASE WHEN refunded_minor + $2 = amount_minor THEN 'refunded' ELSE 'partially_refunded' END, updated_at = now()
       WHERE id = $1 RETURNING *`,
      [id, amountMinor.toString()],
    );
    return rows[0]!;
  },

  /** PROCESSING past the timeout, locked, oldest first; other replicas skip them. */
  async timedOut(db: PoolClient, timeoutMs: number, limit: number): Promise<IntentRow[]> {
    const { rows } = await db.query<IntentRow>(
      `SELECT * FROM payment_intents WHERE state = 'processing' AND processing_since < now() - $1 * interval '1 millisecond'
       ORDER BY processing_since LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [timeoutMs, limit],
    );
    return rows;
  },

  /** PROCESSING for longer than `olderThanMs`, oldest first, not locked (the reconciler asks the provider about them). */
  async processingLongerThan(db: Db, olderThanMs: number, limit: number): Promise<IntentRow[]> {
    const { rows } = await db.query<IntentRow>(
      "SELECT * FROM payment_intents WHERE state = 'processing' AND processing_since < now() - $1 * interval '1 millisecond' ORDER BY processing_since LIMIT $2",
      [olderThanMs, limit],
    );
    return rows;
  },

  async countProcessing(db: Db): Promise<number> {
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM payment_intents WHERE state = 'processing'");
    return Number(rows[0]?.n ?? 0);
  },
};

export const refunds = {
  async insert(db: Db, r: { intentId: string; amountMinor: bigint; currency: string; reason: string; requestedBy: string; automatic: boolean }): Promise<RefundRow> {
    const { rows } = await db.query<RefundRow>(
      `INSERT INTO refunds (intent_id, amount_minor, currency, reason, state, requested_by, automatic)
       VALUES ($1, $2, $3, $4, 'pending', $5, $6) RETURNING *`,
      [r.intentId, r.amountMinor.toString(), r.currency, r.reason, r.requestedBy, r.automatic],
    );
    return rows[0]!;
  },

  async byId(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<RefundRow | undefined> {
    const { rows } = await db.query<RefundRow>(`SELECT * FROM refunds WHERE id = $1${opts.forUpdate ? " FOR UPDATE" : ""}`, [id]);
    return rows[0];
  },

  async ofIntent(db: Db, intentId: string): Promise<RefundRow[]> {
    const { rows } = await db.query<RefundRow>("SELECT * FROM refunds WHERE intent_id = $1 ORDER BY created_at, id", [intentId]);
    return rows;
  },

  /** What customer refunds (not automatic ones) have confirmed or hold: the intent's refundable amount is what is left. */
  async committedMinor(db: Db, intentId: string): Promise<bigint> {
    const { rows } = await db.query<{ total: string }>(
      "SELECT COALESCE(sum(amount_minor), 0) AS total FROM refunds WHERE intent_id = $1 AND NOT automatic AND state IN ('pending', 'succeeded')",
      [intentId],
    );
    return BigInt(rows[0]?.total ?? "0");
  },

  async setState(db: Db, id: string, state: RefundState, failureCode = ""): Promise<RefundRow> {
    const { rows } = await db.query<RefundRow>("UPDATE refunds SET state = $2, failure_code = $3, updated_at = now() WHERE id = $1 RETURNING *", [id, state, failureCode]);
    return rows[0]!;
  },

  async setProviderId(db: Db, id: string, providerRefundId: string): Promise<void> {
    await db.query("UPDATE refunds SET provider_refund_id = COALESCE(provider_refund_id, $2), updated_at = now() WHERE id = $1", [id, providerRefundId]);
  },
};

/** How long a claimed job is left alone before another worker may try it again. */
const leaseSeconds = 60;

export const jobs = {
  async enqueue(db: Db, kind: JobRow["kind"], intentId: string, refundId?: string): Promise<void> {
    await db.query("INSERT INTO provider_jobs (kind, intent_id, refund_id, traceparent) VALUES ($1, $2, $3, $4)", [kind, intentId, refundId ?? null, currentTraceparent() ?? null]);
    // Wakes the provider workers of every replica at commit.
    await db.query("NOTIFY payments_provider_jobs");
  },

  /** Due jobs, leased to this worker (attempts counted) so other replicas skip them. */
  async claim(db: Db, limit: number): Promise<JobRow[]> {
    const { rows } = await db.query<JobRow>(
      `WITH claimed AS (
         UPDATE provider_jobs SET attempts = attempts + 1, next_attempt_at = now() + $2 * interval '1 second'
         WHERE id IN (SELECT id FROM provider_jobs WHERE done_at IS NULL AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id, kind, intent_id, refund_id, attempts, traceparent, next_attempt_at
       )
       SELECT c.id, c.kind, c.intent_id, c.refund_id, c.attempts, c.traceparent,
         CASE WHEN c.kind = 'charge' AND i.id IS NOT NULL THEN json_build_object('state', i.state, 'amount_minor', i.amount_minor::text, 'currency', i.currency,
           'payment_method', i.payment_method, 'description', i.description) END AS charge
       FROM claimed c LEFT JOIN payment_intents i ON i.id = c.intent_id
       ORDER BY c.next_attempt_at`,
      [limit, leaseSeconds],
    );
    return rows;
  },

  async done(db: Db, id: string, note = ""): Promise<void> {
    await db.query("UPDATE provider_jobs SET done_at = now(), last_error = $2 WHERE id = $1", [id, note]);
  },

  async retryLater(db: Db, id: string, delayMs: number, error: string): Promise<void> {
    await db.query("UPDATE provider_jobs SET next_attempt_at = now() + $2 * interval '1 millisecond', last_error = $3 WHERE id = $1", [id, delayMs, error]);
  },

  async countPending(db: Db): Promise<number> {
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM provider_jobs WHERE done_at IS NULL");
    return Number(rows[0]?.n ?? 0);
  },
};

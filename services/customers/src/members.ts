// Loyalty members: enrollment, what a kiosk scanned, consents, points earned once per completed
// order and redeemed at a kiosk, purchase history, export and erasure. SQL for members lives here.
import { inTransaction, failedPrecondition, notFound, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { forgetContacts } from "./back-in-stock.js";
import { newCardNumber, newQrToken, scannedField, type ScannedMember } from "./contacts.js";

type Db = Pool | PoolClient;

export interface MemberRow {
  member_id: string;
  card_number: string | null;
  qr_token: string | null;
  email: string | null;
  phone: string | null;
  points_balance: string;
  enrolled_kiosk_id: string;
  created_at: Date;
  last_activity_at: Date;
  erased_at: Date | null;
}
export interface ConsentRow {
  purpose: ConsentPurposeName;
  granted: boolean;
  recorded_by: string;
  recorded_at: Date;
}
export interface LedgerRow {
  entry_id: string;
  kind: "earn" | "redeem";
  points: string;
  order_id: string | null;
  kiosk_id: string;
  balance_after: string;
  created_at: Date;
}
export interface PurchaseRow {
  order_id: string;
  kiosk_id: string;
  attached_at: Date;
  total_minor: string | null;
  currency: string | null;
  lines: { sku: string; quantity: string; total_minor: string }[] | null;
  completed_at: Date | null;
}

export type ConsentPurposeName = "loyalty" | "marketing_email" | "marketing_sms";

const memberColumns = "member_id, card_number, qr_token, email, phone, points_balance, enrolled_kiosk_id, created_at, last_activity_at, erased_at";

/** Points for an order's total: whole multiples of `minorPerPoint`. */
export const pointsFor = (totalMinor: bigint, minorPerPoint: number): bigint => (totalMinor > 0n ? totalMinor / BigInt(minorPerPoint) : 0n);

export async function enroll(
  pool: Pool,
  m: { email?: string; phone?: string; kioskId: string; consents: ConsentPurposeName[]; recordedBy: string },
): Promise<MemberRow> {
  return inTransaction(pool, async (tx) => {
    // A fresh random card number colliding is a one-in-10^13 event: try again rather than fail.
    for (;;) {
      const { rows } = await tx.query<MemberRow>(
        `INSERT INTO members (card_number, qr_token, email, phone, enrolled_kiosk_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING RETURNING ${memberColumns}`,
        [newCardNumber(), newQrToken(), m.email ?? null, m.phone ?? null, m.kioskId],
      );
      const member = rows[0];
      if (!member) continue;
      for (const purpose of new Set(m.consents)) await addConsent(tx, member.member_id, purpose, true, m.recordedBy);
      return member;
    }
  });
}

/** The member a kiosk scanned; an unknown (or erased) one is FailedPrecondition naming the field. */
export async function scanned(db: Db, field: string, s: ScannedMember, lock = false): Promise<MemberRow> {
  const [column, value] = "cardNumber" in s ? ["card_number", s.cardNumber] : ["qr_token", s.qrToken];
  const { rows } = await db.query<MemberRow>(`SELECT ${memberColumns} FROM members WHERE ${column} = $1${lock ? " FOR UPDATE" : ""}`, [value]);
  if (!rows[0]) throw failedPrecondition(`${scannedField(field, s)}: no loyalty member has this ${"cardNumber" in s ? "card" : "QR code"}`);
  return rows[0];
}

export async function byId(db: Db, memberId: string): Promise<MemberRow> {
  const { rows } = await db.query<MemberRow>(`SELECT ${memberColumns} FROM members WHERE member_id = $1`, [memberId]);
  if (!rows[0]) throw notFound(`member ${memberId} not found`);
  return rows[0];
}

export async function addConsent(tx: Db, memberId: string, purpose: ConsentPurposeName, granted: boolean, recordedBy: string): Promise<ConsentRow> {
  const { rows } = await tx.query<ConsentRow>(
    `WITH touched AS (UPDATE members SET last_activity_at = now() WHERE member_id = $1)
     INSERT INTO consents (member_id, purpose, granted, recorded_by) VALUES ($1, $2, $3, $4) RETURNING purpose, granted, recorded_by, recorded_at`,
    [memberId, purpose, granted, recordedBy],
  );
  return rows[0]!;
}

/**
 * Serialises the two ways an order's points can be granted (the kiosk attaching a member, orders'
 * completion event) for one order: without it each could commit without seeing the other's row.
 */
export async function lockOrder(tx: PoolClient, orderId: string): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('customers.order'), hashtext($1))", [orderId]);
}

/**
 * Grants the order's points once, if both its member (attached) and its sale (completed) are
 * known; whichever arrives second grants. The unique earn-per-order index makes a second grant
 * impossible, also when both arrive at once in two transactions (the member row lock orders them).
 */
export async function grantPoints(tx: PoolClient, orderId: string, minorPerPoint: number): Promise<boolean> {
  const { rows } = await tx.query<{ member_id: string; kiosk_id: string; total_minor: string }>(
    `SELECT mo.member_id, s.kiosk_id, s.total_minor FROM member_orders mo JOIN sales s USING (order_id)
     WHERE mo.order_id = $1 AND mo.kiosk_id = s.kiosk_id`,
    [orderId],
  );
  const match = rows[0];
  if (!match) return false;
  const points = pointsFor(BigInt(match.total_minor), minorPerPoint);
  const member = await tx.query<{ points_balance: string }>("SELECT points_balance FROM members WHERE member_id = $1 FOR UPDATE", [match.member_id]);
  const already = await tx.query("SELECT 1 FROM points_ledger WHERE order_id = $1 AND kind = 'earn'", [orderId]);
  if (already.rowCount || points <= 0n) return false;
  const balance = BigInt(member.rows[0]!.points_balance) + points;
  await tx.query(
    `INSERT INTO points_ledger (member_id, kind, points, order_id, kiosk_id, balance_after) VALUES ($1, 'earn', $2, $3, $4, $5)`,
    [match.member_id, points.toString(), orderId, match.kiosk_id, balance.toString()],
  );
  await tx.query("UPDATE members SET points_balance = $2, last_activity_at = now() WHERE member_id = $1", [match.member_id, balance.toString()]);
  return true;
}

/** Attaches a member to one of the kiosk's orders; grants the points at once if the order already completed. */
export async function attach(pool: Pool, field: string, s: ScannedMember, orderId: string, kioskId: string, minorPerPoint: number) {
  return inTransaction(pool, async (tx) => {
    const member = await scanned(tx, field, s);
    await lockOrder(tx, orderId);
    const { rows } = await tx.query<{ member_id: string; kiosk_id: string }>(
      `INSERT INTO member_orders (order_id, member_id, kiosk_id) VALUES ($1, $2, $3)
       ON CONFLICT (order_id) DO UPDATE SET order_id = EXCLUDED.order_id RETURNING member_id, kiosk_id`,
      [orderId, member.member_id, kioskId],
    );
    const stored = rows[0]!;
    // Another kiosk's order id (guessed or stolen) is not this kiosk's to attach to.
    if (stored.kiosk_id !== kioskId) throw notFound(`order ${orderId} not found`);
    if (stored.member_id !== member.member_id) throw failedPrecondition(`order_id: order ${orderId} already has another member`);
    const { rows: sale } = await tx.query<{ kiosk_id: string }>("SELECT kiosk_id FROM sales WHERE order_id = $1", [orderId]);
    if (sale[0] && sale[0].kiosk_id !== kioskId) throw notFound(`order ${orderId} not found`);
    const granted = await grantPoints(tx, orderId, minorPerPoint);
    return { member: granted ? await byId(tx, member.member_id) : member, granted };
  });
}

/** Takes points from the balance; more than it holds is FailedPrecondition naming `points`. Runs inside the idempotency claim's transaction. */
export async function redeem(tx: PoolClient, field: string, s: ScannedMember, points: bigint, kioskId: string, orderId: string | undefined) {
  const member = await scanned(tx, field, s, true);
  const balance = BigInt(member.points_balance);
  if (points > balance) throw failedPrecondition(`points: ${points} is more than the member's balance of ${balance}`);
  const after = balance - points;
  const { rows } = await tx.query<LedgerRow>(
    `INSERT INTO points_ledger (member_id, kind, points, order_id, kiosk_id, balance_after) VALUES ($1, 'redeem', $2, $3, $4, $5)
     RETURNING entry_id, kind, points, order_id, kiosk_id, balance_after, created_at`,
    [member.member_id, (-points).toString(), orderId ?? null, kioskId, after.toString()],
  );
  await tx.query("UPDATE members SET points_balance = $2, last_activity_at = now() WHERE member_id = $1", [member.member_id, after.toString()]);
  return { entry: rows[0]!, balance: after };
}

export async function search(pool: Pool, query: string, limit: number, after?: { createdAt: string; memberId: string }): Promise<MemberRow[]> {
  const params: unknown[] = [];
  const clauses = ["true"];
  const q = query.trim();
  if (q !== "") {
    const digits = q.replace(/[\s()-]/g, "");
    const i = params.push(q.toLowerCase());
    const j = params.push(digits);
    clauses.push(`(email = $${i} OR card_number = $${j} OR phone = $${j} OR member_id::text LIKE $${params.push(`${q.toLowerCase().replace(/[%_]/g, "")}%`)})`);
  }
  if (after) clauses.push(`(created_at, member_id) < ($${params.push(after.createdAt)}::timestamptz, $${params.push(after.memberId)}::uuid)`);
  const { rows } = await pool.query<MemberRow>(
    `SELECT ${memberColumns} FROM members WHERE ${clauses.join(" AND ")} ORDER BY created_at DESC, member_id DESC LIMIT $${params.push(limit)}`,
    params,
  );
  return rows;
}

/** Everything kept about a member: consents, ledger, purchases (with the sale when known). */
export async function details(db: Db, memberId: string) {
  const member = await byId(db, memberId);
  const [consents, ledger, purchases] = await Promise.all([
    db.query<ConsentRow>("SELECT purpose, granted, recorded_by, recorded_at FROM consents WHERE member_id = $1 ORDER BY recorded_at, consent_id", [memberId]),
    db.query<LedgerRow>("SELECT entry_id, kind, points, order_id, kiosk_id, balance_after, created_at FROM points_ledger WHERE member_id = $1 ORDER BY entry_id", [memberId]),
    db.query<PurchaseRow>(
      `SELECT mo.order_id, mo.kiosk_id, mo.attached_at, s.total_minor, s.currency, s.lines, s.completed_at
       FROM member_orders mo LEFT JOIN sales s ON s.order_id = mo.order_id AND s.kiosk_id = mo.kiosk_id
       WHERE mo.member_id = $1 ORDER BY mo.attached_at DESC`,
      [memberId],
    ),
  ]);
  return { member, consents: consents.rows, ledger: ledger.rows, purchases: purchases.rows };
}

/**
 * Erasure: the personal data goes (email, phone, the identifiers a kiosk scans, who recorded
 * consents), the rows that make the books stay — the ledger and the orders, now of an anonymous
 * member. Erasing again changes nothing.
 */
export async function erase(pool: Pool, memberId: string): Promise<MemberRow> {
  return inTransaction(pool, async (tx) => {
    const member = await byId(tx, memberId);
    if (member.erased_at) return member;
    await forgetContacts(tx, [member.email, member.phone].filter((c): c is string => !!c));
    await tx.query("UPDATE consents SET recorded_by = '' WHERE member_id = $1", [memberId]);
    const { rows } = await tx.query<MemberRow>(
      `UPDATE members SET card_number = NULL, qr_token = NULL, email = NULL, phone = NULL, enrolled_kiosk_id = '', erased_at = now()
       WHERE member_id = $1 RETURNING ${memberColumns}`,
      [memberId],
    );
    return rows[0]!;
  });
}

/** Retention: members inactive past the limit are erased; returns how many. */
export async function eraseInactive(pool: Pool, retentionMs: number): Promise<number> {
  if (retentionMs <= 0) return 0;
  const { rows } = await pool.query<{ member_id: string }>(
    "SELECT member_id FROM members WHERE erased_at IS NULL AND last_activity_at < now() - make_interval(secs => $1::double precision / 1000) LIMIT 1000",
    [retentionMs],
  );
  for (const r of rows) await erase(pool, r.member_id);
  return rows.length;
}

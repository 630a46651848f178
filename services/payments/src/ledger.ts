// The double-entry ledger. Every money movement is one transaction of entries that sum
// to zero per currency (debits positive, credits negative); PostgreSQL checks that at
// commit and refuses changes to posted entries.
//
//   capture               provider_clearing +X   sales:<kiosk>   -X   the provider owes us the sale
//   refund                refunds:<kiosk>   +R   provider_clearing -R  given back to the customer
//   late_capture          provider_clearing +X   late_captures   -X   captured after the intent failed: owed back
//   late_capture_refund   late_captures     +X   provider_clearing -X  ... and given back
import type { Pool, PoolClient } from "@adminkiosk/runtime";

export type LedgerKind = "capture" | "refund" | "late_capture" | "late_capture_refund";

export const accounts = {
  providerClearing: "provider_clearing",
  sales: (kioskId: string) => `sales:${kioskId}`,
  refunds: (kioskId: string) => `refunds:${kioskId}`,
  lateCaptures: "late_captures",
};

/** One posting: `debit` gains `amount`, `credit` loses it. */
export async function post(
  tx: PoolClient,
  t: { kind: LedgerKind; intentId: string; refundId?: string; currency: string; amountMinor: bigint; debit: string; credit: string },
): Promise<void> {
  if (t.amountMinor <= 0n) throw new Error(`ledger: a ${t.kind} must move a positive amount`);
  // The transaction and its two entries in one statement. Posted once per intent (capture) or
  // refund: a repeat is a bug upstream, and fails here.
  await tx.query(
    `WITH t AS (INSERT INTO ledger_transactions (kind, intent_id, refund_id) VALUES ($1, $2, $3) RETURNING id)
     INSERT INTO ledger_entries (transaction_id, account, currency, amount_minor)
     SELECT t.id, e.account, $6, e.amount FROM t, (VALUES ($4, $7::bigint), ($5, -$7::bigint)) AS e(account, amount)`,
    [t.kind, t.intentId, t.refundId ?? null, t.debit, t.credit, t.currency, t.amountMinor.toString()],
  );
}

export interface BalanceRow {
  account: string;
  currency: string;
  balance: string;
}

export async function balances(db: Pool): Promise<BalanceRow[]> {
  const { rows } = await db.query<BalanceRow>(
    "SELECT account, currency, sum(amount_minor)::bigint AS balance FROM ledger_entries GROUP BY account, currency ORDER BY account, currency",
  );
  return rows;
}

export interface EntryRow {
  id: string;
  transaction_id: string;
  kind: LedgerKind;
  account: string;
  currency: string;
  amount_minor: string;
  intent_id: string;
  refund_id: string | null;
  created_at: Date;
}

export async function entries(db: Pool, f: { intentId?: string; account?: string }, page: { limit: number; afterId?: string }): Promise<EntryRow[]> {
  const { rows } = await db.query<EntryRow>(
    `SELECT e.id, e.transaction_id, t.kind, e.account, e.currency, e.amount_minor, t.intent_id, t.refund_id, e.created_at
     FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
     WHERE ($1::uuid IS NULL OR t.intent_id = $1) AND ($2::text IS NULL OR e.account = $2) AND ($3::bigint IS NULL OR e.id > $3)
     ORDER BY e.id LIMIT $4`,
    [f.intentId ?? null, f.account ?? null, page.afterId ?? null, page.limit],
  );
  return rows;
}

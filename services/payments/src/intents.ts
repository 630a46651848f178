// The rules of a payment intent's life, each run inside the caller's transaction:
//
//   requires_payment ──confirm──► processing ──charge.succeeded──► succeeded ──refunds──► partially_refunded ─► refunded
//          │                          │ charge.failed / provider rejected / timeout
//          └──cancel──► canceled      └──► failed   (a capture confirmed after this is refunded automatically)
//
// Every outcome is posted to the ledger and published (outbox) in the same transaction.
import { aborted, alreadyExists, cursorPatterns, failedPrecondition, invalid, type Logger, type PoolClient } from "@adminkiosk/runtime";
import { publish, succeededEvent } from "./events.js";
import { accounts, post } from "./ledger.js";
import type { PaymentsMetrics } from "./metrics.js";
import type { ProviderEvent } from "./provider.js";
import { intents, jobs, refunds, type IntentRow, type NewIntent, type RefundRow } from "./store.js";

// References come from the provider: ours are UUIDs, anything else names nothing of ours.
const isUuid = (v: string) => cursorPatterns.uuid.test(v);

export async function createIntent(tx: PoolClient, input: NewIntent & { paymentMethod: string }): Promise<IntentRow> {
  // One statement: the intent (confirmed at once with a payment method, its charge job queued),
  // unless the order already has a live one (the partial unique index decides, races included).
  const row = await intents.insertUnlessLive(tx, input);
  if (row) return row;
  const live = await intents.liveForOrder(tx, input.kioskId, input.orderId);
  if (live) throw alreadyPaying(input.orderId, live);
  // The live one ended between the two statements: the caller may retry.
  throw aborted(`order ${input.orderId} had a payment intent that just ended; retry`);
}

function alreadyPaying(orderId: string, live: IntentRow) {
  return alreadyExists(`order ${orderId} already has payment intent ${live.id} (${live.state})`);
}

/** Submits the charge: the provider worker makes the call (with the intent id as its idempotency key). */
export async function confirmIntent(tx: PoolClient, intent: IntentRow, paymentMethod: string): Promise<IntentRow> {
  if (intent.state !== "requires_payment") throw wrongState(intent, "confirmed", "requires payment");
  const row = await intents.toProcessing(tx, intent.id, paymentMethod);
  await jobs.enqueue(tx, "charge", intent.id);
  return row;
}

export async function cancelIntent(tx: PoolClient, intent: IntentRow, reason: string): Promise<IntentRow> {
  if (intent.state !== "requires_payment") throw wrongState(intent, "canceled", "requires payment (refund it once it has succeeded)");
  const row = await intents.setState(tx, intent.id, "canceled", { cancellationReason: reason });
  await publish.canceled(tx, row);
  return row;
}

export async function requestRefund(
  tx: PoolClient,
  intent: IntentRow,
  request: { amountMinor: bigint | undefined; reason: string; requestedBy: string },
): Promise<RefundRow> {
  if (intent.state !== "succeeded" && intent.state !== "partially_refunded") throw wrongState(intent, "refunded", "has succeeded");
  const left = BigInt(intent.amount_minor) - (await refunds.committedMinor(tx, intent.id));
  if (left <= 0n) throw failedPrecondition(`payment intent ${intent.id} is already refunded in full (or its refunds are pending)`);
  const amountMinor = request.amountMinor ?? left;
  if (amountMinor > left) throw invalid("amount_minor", `is more than what is left to refund (${left})`);
  const refund = await refunds.insert(tx, { intentId: intent.id, amountMinor, currency: intent.currency, reason: request.reason, requestedBy: request.requestedBy, automatic: false });
  await jobs.enqueue(tx, "refund", intent.id, refund.id);
  return refund;
}

function wrongState(intent: IntentRow, verb: string, needed: string) {
  return failedPrecondition(`payment intent ${intent.id} is ${intent.state}; it can be ${verb} only while it ${needed}`);
}

/** PROCESSING → FAILED, published; a charge the provider may still hold is voided. */
export async function failIntent(tx: PoolClient, intent: IntentRow, failureCode: string, failureMessage: string, opts: { voidCharge: boolean }): Promise<IntentRow> {
  const row = await intents.setState(tx, intent.id, "failed", { failureCode, failureMessage });
  await publish.failed(tx, row);
  if (opts.voidCharge && row.provider_charge_id) await jobs.enqueue(tx, "cancel_charge", row.id);
  return row;
}

/** What applying a provider event did, for the logs and the webhook metric. */
export type EventOutcome = "applied" | "late_capture_refunding" | "ignored" | "unknown_object" | "mismatch";

export interface Applied {
  outcome: EventOutcome;
  intent?: IntentRow;
  /** The state the intent entered, when the event moved it. */
  entered?: IntentRow["state"];
}

/**
 * What follows a provider event applied and committed, however it came (webhook or the
 * reconciler's lookup): the intent's transition counted, and a late capture's refund started.
 */
export function afterProviderEvent(applied: Applied, deps: { metrics: PaymentsMetrics; wakeProviderWorker: () => void }): void {
  if (applied.entered && applied.intent) {
    deps.metrics.transitions.inc({ state: applied.entered });
    if (applied.entered === "failed") deps.metrics.failures.inc({ code: applied.intent.failure_code });
  }
  if (applied.outcome === "late_capture_refunding") deps.wakeProviderWorker();
}

export async function applyProviderEvent(tx: PoolClient, event: ProviderEvent, log: Logger): Promise<Applied> {
  switch (event.type) {
    case "charge.succeeded":
    case "charge.failed":
    case "charge.canceled":
      return applyChargeEvent(tx, event, log);
    case "refund.succeeded":
    case "refund.failed":
      return applyRefundEvent(tx, event, log);
    case "ignored":
      return { outcome: "ignored" };
  }
}

async function applyChargeEvent(tx: PoolClient, event: Extract<ProviderEvent, { type: `charge.${string}` }>, log: Logger): Promise<Applied> {
  const intent = isUuid(event.reference) ? await intents.byId(tx, event.reference, { forUpdate: true }) : undefined;
  if (!intent) return { outcome: "unknown_object" };
  if (
    (intent.provider_charge_id !== null && intent.provider_charge_id !== event.chargeId) ||
    BigInt(intent.amount_minor) !== event.amountMinor ||
    intent.currency !== event.currency
  ) {
    log.error({ intentId: intent.id, chargeId: event.chargeId, eventId: event.eventId }, "provider event does not match the intent; not applied");
    return { outcome: "mismatch" };
  }
  if (event.type === "charge.succeeded") {
    if (intent.state === "processing") {
      const row = await intents.succeedWithEvent(tx, intent, event.chargeId, succeededEvent);
      await post(tx, { kind: "capture", intentId: row.id, currency: row.currency, amountMinor: BigInt(row.amount_minor), debit: accounts.providerClearing, credit: accounts.sales(row.kiosk_id) });
      return { outcome: "applied", intent: row, entered: row.state };
    }
    if (intent.state === "failed" || intent.state === "canceled") return lateCapture(tx, intent, event.chargeId, log);
    return { outcome: "ignored", intent };
  }
  if (intent.state !== "processing") return { outcome: "ignored", intent };
  await intents.setChargeId(tx, intent.id, event.chargeId);
  const row =
    event.type === "charge.failed"
      ? await failIntent(tx, intent, event.failureCode || "card_declined", event.failureMessage || "the provider declined the charge", { voidCharge: false })
      : await failIntent(tx, intent, "canceled_by_provider", "the provider canceled the charge", { voidCharge: false });
  return { outcome: "applied", intent: row, entered: row.state };
}

/**
 * The provider captured money for an intent that had already failed (confirmed after the
 * timeout) or was canceled. The intent stays as it is, so nothing downstream completes an
 * order that was given up; the money is booked as owed back and refunded automatically.
 */
async function lateCapture(tx: PoolClient, intent: IntentRow, chargeId: string, log: Logger): Promise<Applied> {
  const already = await tx.query("SELECT 1 FROM refunds WHERE intent_id = $1 AND automatic", [intent.id]);
  if (already.rowCount) return { outcome: "ignored", intent };
  const row = await intents.setChargeId(tx, intent.id, chargeId);
  const amountMinor = BigInt(row.amount_minor);
  await post(tx, { kind: "late_capture", intentId: row.id, currency: row.currency, amountMinor, debit: accounts.providerClearing, credit: accounts.lateCaptures });
  const refund = await refunds.insert(tx, {
    intentId: row.id,
    amountMinor,
    currency: row.currency,
    reason: `automatic: captured after the payment ${row.state}${row.failure_code ? ` (${row.failure_code})` : ""}`,
    requestedBy: "payments",
    automatic: true,
  });
  await jobs.enqueue(tx, "refund", row.id, refund.id);
  log.warn({ intentId: row.id, chargeId, refundId: refund.id }, "late capture: refunding automatically");
  return { outcome: "late_capture_refunding", intent: row };
}

async function applyRefundEvent(tx: PoolClient, event: Extract<ProviderEvent, { type: `refund.${string}` }>, log: Logger): Promise<Applied> {
  const found = isUuid(event.reference) ? await refunds.byId(tx, event.reference) : undefined;
  if (!found) return { outcome: "unknown_object" };
  // Intent first, then refund: the order RefundPayment locks them in.
  const intent = (await intents.byId(tx, found.intent_id, { forUpdate: true }))!;
  const refund = (await refunds.byId(tx, found.id, { forUpdate: true }))!;
  if (BigInt(refund.amount_minor) !== event.amountMinor || (refund.provider_refund_id !== null && refund.provider_refund_id !== event.refundId)) {
    log.error({ refundId: refund.id, eventId: event.eventId }, "provider event does not match the refund; not applied");
    return { outcome: "mismatch" };
  }
  if (refund.state !== "pending") return { outcome: "ignored", intent };
  await refunds.setProviderId(tx, refund.id, event.refundId);
  if (event.type === "refund.failed") {
    await refunds.setState(tx, refund.id, "failed", event.failureCode || "refund_failed");
    if (refund.automatic) log.error({ intentId: intent.id, refundId: refund.id }, "automatic refund of a late capture failed: needs a person");
    return { outcome: "applied", intent };
  }
  const done = await refunds.setState(tx, refund.id, "succeeded");
  const amountMinor = BigInt(refund.amount_minor);
  if (refund.automatic) {
    await post(tx, { kind: "late_capture_refund", intentId: intent.id, refundId: refund.id, currency: refund.currency, amountMinor, debit: accounts.lateCaptures, credit: accounts.providerClearing });
    return { outcome: "applied", intent };
  }
  await post(tx, { kind: "refund", intentId: intent.id, refundId: refund.id, currency: refund.currency, amountMinor, debit: accounts.refunds(intent.kiosk_id), credit: accounts.providerClearing });
  const row = await intents.addRefunded(tx, intent.id, amountMinor);
  await publish.refunded(tx, row, done);
  return { outcome: "applied", intent: row, entered: row.state };
}

// The reconciler: intents PROCESSING longer than PAYMENT_RECONCILE_AFTER are looked up at the
// provider (GET /v1/charges?reference=<intent id>), and a charge it reports settled is applied
// exactly as its webhook would be (applyProviderEvent: the same state change, ledger posting
// and outbox event, idempotent under the intent's row lock). It repairs a webhook the provider
// gave up delivering, and an intent a point-in-time restore took back to PROCESSING after its
// success (orders, redelivered payments.intent.succeeded from JetStream, completed the order).
// A charge still pending, or none at all (the charge job has not reached the provider), is left
// to the provider worker and the confirmation sweeper, which asks here first before it times
// an intent out.
import { inTransaction, type Logger, type Pool } from "@adminkiosk/runtime";
import { afterProviderEvent, applyProviderEvent } from "./intents.js";
import type { PaymentsMetrics } from "./metrics.js";
import type { PaymentProvider, ProviderCharge, ProviderEvent } from "./provider.js";
import { intents, type IntentRow } from "./store.js";

/** How many intents one pass asks about (oldest first). */
const batch = 100;

export type ReconcileOutcome = "succeeded" | "failed" | "canceled" | "late_capture_refunding" | "pending" | "no_charge" | "unchanged" | "mismatch" | "unreachable";

export interface ReconcileDeps {
  pool: Pool;
  provider: PaymentProvider;
  metrics: PaymentsMetrics;
  log: Logger;
  wakeProviderWorker: () => void;
  signal?: AbortSignal;
}

/**
 * Asks the provider about the intents PROCESSING longer than `olderThanMs` and applies what it
 * reports settled. Stops at the first call that fails (the provider is down: the next pass, or
 * the timeout, deals with the rest). Returns each intent's outcome.
 */
export async function reconcileProcessing(deps: ReconcileDeps, olderThanMs: number): Promise<Map<string, ReconcileOutcome>> {
  const outcomes = new Map<string, ReconcileOutcome>();
  for (const intent of await intents.processingLongerThan(deps.pool, olderThanMs, batch)) {
    if (deps.signal?.aborted) break;
    const outcome = await reconcileIntent(deps, intent);
    outcomes.set(intent.id, outcome);
    if (outcome === "unreachable") break;
  }
  return outcomes;
}

async function reconcileIntent(deps: ReconcileDeps, intent: IntentRow): Promise<ReconcileOutcome> {
  const { pool, provider, metrics, log } = deps;
  let charges: ProviderCharge[];
  try {
    charges = (await provider.chargesFor(intent.id, deps.signal)).filter((c) => c.reference === intent.id);
  } catch (err) {
    metrics.reconciled.inc({ outcome: "unreachable" });
    log.warn({ intentId: intent.id, err }, "reconcile: could not ask the provider; will retry");
    return "unreachable";
  }
  const charge = chargeOf(intent, charges);
  if (!charge || charge.status === "pending") {
    const outcome = charges.length > 0 ? "pending" : "no_charge";
    metrics.reconciled.inc({ outcome });
    log.debug({ intentId: intent.id, chargeId: charge?.chargeId, outcome }, "reconcile: not settled at the provider");
    return outcome;
  }
  const event: ProviderEvent = {
    // Not a provider event id (GET answers carry none): names the answer it came from in the logs.
    eventId: `reconcile:${charge.chargeId}:${charge.status}`,
    type: `charge.${charge.status}`,
    chargeId: charge.chargeId,
    reference: charge.reference,
    amountMinor: charge.amountMinor,
    currency: charge.currency,
    failureCode: charge.failureCode,
    failureMessage: charge.failureMessage,
  };
  const applied = await inTransaction(pool, (tx) => applyProviderEvent(tx, event, log));
  const outcome: ReconcileOutcome =
    applied.outcome === "applied" ? charge.status : applied.outcome === "late_capture_refunding" || applied.outcome === "mismatch" ? applied.outcome : "unchanged";
  metrics.reconciled.inc({ outcome });
  afterProviderEvent(applied, deps);
  log.info({ intentId: intent.id, chargeId: charge.chargeId, providerStatus: charge.status, outcome }, "reconciled a processing intent with the provider");
  return outcome;
}

/**
 * The intent's charge among the provider's for its reference: the one it recorded; else a
 * succeeded one (money was taken: it must be booked); else the only one. Several unsettled
 * charges and none recorded (the provider forgot a key and the job charged again) are left.
 */
function chargeOf(intent: IntentRow, charges: ProviderCharge[]): ProviderCharge | undefined {
  return charges.find((c) => c.chargeId === intent.provider_charge_id) ?? charges.find((c) => c.status === "succeeded") ?? (charges.length === 1 ? charges[0] : undefined);
}

/** Reconciles every `intervalMs` the intents PROCESSING longer than `afterMs`. */
export function startReconciler(deps: Omit<ReconcileDeps, "signal"> & { afterMs: number; intervalMs: number }) {
  const stopping = new AbortController();
  const reconcileDeps: ReconcileDeps = { ...deps, signal: stopping.signal };
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return;
    running = reconcileProcessing(reconcileDeps, deps.afterMs)
      .then(() => undefined)
      .catch((err: unknown) => deps.log.warn({ err }, "reconcile pass failed; will retry"))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, deps.intervalMs);
  timer.unref();
  return {
    /** One pass over the intents PROCESSING longer than `olderThanMs` (the confirmation sweeper's, before it times them out). */
    reconcileOlderThan: (olderThanMs: number) => reconcileProcessing(reconcileDeps, olderThanMs),
    async stop() {
      clearInterval(timer);
      stopping.abort();
      await running;
    },
  };
}

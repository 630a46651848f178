// The calls payments owes the provider (provider_jobs), made outside any request:
// submitting a charge, voiding one that timed out, submitting a refund. Each call carries
// an idempotency key derived from our own id, so a retry after a crash or a lost answer
// is the same charge or refund at the provider. Transient failures retry with backoff;
// a refusal fails the intent (or the refund). Replicas share the work through leases.
//
// Beside it, the confirmation sweeper fails intents the provider has not confirmed
// within PAYMENT_CONFIRM_TIMEOUT.
import { contextFromTraceparent, inTransaction, withContext, type Logger, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { failIntent } from "./intents.js";
import type { PaymentsMetrics } from "./metrics.js";
import { ProviderError, type PaymentProvider } from "./provider.js";
import { intents, jobs, refunds, type JobRow } from "./store.js";

const batch = 20;

export interface ProviderWorker {
  wake(): void;
  stop(): Promise<void>;
}

export function startProviderWorker(deps: { pool: Pool; provider: PaymentProvider; metrics: PaymentsMetrics; log: Logger; pollMs?: number }): ProviderWorker {
  const { pool, provider, metrics, log } = deps;
  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  let again = false;

  const backoffMs = (attempts: number) => Math.min(30_000, 250 * 2 ** Math.min(attempts - 1, 10)) * (0.75 + Math.random() / 2);

  // Each job in the trace of the request that queued it (not of whoever woke the worker).
  const runJob = (job: JobRow) => withContext(contextFromTraceparent(job.traceparent ?? undefined), () => run(job));
  const run = async (job: JobRow) => {
    try {
      if (job.kind === "charge") await submitCharge(job);
      else if (job.kind === "cancel_charge") await voidCharge(job);
      else await submitRefund(job);
      metrics.providerCalls.inc({ call: job.kind, outcome: "ok" });
    } catch (err) {
      if (!(err instanceof ProviderError)) {
        log.error({ err, jobId: job.id, kind: job.kind }, "provider job failed; will retry");
        await jobs.retryLater(pool, job.id, backoffMs(job.attempts), err instanceof Error ? err.message : String(err)).catch(() => {});
        return;
      }
      // Recording the provider's answer needs PostgreSQL, which can be down too (the job's
      // lease runs out and the job is run again): never let it escape to drain(), where a
      // rejection was unhandled and ended the process.
      try {
        if (err.retryable) {
          metrics.providerCalls.inc({ call: job.kind, outcome: "retry" });
          if (job.attempts === 1 || job.attempts % 10 === 0) log.warn({ jobId: job.id, kind: job.kind, attempts: job.attempts, code: err.code, error: err.message }, "provider call failed; will retry");
          await jobs.retryLater(pool, job.id, backoffMs(job.attempts), `${err.code}: ${err.message}`);
          return;
        }
        metrics.providerCalls.inc({ call: job.kind, outcome: "rejected" });
        await refused(job, err);
      } catch (recordErr) {
        log.warn({ err: recordErr, jobId: job.id, kind: job.kind }, "provider job: could not record the provider's answer; the job runs again");
      }
    }
  };

  const submitCharge = async (job: JobRow) => {
    // The intent as the claim read it: one that ends after this read is caught when the answer is recorded.
    const intent = job.charge;
    if (!intent || intent.state !== "processing") return jobs.done(pool, job.id, "the intent is no longer processing");
    const { chargeId } = await provider.createCharge(
      {
        idempotencyKey: `charge:${job.intent_id}`,
        amountMinor: BigInt(intent.amount_minor),
        currency: intent.currency,
        reference: job.intent_id,
        paymentMethod: intent.payment_method,
        description: intent.description,
      },
      stopping.signal,
    );
    // Recorded, and voided if the intent timed out (or otherwise ended) while the call was on its way.
    await intents.chargeSubmitted(pool, job.intent_id, chargeId, job.id);
  };

  const voidCharge = async (job: JobRow) => {
    const intent = await intents.byId(pool, job.intent_id);
    if (!intent?.provider_charge_id) return jobs.done(pool, job.id, "no charge to void");
    try {
      await provider.cancelCharge({ idempotencyKey: `cancel:${intent.id}`, chargeId: intent.provider_charge_id }, stopping.signal);
    } catch (err) {
      // Captured after all: its charge.succeeded webhook refunds it (a late capture).
      if (err instanceof ProviderError && err.code === "charge_already_succeeded") return jobs.done(pool, job.id, err.code);
      throw err;
    }
    await jobs.done(pool, job.id);
  };

  const submitRefund = async (job: JobRow) => {
    const refund = job.refund_id ? await refunds.byId(pool, job.refund_id) : undefined;
    const intent = await intents.byId(pool, job.intent_id);
    if (!refund || refund.state !== "pending" || !intent) return jobs.done(pool, job.id, "the refund is no longer pending");
    if (!intent.provider_charge_id) throw new Error(`refund ${refund.id}: the intent has no provider charge`);
    const { refundId } = await provider.createRefund(
      { idempotencyKey: `refund:${refund.id}`, chargeId: intent.provider_charge_id, amountMinor: BigInt(refund.amount_minor), reference: refund.id, reason: refund.reason },
      stopping.signal,
    );
    await inTransaction(pool, async (tx) => {
      await refunds.setProviderId(tx, refund.id, refundId);
      await jobs.done(tx, job.id);
    });
  };

  /** The provider refused the call for good. */
  const refused = async (job: JobRow, err: ProviderError) => {
    log.warn({ jobId: job.id, kind: job.kind, code: err.code, error: err.message }, "provider refused the call");
    const failed = await inTransaction(pool, async (tx: PoolClient) => {
      await jobs.done(tx, job.id, `${err.code}: ${err.message}`);
      if (job.kind === "charge") {
        const intent = await intents.byId(tx, job.intent_id, { forUpdate: true });
        if (intent?.state === "processing") return failIntent(tx, intent, "provider_rejected", `${err.code}: ${err.message}`, { voidCharge: false });
      } else if (job.kind === "refund" && job.refund_id) {
        const refund = await refunds.byId(tx, job.refund_id, { forUpdate: true });
        if (refund?.state === "pending") await refunds.setState(tx, refund.id, "failed", "provider_rejected");
      }
      return undefined;
    });
    if (failed) {
      metrics.transitions.inc({ state: "failed" });
      metrics.failures.inc({ code: failed.failure_code });
    }
  };

  const drain = async () => {
    do {
      again = false;
      for (;;) {
        if (stopping.signal.aborted) return;
        let claimed: JobRow[];
        try {
          claimed = await jobs.claim(pool, batch);
        } catch (err) {
          log.warn({ err }, "provider jobs: could not claim; will retry");
          return;
        }
        if (claimed.length === 0) break;
        await Promise.all(claimed.map(runJob));
        // A short batch took every due job: a job queued since woke this drain (`again`), so no
        // claim that finds nothing (one statement per charge at a sale's pace).
        if (claimed.length < batch) break;
      }
    } while (again);
  };
  const wake = () => {
    if (running) {
      again = true;
      return;
    }
    running = drain().finally(() => {
      running = undefined;
    });
  };
  const timer = setInterval(wake, deps.pollMs ?? 500);
  timer.unref();
  const stopListening = listen(pool, "payments_provider_jobs", wake);
  wake();
  return {
    wake,
    async stop() {
      clearInterval(timer);
      stopListening();
      stopping.abort();
      await running;
    },
  };
}

/** Calls `onNotify` on each NOTIFY on `channel` (other replicas' commits); re-listens after a lost connection. */
function listen(pool: Pool, channel: string, onNotify: () => void): () => void {
  let client: PoolClient | undefined;
  let stopped = false;
  const connect = async () => {
    if (stopped || client) return;
    try {
      const c = await pool.connect();
      c.on("notification", onNotify);
      c.on("error", () => {
        client = undefined;
        c.release(true);
      });
      await c.query(`LISTEN ${channel}`);
      client = c;
    } catch {
      // PostgreSQL is down: the next tick tries again.
    }
  };
  const timer = setInterval(() => void connect(), 5_000);
  timer.unref();
  void connect();
  return () => {
    stopped = true;
    clearInterval(timer);
    client?.release();
  };
}

/**
 * Fails intents still PROCESSING after `timeoutMs`, with failure_code "timeout" (and voids their
 * charges). `askProviderFirst` (the reconciler) settles those the provider already settled.
 */
export function startConfirmationSweeper(deps: {
  pool: Pool;
  metrics: PaymentsMetrics;
  log: Logger;
  timeoutMs: number;
  wakeProviderWorker: () => void;
  askProviderFirst?: (olderThanMs: number) => Promise<unknown>;
}) {
  const { pool, metrics, log, timeoutMs } = deps;
  const seconds = timeoutMs / 1000;
  const sweep = async () => {
    // A provider that does not answer holds the timeout up by one call at most (the reconciler stops at it).
    if (deps.askProviderFirst) await deps.askProviderFirst(timeoutMs).catch((err: unknown) => log.warn({ err }, "could not ask the provider before timing intents out"));
    const failed = await inTransaction(pool, async (tx) => {
      const stuck = await intents.timedOut(tx, timeoutMs, 100);
      const out = [];
      for (const intent of stuck) out.push(await failIntent(tx, intent, "timeout", `the provider did not confirm the payment within ${seconds} s`, { voidCharge: true }));
      return out;
    });
    for (const intent of failed) {
      metrics.transitions.inc({ state: "failed" });
      metrics.failures.inc({ code: "timeout" });
      log.warn({ intentId: intent.id, chargeId: intent.provider_charge_id }, "payment timed out waiting for the provider");
    }
    if (failed.length > 0) deps.wakeProviderWorker();
  };
  let busy = false;
  const timer = setInterval(
    () => {
      if (busy) return;
      busy = true;
      sweep()
        .catch((err: unknown) => log.warn({ err }, "confirmation sweep failed; will retry"))
        .finally(() => {
          busy = false;
        });
    },
    Math.max(100, Math.min(1_000, timeoutMs / 4)),
  );
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

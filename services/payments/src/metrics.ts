// payments' own series on /metrics (beside the runtime's RPC metrics). Made before the
// server starts, registered on its registry once it has one.
import { Counter, Gauge, type Registry } from "prom-client";
import type { Pool } from "@adminkiosk/runtime";
import { intents, jobs } from "./store.js";

export type PaymentsMetrics = ReturnType<typeof createPaymentsMetrics>;

export function createPaymentsMetrics(pool: Pool) {
  const transitions = new Counter({
    name: "payments_intent_transitions_total",
    help: "Payment intents entering each state (requires_payment, processing, succeeded, failed, canceled, partially_refunded, refunded).",
    labelNames: ["state"] as const,
    registers: [],
  });
  const failures = new Counter({
    name: "payments_failures_total",
    help: "Payment intents failed, by failure code (card_declined, timeout, provider_rejected, ...).",
    labelNames: ["code"] as const,
    registers: [],
  });
  const webhooks = new Counter({
    name: "payments_webhooks_total",
    help: "Provider webhooks by outcome: applied, duplicate, ignored, late_capture_refunding, unknown_object, mismatch, or rejected as malformed, stale, bad_signature, too_large, body_timeout.",
    labelNames: ["outcome"] as const,
    registers: [],
  });
  const providerCalls = new Counter({
    name: "payments_provider_calls_total",
    help: "Calls to the provider's API by call (charge, cancel_charge, refund) and outcome (ok, retry, rejected).",
    labelNames: ["call", "outcome"] as const,
    registers: [],
  });
  const reconciled = new Counter({
    name: "payments_reconciled_total",
    help: "Processing intents the reconciler asked the provider about, by outcome: succeeded, failed, canceled (the provider's answer applied), pending, no_charge, unchanged (settled meanwhile), mismatch, unreachable.",
    labelNames: ["outcome"] as const,
    registers: [],
  });
  const processing = new Gauge({
    name: "payments_intents_processing",
    help: "Payment intents waiting for the provider's confirmation.",
    registers: [],
    async collect() {
      this.set(await intents.countProcessing(pool).catch(() => Number.NaN));
    },
  });
  const pendingJobs = new Gauge({
    name: "payments_provider_jobs_pending",
    help: "Charges, cancellations and refunds not yet accepted by the provider.",
    registers: [],
    async collect() {
      this.set(await jobs.countPending(pool).catch(() => Number.NaN));
    },
  });
  return {
    transitions,
    failures,
    webhooks,
    providerCalls,
    reconciled,
    register(registry: Registry) {
      registry.registerMetric(transitions);
      registry.registerMetric(failures);
      registry.registerMetric(webhooks);
      registry.registerMetric(providerCalls);
      registry.registerMetric(reconciled);
      registry.registerMetric(processing);
      registry.registerMetric(pendingJobs);
    },
  };
}

// ai's own metrics, beside the runtime's per-RPC ones: each model version's evaluation
// (from the registry, read at scrape time), the serving version and retrains by outcome.
import { Counter, Gauge, type Registry } from "prom-client";
import type { Pool } from "@adminkiosk/runtime";
import { models } from "./store.js";

export interface AiMetrics {
  serving(version: number): void;
  retrain(outcome: "promoted" | "held" | "rejected" | "failed"): void;
  register(registry: Registry, pool: Pool): void;
}

export function createAiMetrics(): AiMetrics {
  const servingVersion = new Gauge({ name: "ai_model_serving_version", help: "The model version this replica serves (0: none yet).", registers: [] });
  servingVersion.set(0);
  const retrains = new Counter({ name: "ai_retrains_total", help: "Retrains by outcome (promoted, held as a candidate after passing the gate, rejected by the gate, failed).", labelNames: ["outcome"], registers: [] });
  return {
    serving: (v) => servingVersion.set(v),
    retrain: (outcome) => retrains.inc({ outcome }),
    register(registry, pool) {
      registry.registerMetric(servingVersion);
      registry.registerMetric(retrains);
      // One scrape reads the registry once (no ONNX bytes), for all per-version gauges.
      let pending: Promise<Awaited<ReturnType<typeof models.list>>> | undefined;
      const rows = () => (pending ??= models.list(pool).finally(() => setTimeout(() => (pending = undefined), 1000).unref()));
      const perVersion = (name: string, help: string, labelNames: string[], fill: (g: Gauge, r: Awaited<ReturnType<typeof models.list>>[number]) => void) =>
        new Gauge({
          name,
          help,
          labelNames: ["version", ...labelNames],
          registers: [registry],
          async collect() {
            this.reset();
            for (const r of await rows().catch(() => [])) fill(this, r);
          },
        });
      perVersion("ai_model_wape", "Held-out WAPE of each model version (predictor=model) and of the seasonal-naive baseline on the same window (predictor=seasonal_naive).", ["predictor"], (g, r) => {
        g.set({ version: String(r.version), predictor: "model" }, r.metrics.model.wape);
        g.set({ version: String(r.version), predictor: "seasonal_naive" }, r.metrics.baseline.wape);
      });
      perVersion("ai_model_mae", "Held-out mean absolute error (units per day) of each model version.", [], (g, r) => g.set({ version: String(r.version) }, r.metrics.model.mae));
      perVersion("ai_model_bias", "Held-out mean (forecast - actual) of each model version.", [], (g, r) => g.set({ version: String(r.version) }, r.metrics.model.bias));
      perVersion("ai_model_coverage_80", "Share of held-out actuals inside each version's 10–90 % interval (goal 0.8).", [], (g, r) => g.set({ version: String(r.version) }, r.metrics.model.coverage80));
      perVersion("ai_model_training_seconds", "How long training (fit and ONNX export) took for each version.", [], (g, r) => g.set({ version: String(r.version) }, r.training_seconds));
      perVersion("ai_model_training_rows", "Kiosk × SKU days each version was fitted on.", [], (g, r) => g.set({ version: String(r.version) }, r.training_rows));
      perVersion("ai_model_serving", "1 for the version the registry serves, else 0.", ["status"], (g, r) => g.set({ version: String(r.version), status: r.status }, r.status === "serving" ? 1 : 0));
    },
  };
}

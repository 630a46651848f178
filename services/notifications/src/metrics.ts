// notifications' Prometheus metrics (per channel), registered on the service's registry.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Pool } from "@adminkiosk/runtime";

export function createNotificationsMetrics() {
  const attempts = new Counter({
    name: "notifications_delivery_attempts_total",
    help: "Delivery attempts by channel and result (delivered, failed).",
    labelNames: ["channel", "result"],
    registers: [],
  });
  const deadLetters = new Counter({
    name: "notifications_dead_letters_total",
    help: "Deliveries given up after DELIVERY_MAX_ATTEMPTS, by channel.",
    labelNames: ["channel"],
    registers: [],
  });
  const latency = new Histogram({
    name: "notifications_delivery_attempt_seconds",
    help: "How long one delivery attempt took, by channel.",
    labelNames: ["channel"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [],
  });
  const alerts = new Counter({
    name: "notifications_alerts_total",
    help: "Alert changes by kind (fired, acknowledged, resolved, escalated).",
    labelNames: ["kind"],
    registers: [],
  });
  const notifications = new Counter({
    name: "notifications_grouped_total",
    help: "Grouped notifications made (one per rule, group and status), by status.",
    labelNames: ["status"],
    registers: [],
  });
  const suppressed = new Counter({
    name: "notifications_suppressed_total",
    help: "Alerts or deliveries not notified, by reason (silence, inhibition: alerts; quiet_hours: deliveries).",
    labelNames: ["reason"],
    registers: [],
  });
  return {
    attempts,
    deadLetters,
    latency,
    alerts,
    notifications,
    suppressed,
    register(registry: Registry, pool: Pool) {
      for (const m of [attempts, deadLetters, latency, alerts, notifications, suppressed] as Parameters<Registry["registerMetric"]>[0][]) registry.registerMetric(m);
      registry.registerMetric(
        new Gauge({
          name: "notifications_deliveries_pending",
          help: "Deliveries waiting for an attempt, by channel.",
          labelNames: ["channel"],
          registers: [],
          async collect() {
            const { rows } = await pool.query<{ channel: string; n: string }>("SELECT channel, count(*) AS n FROM deliveries WHERE state = 'pending' GROUP BY channel");
            this.reset();
            for (const c of ["email", "webhook"]) this.set({ channel: c }, Number(rows.find((r) => r.channel === c)?.n ?? 0));
          },
        }),
      );
    },
  };
}

export type NotificationsMetrics = ReturnType<typeof createNotificationsMetrics>;

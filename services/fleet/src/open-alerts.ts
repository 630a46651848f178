// A projection of notifications' alerts into fleet, for the query language's alerts,
// alerts(x) and alert(x): every alert about a kiosk from stream NOTIFICATIONS
// (notifications.alert.<id>.fired | .acknowledged | .resolved, notifications' outbox), its
// rule's kind and severity, open until resolved. Resolved is final: a late "fired" or
// "acknowledged" (a redelivery out of order) does not reopen it; resolved rows are swept
// after a week. The runtime's durable consumer applies each message once (its inbox row in
// the same transaction); applying one again would change nothing either.
import { AlertChangedEventSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/events_pb";
import { Severity } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { decodeEvent, notificationsSubjects, startConsumer, type DurableConsumer, type Logger, type NatsConnection, type Pool } from "@adminkiosk/runtime";

/** Severities as the query language names them. */
export const alertSeverities = ["info", "warning", "critical"] as const;
/** Rule kinds (notifications.proto RuleDefinition's kind, Alert.rule_kind) about kiosks. */
export const alertRuleKinds = [
  "kiosk_offline",
  "low_paper",
  "printer_fault",
  "stockout_predicted",
  "alerting_status",
  "telemetry_errors",
  "low_stock",
  "payment_failure_rate",
  "orders_stuck",
  "silent_failure",
  "help_requested",
] as const;

const severityNames: Partial<Record<Severity, string>> = { [Severity.INFO]: "info", [Severity.WARNING]: "warning", [Severity.CRITICAL]: "critical" };
const states = { fired: "firing", acknowledged: "acknowledged", resolved: "resolved" } as const;
export const resolvedKeptDays = 7;

export function startAlertsProjection(o: { pool: Pool; nats: NatsConnection | Promise<NatsConnection>; log: Logger; durable: string; sweepMs?: number }): { consumer: DurableConsumer; stop(): Promise<void> } {
  const consumer = startConsumer({
    pool: o.pool,
    nats: o.nats,
    log: o.log,
    // notifications creates the stream; until it has, the consumer retries (logged once).
    stream: notificationsSubjects.stream.name,
    durable: o.durable,
    filter: notificationsSubjects.allAlerts,
    async apply(tx, msg) {
      const parsed = notificationsSubjects.parseAlert(msg.subject);
      if (!parsed) return;
      const { alert } = decodeEvent(AlertChangedEventSchema, msg);
      // A service's alert (service_not_serving) is about no kiosk.
      if (!alert?.kioskId) return;
      await tx.query(
        `INSERT INTO kiosk_alerts (alert_id, kiosk_id, rule_kind, severity, rule_name, state) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (alert_id) DO UPDATE SET state = EXCLUDED.state, changed_at = now(), rule_name = EXCLUDED.rule_name
         WHERE kiosk_alerts.state <> 'resolved'`,
        [parsed.alertId, alert.kioskId, alert.ruleKind, severityNames[alert.severity] ?? "", alert.ruleName, states[parsed.kind]],
      );
    },
  });
  const sweep = setInterval(() => {
    o.pool
      .query(`DELETE FROM kiosk_alerts WHERE state = 'resolved' AND changed_at < now() - interval '${resolvedKeptDays} days'`)
      .catch((err: unknown) => o.log.warn({ err }, "could not drop old resolved alerts"));
  }, o.sweepMs ?? 3_600_000);
  sweep.unref();
  return {
    consumer,
    async stop() {
      clearInterval(sweep);
      await consumer.stop();
    },
  };
}

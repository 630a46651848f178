// The sweeper every replica runs each SWEEP_MS, three steps, each safe on any number of
// replicas (rows claimed with FOR UPDATE SKIP LOCKED, so nothing fires, groups or sends twice):
//   1. fire: pending alerts whose for-duration has passed become firing;
//   2. group: fired and resolved alert changes of one rule + kiosk group + status, once the
//      oldest has waited GROUP_WAIT, become ONE notification naming the count, with one
//      delivery per receiver of the rule;
//   3. deliver: due deliveries are claimed (attempts + 1, a lease on next_attempt_at), sent
//      through their channel outside any transaction, then marked delivered, retried after
//      the runtime's capped exponential backoff, or dead-lettered after DELIVERY_MAX_ATTEMPTS.
import { create, fromBinary } from "@bufbuild/protobuf";
import { DeliveryEventSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/events_pb";
import { RuleDefinitionSchema, Severity } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { backoffDelay, enqueueEvent, inTransaction, notificationsSubjects, runForever, sleep, type BackoffOptions, type Logger, type Pool } from "@adminkiosk/runtime";
import { fireDue } from "./alerts.js";
import type { Channel, NotificationBody } from "./channels.js";
import { deliveries, type DeliveryRow } from "./deliveries.js";
import type { NotificationsMetrics } from "./metrics.js";

export interface SweeperOptions {
  pool: Pool;
  log: Logger;
  channels: Channel[];
  metrics: NotificationsMetrics;
  sweepMs: number;
  groupWaitMs: number;
  maxAttempts: number;
  retry: BackoffOptions;
  /** How long a claimed attempt keeps others away (longer than an attempt may take). */
  leaseMs: number;
}

const severityNames: Record<number, string> = { [Severity.INFO]: "info", [Severity.WARNING]: "warning", [Severity.CRITICAL]: "critical" };

export function startSweeper(o: SweeperOptions) {
  const { pool, log } = o;
  const stop = new AbortController();
  const inFlight = new Set<Promise<void>>();
  const channels = new Map(o.channels.map((c) => [c.name, c]));

  const fire = async () => {
    for (;;) {
      const n = await inTransaction(pool, (tx) => fireDue(tx));
      if (n > 0) {
        o.metrics.alerts.inc({ kind: "fired" }, n);
        log.info({ alerts: n }, "alerts fired");
      }
      if (n < 500) return;
    }
  };

  const group = async () => {
    const { rows: due } = await pool.query<{ rule_id: string; group_id: string; status: "firing" | "resolved" }>(
      `SELECT rule_id, group_id, status FROM alert_changes WHERE notification_id IS NULL
       GROUP BY rule_id, group_id, status HAVING min(created_at) <= now() - make_interval(secs => $1::double precision / 1000)`,
      [o.groupWaitMs],
    );
    for (const g of due) {
      const made = await inTransaction(pool, async (tx) => {
        const { rows: changes } = await tx.query<{ id: string; alert_id: string; summary: string; kiosk_id: string; sku: string }>(
          `SELECT c.id, c.alert_id, a.summary, a.kiosk_id, a.sku FROM alert_changes c JOIN alerts a USING (alert_id)
           WHERE c.notification_id IS NULL AND c.rule_id = $1 AND c.group_id = $2 AND c.status = $3
           ORDER BY c.id LIMIT 100000 FOR UPDATE OF c SKIP LOCKED`,
          [g.rule_id, g.group_id, g.status],
        );
        if (changes.length === 0) return 0;
        const { rows: ruleRows } = await tx.query<{ name: string; definition: Buffer }>("SELECT name, definition FROM rules WHERE rule_id = $1", [g.rule_id]);
        const definition = fromBinary(RuleDefinitionSchema, ruleRows[0]!.definition);
        const { rows: ids } = await tx.query<{ id: string }>("SELECT gen_random_uuid() AS id");
        const notificationId = ids[0]!.id;
        await tx.query("UPDATE alert_changes SET notification_id = $1 WHERE id = ANY($2::bigint[])", [notificationId, changes.map((c) => c.id)]);
        const count = changes.length;
        const body: NotificationBody = {
          status: g.status,
          ruleId: g.rule_id,
          ruleName: ruleRows[0]!.name,
          severity: severityNames[definition.severity] ?? "unspecified",
          groupId: g.group_id,
          count,
          lines: changes.slice(0, 50).map((c) => (g.status === "firing" ? c.summary : `kiosk ${c.kiosk_id}${c.sku ? `, product ${c.sku}` : ""}: resolved`)),
          alertIds: changes.slice(0, 1000).map((c) => c.alert_id),
        };
        const what = definition.kind.case === "kioskOffline" ? "kiosk" : "alert";
        const subject = `[${g.status === "firing" ? "FIRING" : "RESOLVED"}] ${body.ruleName}: ${count} ${what}${count === 1 ? "" : "s"}${g.group_id ? ` in group ${g.group_id}` : ""}`;
        const receivers = [
          ...(definition.receivers?.emails ?? []).map((e) => ({ channel: "email" as const, target: e, secretName: "" })),
          ...(definition.receivers?.webhooks ?? []).map((w) => ({ channel: "webhook" as const, target: w.url, secretName: w.secretName })),
        ];
        for (const r of receivers) await deliveries.insert(tx, { notificationId, ruleId: g.rule_id, groupId: g.group_id, status: g.status, count, subject, body, ...r });
        return 1;
      });
      if (made) o.metrics.notifications.inc({ status: g.status });
    }
  };

  const attempt = async (d: DeliveryRow) => {
    const channel = channels.get(d.channel);
    const started = performance.now();
    let result: string;
    let ok = false;
    try {
      if (!channel) throw new Error(`no channel ${d.channel}`);
      result = await channel.send({ deliveryId: d.delivery_id, target: d.target, secretName: d.secret_name, subject: d.subject, body: d.body }, stop.signal);
      ok = true;
    } catch (err) {
      result = (err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err)).slice(0, 500);
    }
    o.metrics.latency.observe({ channel: d.channel }, (performance.now() - started) / 1000);
    o.metrics.attempts.inc({ channel: d.channel, result: ok ? "delivered" : "failed" });
    const outcome = ok ? "delivered" : d.attempts >= o.maxAttempts ? "dead_lettered" : "retry";
    await inTransaction(pool, async (tx) => {
      const row = await deliveries.finish(tx, d.delivery_id, outcome, result, backoffDelay(d.attempts, o.retry));
      if (row && outcome !== "retry")
        await enqueueEvent(tx, notificationsSubjects.delivery(d.delivery_id, outcome), DeliveryEventSchema, create(DeliveryEventSchema, { delivery: deliveries.toDelivery(row) }));
    });
    if (outcome === "dead_lettered") {
      o.metrics.deadLetters.inc({ channel: d.channel });
      log.warn({ deliveryId: d.delivery_id, channel: d.channel, target: d.target, attempts: d.attempts, result }, "delivery dead-lettered");
    } else if (outcome === "retry") log.info({ deliveryId: d.delivery_id, channel: d.channel, attempts: d.attempts, result }, "delivery failed; will retry");
  };

  const deliver = async () => {
    const claimed = await deliveries.claimDue(pool, 50, o.leaseMs);
    for (const d of claimed) {
      const p = attempt(d)
        .catch((err: unknown) => log.error({ err, deliveryId: d.delivery_id }, "delivery bookkeeping failed"))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
  };

  // Dry runs replay the last hour of events (recent_events); older ones go, once a minute.
  let prunedAt = 0;
  const prune = async () => {
    if (Date.now() - prunedAt < 60_000) return;
    prunedAt = Date.now();
    await pool.query("DELETE FROM recent_events WHERE event_time < now() - interval '1 hour'");
  };

  const loop = runForever({ log, what: "notifications sweeper", signal: stop.signal }, async (ready) => {
    while (!stop.signal.aborted) {
      await prune();
      await fire();
      await group();
      await deliver();
      ready();
      await sleep(o.sweepMs, stop.signal);
    }
  });

  return {
    async stop() {
      stop.abort();
      await loop;
      await Promise.allSettled([...inFlight]);
    },
  };
}

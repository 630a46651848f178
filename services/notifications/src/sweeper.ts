// The sweeper every replica runs: four steps on two loops, each every SWEEP_MS — fire, group and
// deliver one after another (the path from an alert's firing to its delivery), and the policy's
// steps on their own, so a slow policy pass under load delays no notification. Each step is safe
// on any number of replicas and loops (rows claimed with FOR UPDATE SKIP LOCKED, so nothing fires,
// groups or sends twice):
//   1. fire: pending alerts whose for-duration has passed become firing;
//   2. policy (routing.ts): withheld (silenced, inhibited) alerts judged again, repeats and
//      escalations to the next on-call tier made due;
//   3. group: fired and resolved alert changes of one rule + kiosk group + status (+ repeat,
//      escalation tier), once the oldest has waited GROUP_WAIT, become ONE notification naming
//      the count (silenced and inhibited alerts left out), with one delivery per receiver of the
//      rule, matching subscription and on-call tier (routing.ts); after a group's notification,
//      the changes joining it wait until GROUP_INTERVAL after it (notification_groups; repeats
//      and escalations are not held);
//   4. deliver: due deliveries are claimed (attempts + 1, a lease on next_attempt_at), sent
//      through their channel outside any transaction, then marked delivered, retried after
//      the runtime's capped exponential backoff, or dead-lettered after DELIVERY_MAX_ATTEMPTS.
import { create } from "@bufbuild/protobuf";
import { DeliveryEventSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/events_pb";
import { backoffDelay, enqueueEvent, inTransaction, notificationsSubjects, runForever, sleep, type BackoffOptions, type Logger, type Pool } from "@adminkiosk/runtime";
import { fireDue } from "./alerts.js";
import { escalateDue, makeNotification, releaseWithheld, scheduleRepeats, type ChangeGroup } from "./routing.js";
import type { Channel } from "./channels.js";
import { deliveries, type DeliveryRow } from "./deliveries.js";
import type { NotificationsMetrics } from "./metrics.js";

export interface SweeperOptions {
  pool: Pool;
  log: Logger;
  channels: Channel[];
  metrics: NotificationsMetrics;
  sweepMs: number;
  groupWaitMs: number;
  /** After a group's notification, its next one waits at least this long (repeats and escalations excepted). */
  groupIntervalMs: number;
  maxAttempts: number;
  retry: BackoffOptions;
  /** How long a claimed attempt keeps others away (longer than an attempt may take). */
  leaseMs: number;
}

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
    // Due: the oldest change waited GROUP_WAIT, and the group was not notified within GROUP_INTERVAL.
    const { rows: due } = await pool.query<ChangeGroup>(
      `SELECT c.rule_id, c.group_id, c.status, c.repeat, c.tier FROM alert_changes c
       LEFT JOIN notification_groups g ON NOT c.repeat AND c.tier = 0 AND g.rule_id = c.rule_id AND g.group_id = c.group_id AND g.status = c.status
       WHERE c.notification_id IS NULL
       GROUP BY c.rule_id, c.group_id, c.status, c.repeat, c.tier
       HAVING min(c.created_at) <= now() - make_interval(secs => $1::double precision / 1000)
          AND (max(g.notified_at) IS NULL OR max(g.notified_at) <= now() - make_interval(secs => $2::double precision / 1000))`,
      [o.groupWaitMs, o.groupIntervalMs],
    );
    for (const g of due) {
      const made = await inTransaction(pool, async (tx) => {
        const held = !g.repeat && g.tier === 0;
        if (held) {
          // Checked again under the group's row lock: another replica may have just notified it.
          const { rows } = await tx.query<{ recent: boolean }>(
            `SELECT notified_at > now() - make_interval(secs => $4::double precision / 1000) AS recent FROM notification_groups
             WHERE rule_id = $1 AND group_id = $2 AND status = $3 FOR UPDATE`,
            [g.rule_id, g.group_id, g.status, o.groupIntervalMs],
          );
          if (rows[0]?.recent) return undefined;
        }
        const m = await makeNotification(tx, g, log);
        if (m.made && held)
          await tx.query(
            `INSERT INTO notification_groups (rule_id, group_id, status, notified_at) VALUES ($1, $2, $3, now())
             ON CONFLICT (rule_id, group_id, status) DO UPDATE SET notified_at = now()`,
            [g.rule_id, g.group_id, g.status],
          );
        return m;
      });
      if (!made) continue;
      if (made.made) o.metrics.notifications.inc({ status: g.status });
      if (made.silenced) o.metrics.suppressed.inc({ reason: "silence" }, made.silenced);
      if (made.inhibited) o.metrics.suppressed.inc({ reason: "inhibition" }, made.inhibited);
      if (made.quiet) o.metrics.suppressed.inc({ reason: "quiet_hours" }, made.quiet);
    }
  };

  // The policy's steps: withheld alerts judged again, repeats and escalations made due.
  const policy = async () => {
    const released = await inTransaction(pool, (tx) => releaseWithheld(tx));
    if (released > 0) log.info({ alerts: released }, "withheld alerts released (silence or inhibition over)");
    const repeated = await inTransaction(pool, (tx) => scheduleRepeats(tx, o.groupWaitMs));
    if (repeated > 0) log.info({ alerts: repeated }, "alerts repeated");
    const escalated = await inTransaction(pool, (tx) => escalateDue(tx, o.groupWaitMs));
    if (escalated > 0) {
      o.metrics.alerts.inc({ kind: "escalated" }, escalated);
      log.info({ alerts: escalated }, "alerts escalated to the next on-call tier");
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
    await pool.query("DELETE FROM notification_groups WHERE notified_at < now() - make_interval(secs => $1::double precision / 1000)", [o.groupIntervalMs]);
  };

  // Each step on its own loop: a pass of one never waits for another's.
  const every = (what: string, pass: () => Promise<void>) =>
    runForever({ log, what: `notifications sweeper (${what})`, signal: stop.signal }, async (ready) => {
      while (!stop.signal.aborted) {
        await pass();
        ready();
        await sleep(o.sweepMs, stop.signal);
      }
    });
  // The hot path (fire → group → deliver: an alert fired is grouped and its delivery claimed in
  // the same pass) on one loop; the policy's steps (releases, repeats, escalations) on another,
  // so their pass no longer sits between firing and grouping. Measured (bench/RESULTS.md): one
  // loop per step polled more and gained nothing on two shared cores.
  const loops = [
    every("fire, group, deliver", async () => {
      await fire();
      await group();
      await deliver();
    }),
    every("policy", async () => {
      await prune();
      await policy();
    }),
  ];

  return {
    async stop() {
      stop.abort();
      await Promise.all(loops);
      await Promise.allSettled([...inFlight]);
    },
  };
}

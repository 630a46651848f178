// How a group of alert changes becomes a notification, and the policy's sweeper steps
// (docs/architecture.md, "The alert policy"):
//   - silences and inhibitions: a firing change of a silenced or inhibited alert is not notified;
//     the alert is marked withheld and notified once neither holds (releaseWithheld), if it still
//     fires. A withheld alert's resolution goes nowhere (nobody was told it fired). A repeat or an
//     escalation of a silenced or inhibited alert is dropped (the escalation is tried again after
//     escalate_after: escalation pauses while an alert is silenced).
//   - whom: the rule's receivers, every subscription route matching the notification (quiet hours
//     keep non-critical ones from being sent: a delivery recorded SUPPRESSED with the reason), and
//     for an escalating rule the on-call tiers (tier 1 with the first notification; an escalation
//     goes to that tier only). One delivery per channel + address.
//   - repeats (scheduleRepeats): a firing, unacknowledged alert last notified its rule's
//     repeat_interval ago is notified again, grouped like the first time.
//   - escalation (escalateDue): a firing alert of an escalating rule still unacknowledged
//     escalate_after after its tier was paged goes to the next tier. Acknowledging stops it.
// Every step claims its rows with FOR UPDATE SKIP LOCKED, so any number of replicas may run them.
import { pushEndpoints } from "./push.js";
import { fromBinary } from "@bufbuild/protobuf";
import { Channel, RuleDefinitionSchema, Severity, type RuleDefinition } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import type { Logger, Pool, PoolClient } from "@adminkiosk/runtime";
import type { NotificationBody } from "./channels.js";
import { deliveries } from "./deliveries.js";
import { dedupeTargets, judge, labelsOfRow, pushEndpointsOf, receiverTargets, ruleTiming, severityLabel, subscriberTargets, subscriptions, tiers, tierTargets, type Target } from "./policy.js";

/** One group of waiting changes: a rule, a kiosk group, a status, and whether they are repeats or an escalation to `tier`. */
export interface ChangeGroup {
  rule_id: string;
  group_id: string;
  status: "firing" | "resolved";
  repeat: boolean;
  tier: number;
}

export interface Made {
  made: boolean;
  silenced: number;
  inhibited: number;
  quiet: number;
}

interface ChangeRow {
  id: string;
  alert_id: string;
  summary: string;
  kiosk_id: string;
  sku: string;
  group_id: string;
  tags: string[];
  withheld: boolean;
  escalation_tier: number;
  state: string;
}

const definitions = new Map<string, RuleDefinition>();
/** A rule's definition, decoded once per version. */
function definitionOf(ruleId: string, version: string, bytes: Buffer): RuleDefinition {
  const key = `${ruleId}:${version}`;
  let d = definitions.get(key);
  if (!d) {
    if (definitions.size > 5000) definitions.clear();
    d = fromBinary(RuleDefinitionSchema, bytes);
    definitions.set(key, d);
  }
  return d;
}

/** Makes (in tx) at most one notification of the group's waiting changes, with its deliveries. */
export async function makeNotification(tx: PoolClient, g: ChangeGroup, log: Logger): Promise<Made> {
  const none: Made = { made: false, silenced: 0, inhibited: 0, quiet: 0 };
  const { rows: changes } = await tx.query<ChangeRow>(
    `SELECT c.id, c.alert_id, a.summary, a.kiosk_id, a.sku, a.group_id, a.tags, a.withheld, a.escalation_tier, a.state FROM alert_changes c JOIN alerts a USING (alert_id)
     WHERE c.notification_id IS NULL AND c.rule_id = $1 AND c.group_id = $2 AND c.status = $3 AND c.repeat = $4 AND c.tier = $5
     ORDER BY c.id LIMIT 100000 FOR UPDATE OF c SKIP LOCKED`,
    [g.rule_id, g.group_id, g.status, g.repeat, g.tier],
  );
  if (changes.length === 0) return none;
  const { rows: ruleRows } = await tx.query<{ name: string; version: string; definition: Buffer }>("SELECT name, version, definition FROM rules WHERE rule_id = $1", [g.rule_id]);
  const rule = ruleRows[0]!;
  const definition = definitionOf(g.rule_id, rule.version, rule.definition);
  const severity = severityLabel[definition.severity] ?? "unspecified";

  // Silences and inhibitions.
  const kept: ChangeRow[] = [];
  const dropped: string[] = [];
  const withhold: { alert_id: string; inhibited_by: string | null }[] = [];
  // Escalations of silenced or inhibited alerts: their tier is not counted as paged (it is tried again after escalate_after).
  const unpaged: string[] = [];
  const made = { ...none };
  if (g.status === "firing") {
    const judgeOf = await judge(tx);
    for (const c of changes) {
      // A repeat or an escalation of an alert acknowledged or resolved since it was made due: nothing to say.
      if ((g.repeat || g.tier > 0) && c.state !== "firing") {
        dropped.push(c.id);
        continue;
      }
      const j = await judgeOf({ alertId: c.alert_id, labels: labelsOfRow({ ...c, rule_id: g.rule_id }, rule.name, severity) });
      if (j.silencedBy.length === 0 && !j.inhibitedBy) {
        kept.push(c);
        continue;
      }
      dropped.push(c.id);
      if (j.silencedBy.length) made.silenced++;
      else made.inhibited++;
      if (!g.repeat && g.tier === 0) withhold.push({ alert_id: c.alert_id, inhibited_by: j.inhibitedBy ?? null });
      if (g.tier > 0) unpaged.push(c.alert_id);
    }
  } else
    for (const c of changes) {
      if (c.withheld) dropped.push(c.id);
      else kept.push(c);
    }
  if (dropped.length) await tx.query("DELETE FROM alert_changes WHERE id = ANY($1::bigint[])", [dropped]);
  if (unpaged.length)
    await tx.query(
      `UPDATE alerts SET escalation_tier = coalesce((SELECT max(level) FROM on_call_tiers WHERE level < $2), 0)
       WHERE alert_id = ANY($1::uuid[]) AND escalation_tier = $2`,
      [unpaged, g.tier],
    );
  if (withhold.length) {
    await tx.query(
      `UPDATE alerts a SET withheld = true, inhibited_by = w.inhibited_by, checked_at = now()
       FROM jsonb_to_recordset($1::jsonb) AS w(alert_id uuid, inhibited_by uuid) WHERE a.alert_id = w.alert_id`,
      [JSON.stringify(withhold)],
    );
    log.info({ ruleId: g.rule_id, groupId: g.group_id, alerts: withhold.length, silenced: made.silenced, inhibited: made.inhibited }, "alert notifications withheld (silenced or inhibited)");
  }
  if (kept.length === 0) return made;

  const { rows: ids } = await tx.query<{ id: string }>("SELECT gen_random_uuid() AS id");
  const notificationId = ids[0]!.id;
  const alertIds = kept.map((c) => c.alert_id);
  await tx.query("UPDATE alert_changes SET notification_id = $1 WHERE id = ANY($2::bigint[])", [notificationId, kept.map((c) => c.id)]);

  // Escalation bookkeeping: a first notification of an escalating rule pages tier 1 and starts the clock.
  const timing = ruleTiming(definition);
  const onCall = timing.escalateMs !== null || g.tier > 0 || kept.some((c) => c.escalation_tier > 0) ? await tiers.list(tx) : [];
  let tierLevels: number[] = [];
  if (g.status === "firing") await tx.query("UPDATE alerts SET notified_at = now(), inhibited_by = NULL WHERE alert_id = ANY($1::uuid[])", [alertIds]);
  if (g.tier > 0) tierLevels = [g.tier];
  else if (g.status === "firing" && !g.repeat) {
    if (timing.escalateMs !== null && onCall.length > 0) {
      const first = onCall[0]!.level;
      await tx.query(
        `UPDATE alerts SET escalation_tier = $2, escalate_at = now() + make_interval(secs => $3::double precision / 1000)
         WHERE alert_id = ANY($1::uuid[]) AND state = 'firing' AND escalation_tier = 0`,
        [alertIds, first, timing.escalateMs],
      );
      tierLevels = [first];
    }
  } else {
    // A repeat or a resolution reaches every tier paged so far.
    const reached = Math.max(0, ...kept.map((c) => c.escalation_tier));
    tierLevels = onCall.filter((t) => t.level <= reached).map((t) => t.level);
  }

  const count = kept.length;
  const body: NotificationBody = {
    status: g.status,
    ruleId: g.rule_id,
    ruleName: rule.name,
    severity,
    groupId: g.group_id,
    count,
    lines: kept
      .slice(0, 50)
      .map((c) => (g.status === "firing" ? c.summary : c.kiosk_id === "" ? `service ${c.sku}: resolved` : `kiosk ${c.kiosk_id}${c.sku ? `, product ${c.sku}` : ""}: resolved`)),
    alertIds: kept.slice(0, 1000).map((c) => c.alert_id),
  };
  const what = definition.kind.case === "kioskOffline" ? "kiosk" : "alert";
  const head = g.tier > 0 ? `[ESCALATED to tier ${g.tier}]` : g.status === "firing" ? "[FIRING]" : "[RESOLVED]";
  // (ASCII: a subject stays readable to mail tools that do not decode encoded words)
  const tail = g.tier > 0 ? " (not acknowledged)" : g.repeat ? " (still firing)" : "";
  const subject = `${head} ${body.ruleName}: ${count} ${what}${count === 1 ? "" : "s"}${g.group_id ? ` in group ${g.group_id}` : ""}${tail}`;

  const subs = await subscriptions.all(tx);
  const byUser = new Map(subs.map((s) => [s.userId, s]));
  // Web Push endpoints of whoever may need them: subscribers with a push route, on-call people.
  const pushUsers = [...subs.filter((s) => s.routes.some((r) => r.channel === Channel.WEB_PUSH)).map((s) => s.userId), ...onCall.flatMap((t) => t.userIds)];
  const push = await pushEndpointsOf(tx, [...new Set(pushUsers)]);
  const targets: Target[] =
    g.tier > 0
      ? onCall.filter((t) => t.level === g.tier).flatMap((t) => tierTargets(t, byUser, push))
      : [
          ...receiverTargets(definition.receivers, "rule"),
          ...(definition.receivers?.webPush ? (await pushEndpoints(tx)).map((e) => ({ channel: "web_push" as const, target: e, secretName: "", recipient: "rule" })) : []),
          ...subscriberTargets(subs, { severity: definition.severity || Severity.UNSPECIFIED, groupId: g.group_id, tags: new Set(kept.flatMap((c) => c.tags)), at: new Date() }, push),
          ...onCall.filter((t) => tierLevels.includes(t.level)).flatMap((t) => tierTargets(t, byUser, push)),
        ];
  for (const t of dedupeTargets(targets)) {
    if (t.suppressed) made.quiet++;
    await deliveries.insert(tx, { notificationId, ruleId: g.rule_id, groupId: g.group_id, status: g.status, count, subject, body, channel: t.channel, target: t.target, secretName: t.secretName, recipient: t.recipient, suppressed: t.suppressed });
  }
  return { ...made, made: true };
}

/** Each live rule's repeat interval and escalation, as SQL reads them (decoded once per rule version). */
async function timings(q: Pool | PoolClient): Promise<{ rule_id: string; repeat_ms: number; escalate_ms: number | null }[]> {
  const { rows } = await q.query<{ rule_id: string; version: string; definition: Buffer }>("SELECT rule_id, version, definition FROM rules WHERE deleted_at IS NULL");
  return rows.map((r) => {
    const t = ruleTiming(definitionOf(r.rule_id, r.version, r.definition));
    return { rule_id: r.rule_id, repeat_ms: t.repeatMs, escalate_ms: t.escalateMs };
  });
}

/**
 * Judges withheld alerts again (the least recently judged first, `limit` at a time): one no
 * longer silenced or inhibited that still fires waits to be notified like a newly fired one.
 * Returns how many were released.
 */
export async function releaseWithheld(tx: PoolClient, limit = 1000): Promise<number> {
  const { rows } = await tx.query<{ alert_id: string; rule_id: string; kiosk_id: string; group_id: string; sku: string; tags: string[]; name: string; version: string; definition: Buffer }>(
    `SELECT a.alert_id, a.rule_id, a.kiosk_id, a.group_id, a.sku, a.tags, r.name, r.version, r.definition FROM alerts a JOIN rules r USING (rule_id)
     WHERE a.withheld AND a.state = 'firing' ORDER BY a.checked_at NULLS FIRST LIMIT $1 FOR UPDATE OF a SKIP LOCKED`,
    [limit],
  );
  if (rows.length === 0) return 0;
  const judgeOf = await judge(tx);
  const released: string[] = [];
  const still: { alert_id: string; inhibited_by: string | null }[] = [];
  for (const r of rows) {
    const severity = severityLabel[definitionOf(r.rule_id, r.version, r.definition).severity] ?? "";
    const j = await judgeOf({ alertId: r.alert_id, labels: labelsOfRow(r, r.name, severity) });
    if (j.silencedBy.length || j.inhibitedBy) still.push({ alert_id: r.alert_id, inhibited_by: j.inhibitedBy ?? null });
    else released.push(r.alert_id);
  }
  if (still.length)
    await tx.query(
      `UPDATE alerts a SET inhibited_by = w.inhibited_by, checked_at = now() FROM jsonb_to_recordset($1::jsonb) AS w(alert_id uuid, inhibited_by uuid) WHERE a.alert_id = w.alert_id`,
      [JSON.stringify(still)],
    );
  if (released.length) {
    await tx.query("UPDATE alerts SET withheld = false, inhibited_by = NULL, checked_at = now() WHERE alert_id = ANY($1::uuid[])", [released]);
    await tx.query("INSERT INTO alert_changes (alert_id, rule_id, group_id, status) SELECT alert_id, rule_id, group_id, 'firing' FROM alerts WHERE alert_id = ANY($1::uuid[])", [released]);
  }
  return released.length;
}

/**
 * Repeats: firing, unacknowledged, notified alerts last notified their rule's repeat interval ago
 * wait to be notified again (due at once: their group wait is behind them). Returns how many.
 */
export async function scheduleRepeats(tx: PoolClient, groupWaitMs: number, limit = 2000): Promise<number> {
  const t = await timings(tx);
  if (t.length === 0) return 0;
  const min = Math.min(...t.map((r) => r.repeat_ms));
  const { rowCount } = await tx.query(
    `WITH t AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(rule_id uuid, repeat_ms double precision)),
     due AS (SELECT a.alert_id, a.rule_id, a.group_id FROM alerts a JOIN t USING (rule_id)
             WHERE a.state = 'firing' AND NOT a.withheld AND a.notified_at <= now() - make_interval(secs => $2::double precision / 1000)
               AND a.notified_at <= now() - make_interval(secs => t.repeat_ms / 1000)
             ORDER BY a.notified_at LIMIT $4 FOR UPDATE OF a SKIP LOCKED),
     marked AS (UPDATE alerts a SET notified_at = now() FROM due WHERE a.alert_id = due.alert_id)
     INSERT INTO alert_changes (alert_id, rule_id, group_id, status, repeat, created_at)
     SELECT alert_id, rule_id, group_id, 'firing', true, now() - make_interval(secs => $3::double precision / 1000) FROM due`,
    [JSON.stringify(t), min, groupWaitMs, limit],
  );
  return rowCount ?? 0;
}

/**
 * Escalation: firing alerts whose escalate_at passed go to the next on-call tier (due at once),
 * with the clock started again; past the last tier (or when the rule no longer escalates) the
 * clock stops. Returns how many escalated.
 */
export async function escalateDue(tx: PoolClient, groupWaitMs: number, limit = 2000): Promise<number> {
  const { rows: due } = await tx.query<{ n: string }>("SELECT count(*) AS n FROM (SELECT 1 FROM alerts WHERE state = 'firing' AND escalate_at <= now() LIMIT 1) d");
  if (due[0]!.n === "0") return 0;
  const t = (await timings(tx)).filter((r) => r.escalate_ms !== null);
  const levels = (await tx.query<{ level: number }>("SELECT level FROM on_call_tiers ORDER BY level")).rows.map((r) => r.level);
  const { rowCount } = await tx.query(
    `WITH t AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(rule_id uuid, escalate_ms double precision)),
     due AS (SELECT a.alert_id, a.rule_id, a.group_id, a.escalation_tier FROM alerts a
             WHERE a.state = 'firing' AND a.escalate_at <= now() ORDER BY a.escalate_at LIMIT $4 FOR UPDATE SKIP LOCKED),
     nxt AS (SELECT due.*, t.escalate_ms, CASE WHEN t.escalate_ms IS NULL THEN NULL ELSE (SELECT min(l) FROM unnest($2::int[]) l WHERE l > due.escalation_tier) END AS next_tier
             FROM due LEFT JOIN t USING (rule_id)),
     moved AS (UPDATE alerts a SET escalation_tier = coalesce(n.next_tier, a.escalation_tier),
                 escalate_at = CASE WHEN n.next_tier IS NULL THEN NULL ELSE now() + make_interval(secs => n.escalate_ms / 1000) END
               FROM nxt n WHERE a.alert_id = n.alert_id)
     INSERT INTO alert_changes (alert_id, rule_id, group_id, status, tier, created_at)
     SELECT alert_id, rule_id, group_id, 'firing', next_tier, now() - make_interval(secs => $3::double precision / 1000) FROM nxt WHERE next_tier IS NOT NULL`,
    [JSON.stringify(t), levels, groupWaitMs, limit],
  );
  return rowCount ?? 0;
}

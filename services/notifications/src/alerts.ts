// Alerts: one per rule and kiosk (and product, for stockout_predicted) while the rule's condition holds. Pending while the
// condition has not yet lasted the rule's for-duration (a pending alert whose condition
// clears is simply deleted), then firing → acknowledged → resolved. Every fired and
// resolved alert is recorded as a change for grouping (grouping.ts) and published on
// NATS through the outbox (notifications.alert.<id>.<kind>), which WatchAlerts follows.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AlertChangedEventSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/events_pb";
import { AlertState, RuleDefinitionSchema, Severity, type Alert } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { fromBinary } from "@bufbuild/protobuf";
import { enqueueEvents, failedPrecondition, notFound, notificationsSubjects, type AlertEventKind, type Pool, type PoolClient } from "@adminkiosk/runtime";
import type { LiveRule } from "./rules.js";

export interface AlertRow {
  alert_id: string;
  rule_id: string;
  rule_version: string;
  kiosk_id: string;
  /** stockout_predicted: the product; '' otherwise. */
  sku: string;
  group_id: string;
  tags: string[];
  state: "pending" | "firing" | "acknowledged" | "resolved";
  summary: string;
  fired_at: Date | null;
  acknowledged_at: Date | null;
  acknowledged_by: string;
  resolved_at: Date | null;
  resolve_reason: string;
  rule_name: string;
  definition: Buffer;
  inhibited_by: string | null;
  escalation_tier: number;
}

const states: Record<AlertRow["state"], AlertState> = {
  pending: AlertState.UNSPECIFIED,
  firing: AlertState.FIRING,
  acknowledged: AlertState.ACKNOWLEDGED,
  resolved: AlertState.RESOLVED,
};
export const stateNames: Partial<Record<AlertState, AlertRow["state"]>> = {
  [AlertState.FIRING]: "firing",
  [AlertState.ACKNOWLEDGED]: "acknowledged",
  [AlertState.RESOLVED]: "resolved",
};

export function toAlert(row: AlertRow): Alert {
  const definition = fromBinary(RuleDefinitionSchema, row.definition);
  return {
    $typeName: "adminkiosk.notifications.v1.Alert",
    alertId: row.alert_id,
    ruleId: row.rule_id,
    ruleVersion: BigInt(row.rule_version),
    ruleName: row.rule_name,
    severity: definition.severity ?? Severity.UNSPECIFIED,
    state: states[row.state],
    kioskId: row.kiosk_id,
    groupId: row.group_id,
    // service_not_serving: about a service, not a kiosk (alerts.sku holds the service).
    labels:
      definition.kind.case === "serviceNotServing"
        ? { service: row.sku }
        : { kiosk_id: row.kiosk_id, ...(row.sku ? { sku: row.sku } : {}), ...(row.group_id ? { group_id: row.group_id } : {}), ...(row.tags.length ? { tags: row.tags.join(",") } : {}) },
    tags: row.tags,
    summary: row.summary,
    fireTime: row.fired_at ? timestampFromDate(row.fired_at) : undefined,
    acknowledgeTime: row.acknowledged_at ? timestampFromDate(row.acknowledged_at) : undefined,
    acknowledgedBy: row.acknowledged_by,
    resolveTime: row.resolved_at ? timestampFromDate(row.resolved_at) : undefined,
    resolveReason: row.resolve_reason,
    silencedBy: [],
    inhibitedBy: row.inhibited_by ?? "",
    escalationTier: row.escalation_tier,
    // lowPaper → low_paper: the rule's kind as the API and fleet's query language name it.
    ruleKind: (definition.kind.case ?? "").replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
  };
}

/** A timestamp as ISO text with its microseconds (a page cursor that loses none). */
export const isoUs = (expr: string) => `to_char(${expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export const alertSelect = `SELECT a.alert_id, a.rule_id, a.rule_version, a.kiosk_id, a.sku, a.group_id, a.tags, a.state, a.summary, a.fired_at, a.acknowledged_at,
  a.acknowledged_by, a.resolved_at, a.resolve_reason, r.name AS rule_name, r.definition, a.inhibited_by, a.escalation_tier
  FROM alerts a JOIN rules r USING (rule_id)`;

async function loadAlerts(tx: PoolClient | Pool, ids: string[]): Promise<AlertRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await tx.query<AlertRow>(`${alertSelect} WHERE a.alert_id = ANY($1::uuid[])`, [ids]);
  return rows;
}

/** Publishes (in tx) the alerts' change; fired and resolved ones also wait to be grouped into a notification. */
export async function recordChanges(tx: PoolClient, ids: string[], kind: AlertEventKind): Promise<void> {
  const rows = await loadAlerts(tx, ids);
  // One statement for the lot (a storm fires thousands at once), in the order given.
  await enqueueEvents(
    tx,
    AlertChangedEventSchema,
    rows.map((row) => ({ subject: notificationsSubjects.alert(row.alert_id, kind), message: create(AlertChangedEventSchema, { alert: toAlert(row) }) })),
  );
  if (kind !== "acknowledged" && rows.length > 0)
    await tx.query(
      `INSERT INTO alert_changes (alert_id, rule_id, group_id, status) SELECT a.alert_id, a.rule_id, a.group_id, $2 FROM alerts a WHERE a.alert_id = ANY($1::uuid[])`,
      [rows.map((r) => r.alert_id), kind === "fired" ? "firing" : "resolved"],
    );
}

/** A rule's condition that holds for a kiosk (and product) since a time: see holdAll. */
export interface Holding {
  rule: LiveRule;
  kiosk: { kioskId: string; groupId: string; tags: string[] };
  since: Date;
  summary: string;
  /** stockout_predicted: the product; '' otherwise. */
  sku?: string;
}

/**
 * Conditions that hold: a pending alert for each (firing once it lasted the rule's
 * for-duration, see fireDue), unless one is open for that rule, kiosk and product already.
 * One statement however many; ordered by kiosk so concurrent batches lock rows alike.
 */
export async function holdAll(tx: PoolClient, holds: Holding[]): Promise<void> {
  if (holds.length === 0) return;
  const rows = holds
    .map((h) => ({ rule_id: h.rule.ruleId, rule_version: h.rule.version, kiosk_id: h.kiosk.kioskId, group_id: h.kiosk.groupId, tags: h.kiosk.tags, summary: h.summary, since: h.since.toISOString(), for_ms: h.rule.forMs, sku: h.sku ?? "" }))
    .sort((a, b) => (a.kiosk_id < b.kiosk_id ? -1 : a.kiosk_id > b.kiosk_id ? 1 : 0));
  await tx.query(
    `INSERT INTO alerts (rule_id, rule_version, kiosk_id, group_id, tags, state, summary, active_since, fire_at, sku)
     SELECT h.rule_id, h.rule_version, h.kiosk_id, h.group_id, h.tags, 'pending', h.summary, h.since, h.since + make_interval(secs => h.for_ms / 1000), h.sku
     FROM jsonb_to_recordset($1::jsonb) AS h(rule_id uuid, rule_version bigint, kiosk_id text, group_id text, tags text[], summary text, since timestamptz, for_ms double precision, sku text)
     ON CONFLICT (rule_id, kiosk_id, sku) WHERE state IN ('pending', 'firing', 'acknowledged') DO NOTHING`,
    [JSON.stringify(rows)],
  );
}

/** A rule's condition that cleared for a kiosk: see clearAll. */
export interface Clearing {
  ruleId: string;
  kioskId: string;
  reason?: string;
  /** Only this product; undefined: every one. */
  sku?: string;
}

/** Conditions that cleared: pending alerts are dropped, open ones resolved (and their resolution recorded). */
export async function clearAll(tx: PoolClient, clears: Clearing[]): Promise<void> {
  if (clears.length === 0) return;
  const rows = JSON.stringify(clears.map((c) => ({ rule_id: c.ruleId, kiosk_id: c.kioskId, sku: c.sku ?? null, reason: c.reason ?? "condition cleared" })));
  await tx.query(
    `DELETE FROM alerts a USING jsonb_to_recordset($1::jsonb) AS c(rule_id uuid, kiosk_id text, sku text)
     WHERE a.state = 'pending' AND a.rule_id = c.rule_id AND a.kiosk_id = c.kiosk_id AND (c.sku IS NULL OR a.sku = c.sku)`,
    [rows],
  );
  const { rows: resolved } = await tx.query<{ alert_id: string }>(
    `UPDATE alerts a SET state = 'resolved', resolved_at = now(), resolve_reason = c.reason
     FROM jsonb_to_recordset($1::jsonb) AS c(rule_id uuid, kiosk_id text, sku text, reason text)
     WHERE a.state IN ('firing', 'acknowledged') AND a.rule_id = c.rule_id AND a.kiosk_id = c.kiosk_id AND (c.sku IS NULL OR a.sku = c.sku) RETURNING a.alert_id`,
    [rows],
  );
  await recordChanges(
    tx,
    resolved.map((r) => r.alert_id),
    "resolved",
  );
}

/** The condition of `rule` holds for the kiosk (and product `sku`) since `since`: a pending alert, unless one is open. */
export async function conditionHolds(tx: PoolClient, rule: LiveRule, kiosk: { kioskId: string; groupId: string; tags: string[] }, since: Date, summary: string, sku = ""): Promise<void> {
  await holdAll(tx, [{ rule, kiosk, since, summary, sku }]);
}

/**
 * The condition of `rule` cleared for the kiosk (only product `sku` when given, every one
 * otherwise): a pending alert is dropped, an open one resolved.
 */
export async function conditionCleared(tx: PoolClient, ruleId: string, kioskId: string, reason = "condition cleared", sku?: string): Promise<void> {
  await clearAll(tx, [{ ruleId, kioskId, reason, sku }]);
}

/** Fires pending alerts whose for-duration has passed (any replica; SKIP LOCKED shares them). Returns how many. */
export async function fireDue(tx: PoolClient, limit = 2000): Promise<number> {
  const { rows } = await tx.query<{ alert_id: string }>(
    `UPDATE alerts SET state = 'firing', fired_at = now()
     WHERE alert_id IN (SELECT alert_id FROM alerts WHERE state = 'pending' AND fire_at <= now() ORDER BY fire_at LIMIT $1 FOR UPDATE SKIP LOCKED)
     RETURNING alert_id`,
    [limit],
  );
  await recordChanges(
    tx,
    rows.map((r) => r.alert_id),
    "fired",
  );
  return rows.length;
}

export const alerts = {
  async get(pool: Pool | PoolClient, alertId: string): Promise<AlertRow> {
    const { rows } = await pool.query<AlertRow>(`${alertSelect} WHERE a.alert_id = $1 AND a.state <> 'pending'`, [alertId]);
    if (!rows[0]) throw notFound(`alert ${alertId} not found`);
    return rows[0];
  },
  async list(pool: Pool, filter: { states: string[]; ruleId?: string }, limit: number, after?: { time: string; alertId: string }): Promise<(AlertRow & { sort_time: string })[]> {
    const { rows } = await pool.query<AlertRow & { sort_time: string }>(
      `${alertSelect.replace("SELECT ", `SELECT ${isoUs("coalesce(a.fired_at, a.active_since)")} AS sort_time, `)}
       WHERE a.state <> 'pending' AND (cardinality($1::text[]) = 0 OR a.state = ANY($1)) AND ($2::uuid IS NULL OR a.rule_id = $2)
         AND ($3::timestamptz IS NULL OR (coalesce(a.fired_at, a.active_since), a.alert_id) < ($3, $4::uuid))
       ORDER BY coalesce(a.fired_at, a.active_since) DESC, a.alert_id DESC LIMIT $5`,
      [filter.states, filter.ruleId ?? null, after?.time ?? null, after?.alertId ?? null, limit],
    );
    return rows;
  },
  async open(pool: Pool): Promise<AlertRow[]> {
    const { rows } = await pool.query<AlertRow>(`${alertSelect} WHERE a.state IN ('firing', 'acknowledged') ORDER BY a.fired_at DESC LIMIT 1000`);
    return rows;
  },
  async acknowledge(tx: PoolClient, alertId: string, by: string): Promise<AlertRow> {
    const current = await alerts.lock(tx, alertId);
    if (current.state === "resolved") throw failedPrecondition(`alert ${alertId} is resolved`);
    if (current.state === "firing") {
      await tx.query("UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2 WHERE alert_id = $1", [alertId, by]);
      await recordChanges(tx, [alertId], "acknowledged");
    }
    return alerts.get(tx, alertId);
  },
  async resolve(tx: PoolClient, alertId: string, reason: string): Promise<AlertRow> {
    const current = await alerts.lock(tx, alertId);
    if (current.state !== "resolved") {
      await tx.query("UPDATE alerts SET state = 'resolved', resolved_at = now(), resolve_reason = $2 WHERE alert_id = $1", [alertId, reason]);
      await recordChanges(tx, [alertId], "resolved");
    }
    return alerts.get(tx, alertId);
  },
  async lock(tx: PoolClient, alertId: string): Promise<{ state: AlertRow["state"] }> {
    const { rows } = await tx.query<{ state: AlertRow["state"] }>("SELECT state FROM alerts WHERE alert_id = $1 AND state <> 'pending' FOR UPDATE", [alertId]);
    if (!rows[0]) throw notFound(`alert ${alertId} not found`);
    return rows[0];
  },
  /** A deleted rule's alerts: pending ones dropped, open ones resolved. */
  async closeForRule(tx: PoolClient, ruleId: string): Promise<void> {
    await tx.query("DELETE FROM alerts WHERE rule_id = $1 AND state = 'pending'", [ruleId]);
    const { rows } = await tx.query<{ alert_id: string }>(
      "UPDATE alerts SET state = 'resolved', resolved_at = now(), resolve_reason = 'rule deleted' WHERE rule_id = $1 AND state IN ('firing', 'acknowledged') RETURNING alert_id",
      [ruleId],
    );
    const closed = await loadAlerts(
      tx,
      rows.map((r) => r.alert_id),
    );
    await enqueueEvents(
      tx,
      AlertChangedEventSchema,
      closed.map((row) => ({ subject: notificationsSubjects.alert(row.alert_id, "resolved"), message: create(AlertChangedEventSchema, { alert: toAlert(row) }) })),
    );
  },
};

// Alert rules: validation (a bad rule is InvalidArgument naming the field) and their
// store. A rule is versioned: every update writes a new version, all versions are kept.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { RuleDefinitionSchema, Severity, type Rule, type RuleDefinition } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { failedPrecondition, invalid, notFound, requirePhoneNumber, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { validateRulePolicy } from "./policy.js";

export type RuleKind =
  | "kiosk_offline"
  | "low_paper"
  | "printer_fault"
  | "stockout_predicted"
  | "alerting_status"
  | "telemetry_errors"
  | "low_stock"
  | "payment_failure_rate"
  | "orders_stuck"
  | "silent_failure"
  | "service_not_serving"
  | "help_requested";
const kindNames: Record<string, RuleKind> = {
  kioskOffline: "kiosk_offline",
  lowPaper: "low_paper",
  printerFault: "printer_fault",
  stockoutPredicted: "stockout_predicted",
  alertingStatus: "alerting_status",
  telemetryErrors: "telemetry_errors",
  lowStock: "low_stock",
  paymentFailureRate: "payment_failure_rate",
  ordersStuck: "orders_stuck",
  silentFailure: "silent_failure",
  serviceNotServing: "service_not_serving",
  helpRequested: "help_requested",
};
/** The kinds about the kiosk itself (link's events), beside stockout_predicted (ai's predictions). */
export const kioskKinds: RuleKind[] = ["kiosk_offline", "low_paper", "printer_fault"];
/** The kinds conditions.ts evaluates (link's telemetry through their own consumer; catalog's, payments' and orders' events). */
export const commerceKinds: RuleKind[] = ["alerting_status", "telemetry_errors", "low_stock", "payment_failure_rate", "orders_stuck", "silent_failure"];

/** What evaluation needs of a rule. */
export interface LiveRule {
  ruleId: string;
  version: number;
  name: string;
  kind: RuleKind;
  forMs: number;
  threshold: number | null;
  /** stockout_predicted, low_stock: only this product; service_not_serving: only this service ('' every one). */
  sku: string;
  /** payment_failure_rate: the window and the least number of decided payments in it. */
  windowMs: number;
  minCount: number;
  groupIds: string[];
  tags: string[];
}

export interface ValidRule {
  definition: RuleDefinition;
  name: string;
  kind: RuleKind;
  forMs: number;
  threshold: number | null;
  sku: string;
  windowMs: number;
  minCount: number;
}

/** Which optional channels this deployment has (a rule naming a missing one is refused). */
export interface AvailableChannels {
  sms: boolean;
  webPush: boolean;
}

const maxForMs = 7 * 86_400_000;
const emailPattern = /^[^\s@<>",;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$/;
const labelPattern = /^[A-Za-z0-9._:/-]{1,64}$/;
const skuPattern = /^[^.*>\s]{1,64}$/;

/** A rule's product filter: trimmed, empty (every product) or a SKU. */
function optionalSku(field: string, value: string): string {
  const sku = value.trim();
  if (sku !== "" && !skuPattern.test(sku)) throw invalid(field, "must be 1-64 characters without white space, '.', '*' or '>' (or empty: every product)");
  return sku;
}

const servicePattern = /^[a-z][a-z0-9_-]{0,63}$/;

function requireDuration(field: string, d: { seconds: bigint; nanos: number } | undefined): number {
  if (!d) throw invalid(field, "is required");
  const ms = d.seconds * 1000n + BigInt(Math.trunc(d.nanos / 1e6));
  if (d.seconds < 0n || d.nanos < 0 || ms <= 0n) throw invalid(field, "must be positive");
  if (ms > BigInt(maxForMs)) throw invalid(field, "must be at most 7 days");
  return Number(ms);
}

/** An optional duration: unset is 0, otherwise 0 … 7 days. */
function optionalDuration(field: string, d: { seconds: bigint; nanos: number } | undefined): number {
  if (!d) return 0;
  const ms = d.seconds * 1000n + BigInt(Math.trunc(d.nanos / 1e6));
  if (d.seconds < 0n || d.nanos < 0) throw invalid(field, "must not be negative");
  if (ms > BigInt(maxForMs)) throw invalid(field, "must be at most 7 days");
  return Number(ms);
}

function requireLabels(field: string, values: string[]): string[] {
  if (values.length > 50) throw invalid(field, "may name at most 50");
  values.forEach((v, i) => {
    if (!labelPattern.test(v)) throw invalid(`${field}[${i}]`, "must be 1-64 letters, digits or . _ : / -");
  });
  return [...new Set(values)];
}

/** Checks a definition; throws invalid(field, …) naming the first bad field. */
export function validateRule(def: RuleDefinition | undefined, secretNames: ReadonlySet<string>, available: AvailableChannels = { sms: false, webPush: false }): ValidRule {
  if (!def) throw invalid("definition", "is required");
  const name = def.name.trim();
  if (name.length === 0 || name.length > 200 || /[\u0000-\u001f\u007f]/.test(name)) throw invalid("definition.name", "must be 1-200 characters without control characters");
  if (!(def.severity in Severity) || def.severity === Severity.UNSPECIFIED) throw invalid("definition.severity", "must be SEVERITY_INFO, SEVERITY_WARNING or SEVERITY_CRITICAL");
  let forMs: number;
  let threshold: number | null = null;
  let sku = "";
  let windowMs = 0;
  let minCount = 0;
  switch (def.kind.case) {
    case "kioskOffline":
      forMs = requireDuration("definition.kiosk_offline.for_duration", def.kind.value.forDuration);
      break;
    case "lowPaper": {
      const p = def.kind.value.belowPercent;
      if (!Number.isFinite(p) || p <= 0 || p > 100) throw invalid("definition.low_paper.below_percent", "must be more than 0 and at most 100");
      threshold = p;
      forMs = requireDuration("definition.low_paper.for_duration", def.kind.value.forDuration);
      break;
    }
    case "printerFault":
      forMs = requireDuration("definition.printer_fault.for_duration", def.kind.value.forDuration);
      break;
    case "stockoutPredicted": {
      sku = def.kind.value.sku = optionalSku("definition.stockout_predicted.sku", def.kind.value.sku);
      forMs = optionalDuration("definition.stockout_predicted.for_duration", def.kind.value.forDuration);
      break;
    }
    case "alertingStatus":
      forMs = requireDuration("definition.alerting_status.for_duration", def.kind.value.forDuration);
      break;
    case "telemetryErrors":
      forMs = requireDuration("definition.telemetry_errors.for_duration", def.kind.value.forDuration);
      break;
    case "lowStock": {
      sku = def.kind.value.sku = optionalSku("definition.low_stock.sku", def.kind.value.sku);
      forMs = optionalDuration("definition.low_stock.for_duration", def.kind.value.forDuration);
      break;
    }
    case "paymentFailureRate": {
      const v = def.kind.value;
      if (!Number.isFinite(v.threshold) || v.threshold <= 0 || v.threshold >= 100)
        throw invalid("definition.payment_failure_rate.threshold", "must be a percentage more than 0 and less than 100");
      threshold = v.threshold;
      windowMs = requireDuration("definition.payment_failure_rate.window", v.window);
      if (windowMs < 60_000) throw invalid("definition.payment_failure_rate.window", "must be at least 1 minute");
      if (v.minPayments > 10_000) throw invalid("definition.payment_failure_rate.min_payments", "must be at most 10000");
      minCount = v.minPayments === 0 ? 5 : v.minPayments;
      v.minPayments = minCount;
      forMs = 0;
      break;
    }
    case "ordersStuck":
      forMs = requireDuration("definition.orders_stuck.for_duration", def.kind.value.forDuration);
      break;
    case "silentFailure":
      forMs = optionalDuration("definition.silent_failure.for_duration", def.kind.value.forDuration);
      break;
    case "serviceNotServing": {
      sku = def.kind.value.service.trim();
      if (sku !== "" && !servicePattern.test(sku)) throw invalid("definition.service_not_serving.service", "must be a service name (1-64 lower-case letters, digits, '_' or '-', from a letter) or empty: every service");
      def.kind.value.service = sku;
      forMs = requireDuration("definition.service_not_serving.for_duration", def.kind.value.forDuration);
      break;
    }
    case "helpRequested":
      // A call for help is news at once: no for-duration.
      forMs = 0;
      break;
    default:
      throw invalid(
        "definition.kind",
        "must be one of kiosk_offline, low_paper, printer_fault, stockout_predicted, alerting_status, telemetry_errors, low_stock, payment_failure_rate, orders_stuck, silent_failure, service_not_serving, help_requested",
      );
  }
  const matcher = def.matcher;
  if (matcher && def.kind.case === "serviceNotServing" && (matcher.groupIds.length > 0 || matcher.tags.length > 0))
    throw invalid("definition.matcher", "must be empty for service_not_serving (it watches services, not kiosks)");
  if (matcher) {
    matcher.groupIds = requireLabels("definition.matcher.group_ids", matcher.groupIds);
    matcher.tags = requireLabels("definition.matcher.tags", matcher.tags);
  }
  const receivers = def.receivers;
  if (receivers) {
    if (receivers.emails.length > 20) throw invalid("definition.receivers.emails", "may name at most 20");
    receivers.emails = receivers.emails.map((e, i) => {
      const v = e.trim().toLowerCase();
      if (!emailPattern.test(v)) throw invalid(`definition.receivers.emails[${i}]`, "must be an email address");
      return v;
    });
    if (receivers.webhooks.length > 20) throw invalid("definition.receivers.webhooks", "may name at most 20");
    receivers.webhooks.forEach((w, i) => {
      let u: URL | undefined;
      try {
        u = new URL(w.url);
      } catch {
        u = undefined;
      }
      if (!u || (u.protocol !== "http:" && u.protocol !== "https:") || w.url.length > 2000) throw invalid(`definition.receivers.webhooks[${i}].url`, "must be an http or https URL");
      if (!secretNames.has(w.secretName)) throw invalid(`definition.receivers.webhooks[${i}].secret_name`, "names no secret in the service's WEBHOOK_SECRETS");
    });
    if (receivers.phoneNumbers.length > 20) throw invalid("definition.receivers.phone_numbers", "may name at most 20");
    if (receivers.phoneNumbers.length > 0 && !available.sms) throw invalid("definition.receivers.phone_numbers", "SMS is not configured (SMS_PROVIDER_URL)");
    receivers.phoneNumbers = [...new Set(receivers.phoneNumbers.map((p, i) => requirePhoneNumber(`definition.receivers.phone_numbers[${i}]`, p)))];
    if (receivers.webPush && !available.webPush) throw invalid("definition.receivers.web_push", "Web Push is not configured (WEB_PUSH_VAPID_PUBLIC_KEY, WEB_PUSH_VAPID_PRIVATE_KEY)");
  }
  validateRulePolicy(def);
  def.name = name;
  return { definition: def, name, kind: kindNames[def.kind.case]!, forMs, threshold, sku, windowMs, minCount };
}

interface RuleRow {
  rule_id: string;
  version: string;
  name: string;
  kind: RuleKind;
  for_ms: string;
  threshold: number | null;
  sku: string;
  window_ms: string;
  min_count: number;
  group_ids: string[];
  tags: string[];
  definition: Buffer;
  created_at: Date;
  updated_at: Date;
}

export function toRule(row: RuleRow): Rule {
  return {
    $typeName: "adminkiosk.notifications.v1.Rule",
    ruleId: row.rule_id,
    version: BigInt(row.version),
    definition: fromBinary(RuleDefinitionSchema, row.definition),
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
  };
}

const columns = "rule_id, version, name, kind, for_ms, threshold, sku, window_ms, min_count, group_ids, tags, definition, created_at, updated_at";

export const rules = {
  async insert(pool: Pool, r: ValidRule): Promise<Rule> {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const { rows } = await client.query<RuleRow>(
        `INSERT INTO rules (name, kind, for_ms, threshold, group_ids, tags, definition, sku, window_ms, min_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${columns}`,
        [r.name, r.kind, r.forMs, r.threshold, r.definition.matcher?.groupIds ?? [], r.definition.matcher?.tags ?? [], Buffer.from(toBinary(RuleDefinitionSchema, r.definition)), r.sku, r.windowMs, r.minCount],
      );
      await client.query("INSERT INTO rule_versions (rule_id, version, definition) VALUES ($1, 1, $2)", [rows[0]!.rule_id, rows[0]!.definition]);
      await client.query("COMMIT");
      return toRule(rows[0]!);
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  },
  async get(pool: Pool | PoolClient, ruleId: string): Promise<Rule> {
    const { rows } = await pool.query<RuleRow>(`SELECT ${columns} FROM rules WHERE rule_id = $1 AND deleted_at IS NULL`, [ruleId]);
    if (!rows[0]) throw notFound(`rule ${ruleId} not found`);
    return toRule(rows[0]);
  },
  async list(pool: Pool, limit: number, after?: { createdAt: string; ruleId: string }): Promise<{ rule: Rule; cursorTime: string }[]> {
    const { rows } = await pool.query<RuleRow & { cursor_time: string }>(
      `SELECT ${columns}, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_time FROM rules WHERE deleted_at IS NULL AND ($1::timestamptz IS NULL OR (created_at, rule_id) > ($1, $2::uuid))
       ORDER BY created_at, rule_id LIMIT $3`,
      [after?.createdAt ?? null, after?.ruleId ?? null, limit],
    );
    return rows.map((r) => ({ rule: toRule(r), cursorTime: r.cursor_time }));
  },
  async update(tx: PoolClient, ruleId: string, r: ValidRule, expectedVersion: bigint): Promise<Rule> {
    const { rows: current } = await tx.query<{ version: string }>("SELECT version FROM rules WHERE rule_id = $1 AND deleted_at IS NULL FOR UPDATE", [ruleId]);
    if (!current[0]) throw notFound(`rule ${ruleId} not found`);
    if (expectedVersion !== 0n && BigInt(current[0].version) !== expectedVersion)
      throw failedPrecondition(`rule ${ruleId} is at version ${current[0].version}, not ${expectedVersion}`);
    const { rows } = await tx.query<RuleRow>(
      `UPDATE rules SET version = version + 1, name = $2, kind = $3, for_ms = $4, threshold = $5, group_ids = $6, tags = $7, definition = $8, sku = $9, window_ms = $10, min_count = $11, updated_at = now()
       WHERE rule_id = $1 RETURNING ${columns}`,
      [ruleId, r.name, r.kind, r.forMs, r.threshold, r.definition.matcher?.groupIds ?? [], r.definition.matcher?.tags ?? [], Buffer.from(toBinary(RuleDefinitionSchema, r.definition)), r.sku, r.windowMs, r.minCount],
    );
    await tx.query("INSERT INTO rule_versions (rule_id, version, definition) VALUES ($1, $2, $3)", [ruleId, rows[0]!.version, rows[0]!.definition]);
    return toRule(rows[0]!);
  },
  /** Marks the rule deleted; returns false when there was none. */
  async softDelete(tx: PoolClient, ruleId: string): Promise<boolean> {
    const { rowCount } = await tx.query("UPDATE rules SET deleted_at = now() WHERE rule_id = $1 AND deleted_at IS NULL", [ruleId]);
    return (rowCount ?? 0) > 0;
  },
  async live(tx: PoolClient | Pool, kinds: RuleKind[]): Promise<LiveRule[]> {
    const { rows } = await tx.query<RuleRow>(`SELECT ${columns} FROM rules WHERE deleted_at IS NULL AND kind = ANY($1)`, [kinds]);
    return rows.map((r) => ({
      ruleId: r.rule_id,
      version: Number(r.version),
      name: r.name,
      kind: r.kind,
      forMs: Number(r.for_ms),
      threshold: r.threshold,
      sku: r.sku,
      windowMs: Number(r.window_ms),
      minCount: r.min_count,
      groupIds: r.group_ids,
      tags: r.tags,
    }));
  },
};

/** Whether a rule's matcher selects a kiosk with these labels (empty lists match all). */
export function matches(rule: Pick<LiveRule, "groupIds" | "tags">, kiosk: { groupId: string; tags: string[] }): boolean {
  if (rule.groupIds.length > 0 && !rule.groupIds.includes(kiosk.groupId)) return false;
  return rule.tags.every((t) => kiosk.tags.includes(t));
}

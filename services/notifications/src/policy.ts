// The alert policy, after Prometheus Alertmanager: matchers over an alert's labels, silences
// (while one is active no notification goes out for the alerts it matches), inhibit rules (an
// open source alert mutes target alerts sharing the `equal` labels), each person's subscription
// (routes: what reaches them on which channel; quiet hours in their time zone, critical
// overrides) and the on-call tiers an escalating rule pages. The sweeper (sweeper.ts) applies
// them when it makes a notification; see docs/architecture.md for how they combine.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Channel, RuleDefinitionSchema, Severity, type Alert, type Receivers, type RuleDefinition } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import {
  MatchOperator,
  OnCallTierSchema,
  SilenceEventSchema,
  SubscriptionSchema,
  type InhibitRule,
  type Matcher,
  type OnCallTier,
  type Silence,
  type Subscription,
} from "@adminkiosk/proto/adminkiosk/notifications/v1/policy_pb";
import { enqueueEvent, invalid, notFound, notificationsSubjects, requirePhoneNumber, type Pool, type PoolClient } from "@adminkiosk/runtime";

// ---- matchers ----

export type MatchOp = "=" | "!=" | "=~" | "!~";
export interface StoredMatcher {
  label: string;
  op: MatchOp;
  value: string;
}

/** The labels an alert can be matched on. */
export const matchLabels = ["alertname", "rule_id", "severity", "kiosk_id", "group_id", "sku", "tags"] as const;
export type MatchLabel = (typeof matchLabels)[number];
export interface AlertLabels {
  alertname: string;
  rule_id: string;
  severity: string;
  kiosk_id: string;
  group_id: string;
  sku: string;
  tags: string[];
}

const ops: Record<number, MatchOp> = { [MatchOperator.EQUAL]: "=", [MatchOperator.NOT_EQUAL]: "!=", [MatchOperator.REGEX]: "=~", [MatchOperator.NOT_REGEX]: "!~" };
const opEnums: Record<MatchOp, MatchOperator> = { "=": MatchOperator.EQUAL, "!=": MatchOperator.NOT_EQUAL, "=~": MatchOperator.REGEX, "!~": MatchOperator.NOT_REGEX };
export const severityLabel: Record<number, string> = { [Severity.INFO]: "info", [Severity.WARNING]: "warning", [Severity.CRITICAL]: "critical" };

/** Validates matchers (field `field[i].label` …); a bad regular expression names its matcher. */
export function validateMatchers(field: string, matchers: Matcher[], min = 1): StoredMatcher[] {
  if (matchers.length < min) throw invalid(field, `needs at least ${min} matcher`);
  if (matchers.length > 20) throw invalid(field, "may hold at most 20 matchers");
  return matchers.map((m, i) => {
    const at = `${field}[${i}]`;
    if (!(matchLabels as readonly string[]).includes(m.label)) throw invalid(`${at}.label`, `must be one of ${matchLabels.join(", ")}`);
    const op = ops[m.operator];
    if (!op) throw invalid(`${at}.operator`, "must be MATCH_OPERATOR_EQUAL, _NOT_EQUAL, _REGEX or _NOT_REGEX");
    if (m.value.length > 200 || /[\u0000-\u001f\u007f]/.test(m.value)) throw invalid(`${at}.value`, "must be at most 200 characters without control characters");
    if (op === "=~" || op === "!~") {
      if (/\(\?<?[=!]|\\[1-9]|\\k</.test(m.value)) throw invalid(`${at}.value`, "lookaround and backreferences are not allowed");
      try {
        new RegExp(`^(?:${m.value})$`, "u");
      } catch (err) {
        throw invalid(`${at}.value`, `is not a valid regular expression (${err instanceof Error ? err.message : String(err)})`);
      }
    }
    return { label: m.label, op, value: m.value };
  });
}

export const toMatcher = (m: StoredMatcher): Matcher => ({ $typeName: "adminkiosk.notifications.v1.Matcher", label: m.label, operator: opEnums[m.op], value: m.value });

const regexCache = new Map<string, RegExp>();
function regex(value: string): RegExp {
  let r = regexCache.get(value);
  if (!r) {
    if (regexCache.size > 1000) regexCache.clear();
    r = new RegExp(`^(?:${value})$`, "u");
    regexCache.set(value, r);
  }
  return r;
}

function matchOne(m: StoredMatcher, labels: AlertLabels): boolean {
  const label = m.label as MatchLabel;
  const values = label === "tags" ? labels.tags : [labels[label]];
  const test = m.op === "=" || m.op === "!=" ? (v: string) => v === m.value : (v: string) => regex(m.value).test(v);
  // A list label (tags) holds for = / =~ when any value matches; an empty list is the value "".
  const any = (values.length ? values : [""]).some(test);
  return m.op === "=" || m.op === "=~" ? any : !any;
}

export const matchesAll = (matchers: StoredMatcher[], labels: AlertLabels) => matchers.every((m) => matchOne(m, labels));

const labelValue = (labels: AlertLabels, name: string): string => (name === "tags" ? labels.tags.join(",") : (labels[name as Exclude<MatchLabel, "tags">] ?? ""));

// ---- silences ----

interface SilenceRow {
  silence_id: string;
  matchers: StoredMatcher[];
  starts_at: Date;
  ends_at: Date;
  created_by: string;
  comment: string;
  created_at: Date;
  expired_by: string;
  active: boolean;
  ends_key: string;
}
const silenceColumns = `silence_id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_by, (starts_at <= now() AND ends_at > now()) AS active,
  to_char(ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ends_key`;

export function toSilence(r: SilenceRow): Silence {
  return {
    $typeName: "adminkiosk.notifications.v1.Silence",
    silenceId: r.silence_id,
    matchers: r.matchers.map(toMatcher),
    startTime: timestampFromDate(r.starts_at),
    endTime: timestampFromDate(r.ends_at),
    createdBy: r.created_by,
    comment: r.comment,
    createTime: timestampFromDate(r.created_at),
    expiredBy: r.expired_by,
    active: r.active,
  };
}

const maxAheadMs = 30 * 86_400_000;
const maxSilenceMs = 90 * 86_400_000;

export const silences = {
  async create(tx: PoolClient, s: { matchers: StoredMatcher[]; start?: Date; end: Date; comment: string; by: string }): Promise<Silence> {
    const { rows } = await tx.query<SilenceRow>(
      `INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment) VALUES ($1, coalesce($2, now()), $3, $4, $5) RETURNING ${silenceColumns}`,
      [JSON.stringify(s.matchers), s.start ?? null, s.end, s.by, s.comment],
    );
    const silence = toSilence(rows[0]!);
    await enqueueEvent(tx, notificationsSubjects.silence(silence.silenceId, "created"), SilenceEventSchema, create(SilenceEventSchema, { silence }));
    return silence;
  },
  /** Ends it now (an ended one: unchanged). */
  async expire(tx: PoolClient, silenceId: string, by: string): Promise<Silence> {
    const { rows } = await tx.query<SilenceRow>(
      // A pending one (not started yet) ends too: its start moves back just before now.
      `UPDATE silences SET starts_at = least(starts_at, now() - interval '1 microsecond'), ends_at = now(), expired_by = $2
       WHERE silence_id = $1 AND ends_at > now() RETURNING ${silenceColumns}`,
      [silenceId, by],
    );
    if (rows[0]) {
      const silence = toSilence(rows[0]);
      await enqueueEvent(tx, notificationsSubjects.silence(silenceId, "expired"), SilenceEventSchema, create(SilenceEventSchema, { silence }));
      return silence;
    }
    const { rows: found } = await tx.query<SilenceRow>(`SELECT ${silenceColumns} FROM silences WHERE silence_id = $1`, [silenceId]);
    if (!found[0]) throw notFound(`silence ${silenceId} not found`);
    return toSilence(found[0]);
  },
  /** Active and pending ones first (by end), then, with `includeExpired`, ended ones, newest end first. */
  async list(pool: Pool, includeExpired: boolean, limit: number, after?: { time: string; id: string }): Promise<SilenceRow[]> {
    const { rows } = await pool.query<SilenceRow>(
      `SELECT ${silenceColumns} FROM silences WHERE ($1 OR ends_at > now()) AND ($2::timestamptz IS NULL OR (ends_at, silence_id) < ($2, $3::uuid))
       ORDER BY ends_at DESC, silence_id DESC LIMIT $4`,
      [includeExpired, after?.time ?? null, after?.id ?? null, limit],
    );
    return rows;
  },
  async active(q: Pool | PoolClient): Promise<{ id: string; matchers: StoredMatcher[] }[]> {
    const { rows } = await q.query<{ silence_id: string; matchers: StoredMatcher[] }>("SELECT silence_id, matchers FROM silences WHERE starts_at <= now() AND ends_at > now()");
    return rows.map((r) => ({ id: r.silence_id, matchers: r.matchers }));
  },
};

/** Checks a CreateSilenceRequest's times: start (unset: now) at most 30 days ahead, end after it, at most 90 days after it. */
export function silenceTimes(start: Date | undefined, end: Date | undefined, now = new Date()): { start?: Date; end: Date } {
  if (start && (Number.isNaN(start.getTime()) || start.getTime() > now.getTime() + maxAheadMs)) throw invalid("start_time", "must be at most 30 days ahead");
  if (!end || Number.isNaN(end.getTime())) throw invalid("end_time", "is required");
  const from = start && start.getTime() > now.getTime() ? start : now;
  if (end.getTime() <= from.getTime()) throw invalid("end_time", "must be after start_time and in the future");
  if (end.getTime() - from.getTime() > maxSilenceMs) throw invalid("end_time", "must be at most 90 days after start_time");
  return { start, end };
}

// ---- inhibit rules ----

interface InhibitRow {
  inhibit_rule_id: string;
  source_matchers: StoredMatcher[];
  target_matchers: StoredMatcher[];
  equal: string[];
  comment: string;
  created_by: string;
  created_at: Date;
}
export function toInhibitRule(r: InhibitRow): InhibitRule {
  return {
    $typeName: "adminkiosk.notifications.v1.InhibitRule",
    inhibitRuleId: r.inhibit_rule_id,
    sourceMatchers: r.source_matchers.map(toMatcher),
    targetMatchers: r.target_matchers.map(toMatcher),
    equal: r.equal,
    comment: r.comment,
    createdBy: r.created_by,
    createTime: timestampFromDate(r.created_at),
  };
}

export function validateInhibitRule(r: InhibitRule | undefined) {
  if (!r) throw invalid("inhibit_rule", "is required");
  const source = validateMatchers("inhibit_rule.source_matchers", r.sourceMatchers);
  const target = validateMatchers("inhibit_rule.target_matchers", r.targetMatchers);
  if (r.equal.length > matchLabels.length) throw invalid("inhibit_rule.equal", `may name at most ${matchLabels.length} labels`);
  r.equal.forEach((l, i) => {
    if (!(matchLabels as readonly string[]).includes(l)) throw invalid(`inhibit_rule.equal[${i}]`, `must be one of ${matchLabels.join(", ")}`);
  });
  if (r.comment.length > 500 || /[\u0000-\u001f\u007f]/.test(r.comment)) throw invalid("inhibit_rule.comment", "must be at most 500 characters without control characters");
  return { source, target, equal: [...new Set(r.equal)], comment: r.comment };
}

export const inhibitRules = {
  async create(pool: Pool, r: ReturnType<typeof validateInhibitRule>, by: string): Promise<InhibitRule> {
    const { rows } = await pool.query<InhibitRow>(
      "INSERT INTO inhibit_rules (source_matchers, target_matchers, equal, comment, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING *",
      [JSON.stringify(r.source), JSON.stringify(r.target), r.equal, r.comment, by],
    );
    return toInhibitRule(rows[0]!);
  },
  async list(q: Pool | PoolClient): Promise<InhibitRow[]> {
    return (await q.query<InhibitRow>("SELECT * FROM inhibit_rules ORDER BY created_at, inhibit_rule_id LIMIT 1000")).rows;
  },
  async delete(pool: Pool, id: string): Promise<void> {
    const { rowCount } = await pool.query("DELETE FROM inhibit_rules WHERE inhibit_rule_id = $1", [id]);
    if (!rowCount) throw notFound(`inhibit rule ${id} not found`);
  },
};

// ---- judging alerts: silenced, inhibited ----

/** What judging an alert needs of it. */
export interface JudgedAlert {
  alertId: string;
  labels: AlertLabels;
}

export interface Judgement {
  silencedBy: string[];
  /** The open alert inhibiting it. */
  inhibitedBy?: string;
}

interface OpenAlertRow {
  alert_id: string;
  rule_id: string;
  kiosk_id: string;
  group_id: string;
  sku: string;
  tags: string[];
  name: string;
  definition: Buffer;
}

/** Decodes each rule's severity once per judge. */
function severityOf(cache: Map<string, string>, ruleId: string, definition: Buffer): string {
  let s = cache.get(ruleId);
  if (s === undefined) {
    s = severityLabel[fromBinary(RuleDefinitionSchema, definition).severity] ?? "";
    cache.set(ruleId, s);
  }
  return s;
}

export function labelsOfRow(row: { rule_id: string; kiosk_id: string; group_id: string; sku: string; tags: string[] }, name: string, severity: string): AlertLabels {
  return { alertname: name, rule_id: row.rule_id, severity, kiosk_id: row.kiosk_id, group_id: row.group_id, sku: row.sku, tags: row.tags };
}

/** Columns a label can be compared on in SQL (`equal` labels and = source matchers; everything is checked again after). */
const equalColumns: Partial<Record<MatchLabel, string>> = { rule_id: "a.rule_id::text", kiosk_id: "a.kiosk_id", group_id: "a.group_id", sku: "a.sku", alertname: "r.name" };

/**
 * A judge for a batch of alerts: which active silences match each, and which open alert inhibits
 * it. Reads the active silences and inhibit rules once; open source alerts once per rule and set of
 * `equal` values (a storm of one group asks once).
 */
export async function judge(q: Pool | PoolClient): Promise<(a: JudgedAlert) => Promise<Judgement>> {
  const active = await silences.active(q);
  const rules = await inhibitRules.list(q);
  const severities = new Map<string, string>();
  const sources = new Map<string, Promise<JudgedAlert[]>>();
  const sourcesFor = (rule: InhibitRow, labels: AlertLabels): Promise<JudgedAlert[]> => {
    const key = `${rule.inhibit_rule_id}\u0000${rule.equal.map((l) => labelValue(labels, l)).join("\u0000")}`;
    let found = sources.get(key);
    if (!found) {
      const where: string[] = [];
      const params: string[] = [];
      for (const l of rule.equal) {
        const column = equalColumns[l as MatchLabel];
        if (column) {
          params.push(labelValue(labels, l));
          where.push(`${column} = $${params.length}`);
        }
      }
      // The source's = matchers narrow the read too (a storm's group holds thousands of open alerts, its source one or two).
      for (const m of rule.source_matchers) {
        const column = equalColumns[m.label as MatchLabel];
        if (column && m.op === "=") {
          params.push(m.value);
          where.push(`${column} = $${params.length}`);
        }
      }
      found = q
        .query<OpenAlertRow>(
          `SELECT a.alert_id, a.rule_id, a.kiosk_id, a.group_id, a.sku, a.tags, r.name, r.definition FROM alerts a JOIN rules r USING (rule_id)
           WHERE a.state IN ('firing', 'acknowledged') ${where.map((w) => `AND ${w}`).join(" ")} LIMIT 100000`,
          params,
        )
        .then(({ rows }) =>
          rows
            .map((r) => ({ alertId: r.alert_id, labels: labelsOfRow(r, r.name, severityOf(severities, r.rule_id, r.definition)) }))
            .filter((s) => matchesAll(rule.source_matchers, s.labels) && rule.equal.every((l) => labelValue(s.labels, l) === labelValue(labels, l))),
        );
      sources.set(key, found);
    }
    return found;
  };
  return async (a) => {
    const silencedBy = active.filter((s) => matchesAll(s.matchers, a.labels)).map((s) => s.id);
    for (const rule of rules) {
      if (!matchesAll(rule.target_matchers, a.labels)) continue;
      const source = (await sourcesFor(rule, a.labels)).find((s) => s.alertId !== a.alertId);
      if (source) return { silencedBy, inhibitedBy: source.alertId };
    }
    return { silencedBy };
  };
}

/** An alert as the API shows it, with the active silences matching it now. */
export function markSilenced(alert: Alert, active: { id: string; matchers: StoredMatcher[] }[]): Alert {
  const labels: AlertLabels = {
    alertname: alert.ruleName,
    rule_id: alert.ruleId,
    severity: severityLabel[alert.severity] ?? "",
    kiosk_id: alert.kioskId,
    group_id: alert.groupId,
    sku: alert.labels["sku"] ?? "",
    tags: alert.tags,
  };
  alert.silencedBy = active.filter((s) => matchesAll(s.matchers, labels)).map((s) => s.id);
  return alert;
}

// ---- people: subscriptions and quiet hours ----

const emailPattern = /^[^\s@<>",;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$/;
const labelPattern = /^[A-Za-z0-9._:/-]{1,64}$/;
const clock = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** The optional channels a deployment has (SMS provider, VAPID keys). */
export interface PersonalAvailability {
  sms: boolean;
  webPush: boolean;
}

/**
 * Channels a person can be reached on: the contact each needs in the subscription (Web Push needs
 * none: it reaches every browser where the person turned push on) and whether the deployment has
 * it. Other channels are added here.
 */
export const personalChannels: Partial<
  Record<Channel, { name: Target["channel"]; contact: (s: Subscription) => boolean; contactField: string; available?: (a: PersonalAvailability) => string | undefined }>
> = {
  [Channel.EMAIL]: { name: "email", contact: (s) => s.email !== "", contactField: "subscription.email" },
  [Channel.WEBHOOK]: { name: "webhook", contact: (s) => !!s.webhook?.url, contactField: "subscription.webhook" },
  [Channel.SMS]: { name: "sms", contact: (s) => s.phoneNumber !== "", contactField: "subscription.phone_number", available: (a) => (a.sms ? undefined : "SMS is not configured (SMS_PROVIDER_URL)") },
  [Channel.WEB_PUSH]: {
    name: "web_push",
    contact: () => true,
    contactField: "",
    available: (a) => (a.webPush ? undefined : "Web Push is not configured (WEB_PUSH_VAPID_PUBLIC_KEY, WEB_PUSH_VAPID_PRIVATE_KEY)"),
  },
};

function validUrl(field: string, url: string) {
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== "http:" && u.protocol !== "https:") || url.length > 2000) throw invalid(field, "must be an http or https URL");
}

export function validTimeZone(field: string, tz: string): string {
  if (!tz || tz.length > 64) throw invalid(field, "must be an IANA time zone (e.g. Europe/Prague)");
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    throw invalid(field, "must be an IANA time zone (e.g. Europe/Prague)");
  }
}

/** Checks the caller's subscription (field names under `subscription.`); returns it normalized. */
export function validateSubscription(
  s: Subscription | undefined,
  userId: string,
  secretNames: ReadonlySet<string>,
  available: PersonalAvailability = { sms: false, webPush: false },
): Subscription {
  const sub = create(SubscriptionSchema, s ?? {});
  sub.userId = userId;
  sub.updateTime = undefined;
  sub.email = sub.email.trim().toLowerCase();
  if (sub.email && !emailPattern.test(sub.email)) throw invalid("subscription.email", "must be an email address");
  if (sub.phoneNumber.trim()) sub.phoneNumber = requirePhoneNumber("subscription.phone_number", sub.phoneNumber);
  else sub.phoneNumber = "";
  if (sub.webhook && (sub.webhook.url || sub.webhook.secretName)) {
    validUrl("subscription.webhook.url", sub.webhook.url);
    if (!secretNames.has(sub.webhook.secretName)) throw invalid("subscription.webhook.secret_name", "names no secret in the service's WEBHOOK_SECRETS");
  } else sub.webhook = undefined;
  if (sub.routes.length > 20) throw invalid("subscription.routes", "may hold at most 20 routes");
  sub.routes.forEach((r, i) => {
    const at = `subscription.routes[${i}]`;
    const channel = personalChannels[r.channel];
    if (!channel) throw invalid(`${at}.channel`, `must be one of ${Object.values(personalChannels).map((c) => c!.name).join(", ")}`);
    const missing = channel.available?.(available);
    if (missing) throw invalid(`${at}.channel`, missing);
    if (!channel.contact(sub)) throw invalid(channel.contactField, `is required for a ${channel.name} route (${at})`);
    r.severities.forEach((v, j) => {
      if (!severityLabel[v]) throw invalid(`${at}.severities[${j}]`, "must be SEVERITY_INFO, SEVERITY_WARNING or SEVERITY_CRITICAL");
    });
    r.severities = [...new Set(r.severities)];
    for (const [name, list] of [["group_ids", r.groupIds], ["tags", r.tags]] as const) {
      if (list.length > 50) throw invalid(`${at}.${name}`, "may name at most 50");
      list.forEach((v, j) => {
        if (!labelPattern.test(v)) throw invalid(`${at}.${name}[${j}]`, "must be 1-64 letters, digits or . _ : / -");
      });
    }
    r.groupIds = [...new Set(r.groupIds)];
    r.tags = [...new Set(r.tags)];
  });
  const q = sub.quietHours;
  if (q && (q.start || q.end || q.timeZone)) {
    if (!clock.test(q.start)) throw invalid("subscription.quiet_hours.start", 'must be "HH:MM" (24-hour)');
    if (!clock.test(q.end)) throw invalid("subscription.quiet_hours.end", 'must be "HH:MM" (24-hour)');
    if (q.start === q.end) throw invalid("subscription.quiet_hours.end", "must differ from start");
    q.timeZone = validTimeZone("subscription.quiet_hours.time_zone", q.timeZone);
  } else sub.quietHours = undefined;
  return sub;
}

/** Minutes since local midnight in `timeZone` at `at`. */
function localMinutes(at: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(at);
  const n = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return n("hour") * 60 + n("minute");
}

/** Whether `at` falls in the quiet hours (start inclusive, end exclusive; start > end spans midnight). */
export function inQuietHours(q: { start: string; end: string; timeZone: string }, at: Date): boolean {
  const [sh, sm] = q.start.split(":").map(Number) as [number, number];
  const [eh, em] = q.end.split(":").map(Number) as [number, number];
  const start = sh * 60 + sm;
  const end = eh * 60 + em;
  const now = localMinutes(at, q.timeZone);
  return start < end ? now >= start && now < end : now >= start || now < end;
}

export const subscriptions = {
  async get(q: Pool | PoolClient, userId: string): Promise<Subscription> {
    const { rows } = await q.query<{ definition: Buffer; updated_at: Date }>("SELECT definition, updated_at FROM subscriptions WHERE user_id = $1", [userId]);
    if (!rows[0]) return create(SubscriptionSchema, { userId });
    return { ...fromBinary(SubscriptionSchema, rows[0].definition), userId, updateTime: timestampFromDate(rows[0].updated_at) };
  },
  async set(pool: Pool, sub: Subscription): Promise<Subscription> {
    const { rows } = await pool.query<{ updated_at: Date }>(
      `INSERT INTO subscriptions (user_id, definition) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET definition = $2, updated_at = now() RETURNING updated_at`,
      [sub.userId, Buffer.from(toBinary(SubscriptionSchema, sub))],
    );
    return { ...sub, updateTime: timestampFromDate(rows[0]!.updated_at) };
  },
  async all(q: Pool | PoolClient): Promise<Subscription[]> {
    const { rows } = await q.query<{ user_id: string; definition: Buffer }>("SELECT user_id, definition FROM subscriptions ORDER BY user_id LIMIT 10000");
    return rows.map((r) => ({ ...fromBinary(SubscriptionSchema, r.definition), userId: r.user_id }));
  },
};

// ---- on-call tiers ----

export const maxTierLevel = 10;

export function validateTier(t: OnCallTier | undefined, secretNames: ReadonlySet<string>, available: PersonalAvailability = { sms: false, webPush: false }): OnCallTier {
  if (!t) throw invalid("tier", "is required");
  const tier = create(OnCallTierSchema, t);
  tier.updateTime = undefined;
  if (!Number.isInteger(tier.level) || tier.level < 1 || tier.level > maxTierLevel) throw invalid("tier.level", `must be 1 … ${maxTierLevel}`);
  if (tier.userIds.length > 20) throw invalid("tier.user_ids", "may name at most 20");
  tier.userIds.forEach((u, i) => {
    if (!/^[A-Za-z0-9_:.@-]{1,128}$/.test(u)) throw invalid(`tier.user_ids[${i}]`, "must be a user id");
  });
  tier.userIds = [...new Set(tier.userIds)];
  const r = tier.receivers;
  if (r) {
    if (r.emails.length > 20) throw invalid("tier.receivers.emails", "may name at most 20");
    r.emails = r.emails.map((e, i) => {
      const v = e.trim().toLowerCase();
      if (!emailPattern.test(v)) throw invalid(`tier.receivers.emails[${i}]`, "must be an email address");
      return v;
    });
    if (r.webhooks.length > 20) throw invalid("tier.receivers.webhooks", "may name at most 20");
    r.webhooks.forEach((w, i) => {
      validUrl(`tier.receivers.webhooks[${i}].url`, w.url);
      if (!secretNames.has(w.secretName)) throw invalid(`tier.receivers.webhooks[${i}].secret_name`, "names no secret in the service's WEBHOOK_SECRETS");
    });
    if (r.phoneNumbers.length > 20) throw invalid("tier.receivers.phone_numbers", "may name at most 20");
    if (r.phoneNumbers.length > 0 && !available.sms) throw invalid("tier.receivers.phone_numbers", "SMS is not configured (SMS_PROVIDER_URL)");
    r.phoneNumbers = [...new Set(r.phoneNumbers.map((p, i) => requirePhoneNumber(`tier.receivers.phone_numbers[${i}]`, p)))];
    if (r.webPush) throw invalid("tier.receivers.web_push", "is for rules; put people on the tier and their browsers are reached");
  }
  if (tier.userIds.length === 0 && !r?.emails.length && !r?.webhooks.length && !r?.phoneNumbers.length) throw invalid("tier", "must name at least one person or receiver");
  return tier;
}

export const tiers = {
  async list(q: Pool | PoolClient): Promise<OnCallTier[]> {
    const { rows } = await q.query<{ definition: Buffer; updated_at: Date }>("SELECT definition, updated_at FROM on_call_tiers ORDER BY level");
    return rows.map((r) => ({ ...fromBinary(OnCallTierSchema, r.definition), updateTime: timestampFromDate(r.updated_at) }));
  },
  async set(pool: Pool, tier: OnCallTier): Promise<OnCallTier> {
    const { rows } = await pool.query<{ updated_at: Date }>(
      "INSERT INTO on_call_tiers (level, definition) VALUES ($1, $2) ON CONFLICT (level) DO UPDATE SET definition = $2, updated_at = now() RETURNING updated_at",
      [tier.level, Buffer.from(toBinary(OnCallTierSchema, tier))],
    );
    return { ...tier, updateTime: timestampFromDate(rows[0]!.updated_at) };
  },
  async delete(pool: Pool, level: number): Promise<void> {
    const { rowCount } = await pool.query("DELETE FROM on_call_tiers WHERE level = $1", [level]);
    if (!rowCount) throw notFound(`on-call tier ${level} not found`);
  },
};

// ---- routing: who a notification reaches ----

export interface Target {
  channel: "email" | "webhook" | "sms" | "web_push";
  target: string;
  secretName: string;
  /** 'rule', 'user:<id>', 'tier:<n>'. */
  recipient: string;
  /** Why it is not sent (quiet hours), if so. */
  suppressed?: string;
}

export function receiverTargets(r: Receivers | undefined, recipient: string): Target[] {
  return [
    ...(r?.emails ?? []).map((e) => ({ channel: "email" as const, target: e, secretName: "", recipient })),
    ...(r?.webhooks ?? []).map((w) => ({ channel: "webhook" as const, target: w.url, secretName: w.secretName, recipient })),
    ...(r?.phoneNumbers ?? []).map((p) => ({ channel: "sms" as const, target: p, secretName: "", recipient })),
  ];
}

/** Each person's Web Push endpoints (the browsers where they turned push on). */
export type PushEndpoints = ReadonlyMap<string, readonly string[]>;

/** Every contact of a person (on-call tiers reach them on all, whatever their routes). */
function contactsOf(s: Subscription, recipient: string, push: PushEndpoints): Target[] {
  return [
    ...(s.email ? [{ channel: "email" as const, target: s.email, secretName: "", recipient }] : []),
    ...(s.webhook?.url ? [{ channel: "webhook" as const, target: s.webhook.url, secretName: s.webhook.secretName, recipient }] : []),
    ...(s.phoneNumber ? [{ channel: "sms" as const, target: s.phoneNumber, secretName: "", recipient }] : []),
    ...(push.get(s.userId) ?? []).map((e) => ({ channel: "web_push" as const, target: e, secretName: "", recipient })),
  ];
}

/** The push endpoints of these people (one query). */
export async function pushEndpointsOf(q: Pool | PoolClient, userIds: string[]): Promise<PushEndpoints> {
  const out = new Map<string, string[]>();
  if (userIds.length === 0) return out;
  const { rows } = await q.query<{ user_id: string; endpoint: string }>("SELECT user_id, endpoint FROM push_subscriptions WHERE user_id = ANY($1) ORDER BY created_at LIMIT 10000", [userIds]);
  for (const r of rows) out.set(r.user_id, [...(out.get(r.user_id) ?? []), r.endpoint]);
  return out;
}

/** What routing a notification needs to know: its rule's severity, its kiosk group and its alerts' tags. */
export interface NotificationFacts {
  severity: Severity;
  groupId: string;
  tags: Set<string>;
  at: Date;
}

/** The subscribers' targets for a notification: each route that matches, unless quiet hours hold (critical overrides). */
export function subscriberTargets(subs: Subscription[], n: NotificationFacts, push: PushEndpoints = new Map()): Target[] {
  const out: Target[] = [];
  for (const s of subs) {
    const recipient = `user:${s.userId}`;
    const quiet = s.quietHours && n.severity !== Severity.CRITICAL && inQuietHours(s.quietHours, n.at) ? s.quietHours : undefined;
    for (const r of s.routes) {
      if (r.severities.length && !r.severities.includes(n.severity)) continue;
      if (r.groupIds.length && !r.groupIds.includes(n.groupId)) continue;
      if (r.tags.length && !r.tags.some((t) => n.tags.has(t))) continue;
      const contact = contactsOf(s, recipient, push).filter((c) => c.channel === personalChannels[r.channel]?.name);
      for (const c of contact) out.push(quiet ? { ...c, suppressed: `quiet hours ${quiet.start}–${quiet.end} ${quiet.timeZone}` } : c);
    }
  }
  return out;
}

/** Tier `level`'s targets (its people at every contact of their subscription, and its receivers). */
export function tierTargets(tier: OnCallTier, subs: Map<string, Subscription>, push: PushEndpoints = new Map()): Target[] {
  const recipient = `tier:${tier.level}`;
  return [...tier.userIds.flatMap((u) => (subs.has(u) ? contactsOf(subs.get(u)!, recipient, push) : [])), ...receiverTargets(tier.receivers, recipient)];
}

/** One target per channel + address: a sent one wins over a suppressed one, the first recipient named is kept. */
export function dedupeTargets(targets: Target[]): Target[] {
  const byKey = new Map<string, Target>();
  for (const t of targets) {
    const key = `${t.channel}\u0000${t.target}`;
    const had = byKey.get(key);
    if (!had || (had.suppressed && !t.suppressed)) byKey.set(key, t);
  }
  return [...byKey.values()];
}

export const dateOf = (t: { seconds: bigint; nanos: number } | undefined) => (t ? timestampDate(t as Parameters<typeof timestampDate>[0]) : undefined);

// ---- per rule: repeat interval, escalation ----

export const defaultRepeatMs = 4 * 3_600_000;
const maxPolicyMs = 7 * 86_400_000;

function policyDuration(field: string, d: { seconds: bigint; nanos: number }): number {
  const ms = d.seconds * 1000n + BigInt(Math.trunc(d.nanos / 1e6));
  if (d.seconds < 0n || d.nanos < 0) throw invalid(field, "must not be negative");
  if (ms < 1000n) throw invalid(field, "must be at least 1 second");
  if (ms > BigInt(maxPolicyMs)) throw invalid(field, "must be at most 7 days");
  return Number(ms);
}

/** Checks a rule definition's repeat_interval and escalation (called by validateRule). */
export function validateRulePolicy(def: RuleDefinition): void {
  if (def.repeatInterval) policyDuration("definition.repeat_interval", def.repeatInterval);
  if (def.escalation) {
    if (!def.escalation.escalateAfter) throw invalid("definition.escalation.escalate_after", "is required");
    policyDuration("definition.escalation.escalate_after", def.escalation.escalateAfter);
  }
}

/** A rule's repeat interval (default 4 h) and, when it escalates, its escalate_after. */
export function ruleTiming(def: RuleDefinition): { repeatMs: number; escalateMs: number | null } {
  const ms = (d: { seconds: bigint; nanos: number }) => Number(d.seconds * 1000n + BigInt(Math.trunc(d.nanos / 1e6)));
  return { repeatMs: def.repeatInterval ? ms(def.repeatInterval) : defaultRepeatMs, escalateMs: def.escalation?.escalateAfter ? ms(def.escalation.escalateAfter) : null };
}

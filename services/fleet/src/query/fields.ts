// What a fleet query can name: each field's type (which operators and values it takes),
// its SQL over fleet.kiosks (alias k), and whether it can be grouped by and aggregated.
// docs/fleet-query.md lists the same; a test checks that every field here compiles.
import { alertingSql } from "../kiosk-rules.js";
import { alertRuleKinds, alertSeverities } from "../open-alerts.js";

export type FieldType = "text" | "enum" | "number" | "version" | "tags" | "age" | "bool";

export interface FieldDef {
  name: string;
  type: FieldType;
  /** The value as SQL (for sorting, grouping and aggregates; filters too unless the type says otherwise). */
  sql: string;
  /** age: the timestamp column the age is measured from (filters compare it, so indexes apply). */
  column?: string;
  /** enum: the values it takes. */
  values?: readonly string[];
  doc: string;
  /**
   * A field that takes an argument, written name(argument): stock("SKU-123"), alerts(critical).
   * `sql` gives its value from the argument's SQL (always a parameter); the field's own `sql`
   * is its value without one (unless `required`).
   */
  fn?: {
    /** What the argument is, as errors and completion say it. */
    argument: string;
    /** The argument's closed set of values (case-insensitive), or the pattern it must match. */
    values?: readonly string[];
    pattern?: RegExp;
    required: boolean;
    sql: (arg: string) => string;
  };
  /** Set where a query uses a field with an argument: the argument. */
  arg?: string;
  /**
   * A value kept in another table, at most one row per kiosk: sorts and stats join it once
   * (LEFT JOIN, so PostgreSQL can hash it) instead of running `sql`'s subquery per kiosk.
   * `rows(arg)`: SELECT kiosk_id, v … (arg: the argument's parameter); `zero`: a kiosk
   * without a row has 0 (a count), not "no value".
   */
  perKiosk?: { rows: (arg?: string) => string; zero: boolean };
}

/** The field's SQL where the query uses it; `param` makes the argument a parameter. */
export const fieldSql = (f: FieldDef, param: (v: string) => string): string => (f.fn && f.arg !== undefined ? f.fn.sql(param(f.arg)) : f.sql);

/** DeviceStatus names as telemetry.ts stores them ("" without telemetry). */
const deviceStatuses = ["OK", "WARNING", "FAULT", "ABSENT", "UNSPECIFIED", ""] as const;

/** A kiosk's completed sales in the last `period` (fleet's projection, sales.ts). */
const sales = (agg: string, period: string) =>
  `(SELECT ${agg} FROM kiosk_sales s WHERE s.kiosk_id = k.kiosk_id AND s.completed_at > now() - interval '${period}')::float8`;
const salesPerKiosk = (agg: string, period: string) => ({
  rows: () => `SELECT s.kiosk_id, (${agg})::float8 AS v FROM kiosk_sales s WHERE s.completed_at > now() - interval '${period}' GROUP BY s.kiosk_id`,
  zero: true,
});

/** How many of the kiosk's alerts are open (and match `extra`). */
const openAlerts = (extra: string) => `(SELECT count(*) FROM kiosk_alerts a WHERE a.kiosk_id = k.kiosk_id AND a.state <> 'resolved'${extra})::float8`;

const num = (key: string) => `(k.state->>'${key}')::float8`;

/** The kiosk's status as the contract says (fleet.proto KioskStatus), one value per kiosk. */
export const statusSql = `(CASE WHEN k.connected THEN (CASE WHEN ${alertingSql("k.state")} THEN 'alerting' ELSE 'online' END)
  WHEN k.last_seen_at IS NULL THEN 'provisioned' ELSE 'offline' END)`;

const list: FieldDef[] = [
  { name: "id", type: "text", sql: "k.kiosk_id", doc: "the kiosk id" },
  { name: "name", type: "text", sql: "k.name", doc: "the kiosk's name" },
  { name: "address", type: "text", sql: "k.address", doc: "its address" },
  { name: "timezone", type: "text", sql: "k.timezone", doc: "its IANA time zone" },
  { name: "group", type: "text", sql: "k.group_id", doc: "its group id ('' when none)" },
  { name: "model", type: "text", sql: "k.hardware_model", doc: "its hardware model" },
  { name: "tag", type: "tags", sql: "k.tags", doc: "one of its tags (tag = x: has x; tag != x: lacks x; tag in (a, b): has any)" },
  { name: "app", type: "version", sql: "k.app_version", doc: "the app version it last reported" },
  { name: "firmware", type: "version", sql: "k.firmware_version", doc: "the firmware version it last reported" },
  { name: "status", type: "enum", sql: statusSql, values: ["online", "offline", "alerting", "provisioned"], doc: "online, offline, alerting (online with a fault or low paper), provisioned (never connected)" },
  { name: "connected", type: "bool", sql: "k.connected", doc: "a stream to link is open (online or alerting)" },
  { name: "alerting", type: "bool", sql: `(k.connected AND ${alertingSql("k.state")})`, doc: "online with an open alert: an error, a printer or scanner fault, paper below the threshold" },
  { name: "last_seen_age", type: "age", sql: "extract(epoch FROM now() - k.last_seen_at)::float8", column: "k.last_seen_at", doc: "time since link last heard from it (never seen: no value)" },
  { name: "created_age", type: "age", sql: "extract(epoch FROM now() - k.created_at)::float8", column: "k.created_at", doc: "time since it was registered" },
  { name: "latitude", type: "number", sql: "k.latitude", doc: "its latitude" },
  { name: "longitude", type: "number", sql: "k.longitude", doc: "its longitude" },
  { name: "cpu", type: "number", sql: num("cpuPercent"), doc: "latest telemetry: CPU %" },
  { name: "temperature", type: "number", sql: num("temperatureCelsius"), doc: "latest telemetry: °C" },
  { name: "paper", type: "number", sql: num("paperLevelPercent"), doc: "latest telemetry: paper %" },
  { name: "cash", type: "number", sql: num("cashLevelMinor"), doc: "latest telemetry: cash in minor units" },
  { name: "errors", type: "number", sql: "COALESCE(jsonb_array_length(k.state->'errors'), 0)", doc: "latest telemetry: how many errors it reports" },
  { name: "printer", type: "enum", sql: "COALESCE(k.state->>'printerStatus', '')", values: deviceStatuses, doc: "latest telemetry: printer status" },
  { name: "scanner", type: "enum", sql: "COALESCE(k.state->>'scannerStatus', '')", values: deviceStatuses, doc: "latest telemetry: scanner status" },
  { name: "telemetry_age", type: "age", sql: "extract(epoch FROM now() - k.state_sampled_at)::float8", column: "k.state_sampled_at", doc: "time since its latest telemetry sample" },
  { name: "sales_1h", type: "number", sql: sales("count(*)", "1 hour"), perKiosk: salesPerKiosk("count(*)", "1 hour"), doc: "completed sales in the last hour (from orders' events)" },
  { name: "sales_24h", type: "number", sql: sales("count(*)", "24 hours"), perKiosk: salesPerKiosk("count(*)", "24 hours"), doc: "completed sales in the last 24 hours" },
  {
    name: "revenue_24h",
    type: "number",
    sql: sales("COALESCE(sum(s.total_minor), 0)", "24 hours"),
    perKiosk: salesPerKiosk("sum(s.total_minor)", "24 hours"),
    doc: "their total in minor units, last 24 hours",
  },
  {
    name: "stock",
    type: "number",
    sql: "NULL::float8",
    fn: {
      argument: "a SKU",
      pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
      required: true,
      sql: (sku) => `(SELECT s.on_hand FROM kiosk_stock s WHERE s.kiosk_id = k.kiosk_id AND s.sku = ${sku})::float8`,
    },
    perKiosk: { rows: (sku) => `SELECT s.kiosk_id, s.on_hand::float8 AS v FROM kiosk_stock s WHERE s.sku = ${sku}`, zero: false },
    doc: 'stock("SKU"): units of the SKU on hand at the kiosk (from catalog\'s stock events; no value where the kiosk has no stock record for it)',
  },
  {
    name: "alerts",
    type: "number",
    sql: openAlerts(""),
    fn: { argument: "a severity or a rule kind", values: [...alertSeverities, ...alertRuleKinds], required: false, sql: (x) => openAlerts(` AND (a.severity = ${x} OR a.rule_kind = ${x})`) },
    perKiosk: {
      rows: (x) => `SELECT a.kiosk_id, count(*)::float8 AS v FROM kiosk_alerts a WHERE a.state <> 'resolved'${x ? ` AND (a.severity = ${x} OR a.rule_kind = ${x})` : ""} GROUP BY a.kiosk_id`,
      zero: true,
    },
    doc: "open (firing or acknowledged) alerts about the kiosk, from notifications' alert events; alerts(critical), alerts(low_paper): only those of a severity or rule kind",
  },
  { name: "config_version", type: "number", sql: "k.config_version::float8", doc: "its desired configuration's version" },
  { name: "config_in_sync", type: "bool", sql: "(k.reported_config_version = k.config_version AND k.reported_config_error = '')", doc: "it reported applying its desired configuration" },
];

export const fields: ReadonlyMap<string, FieldDef> = new Map(list.map((f) => [f.name, f]));
export const fieldNames = list.map((f) => f.name);

/** Aggregate functions and the quantile each percentile takes. */
export const aggregateFunctions = ["count", "avg", "min", "max", "sum", "p50", "p90", "p95", "p99"] as const;
export type AggregateFunction = (typeof aggregateFunctions)[number];
export const percentiles: Partial<Record<AggregateFunction, number>> = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99 };

// A parsed fleet query as SQL over fleet.kiosks (alias k). Values only ever travel as
// parameters ($n); what is written into the SQL text comes from the field catalog
// (fields.ts) and the parser's closed sets of operators and functions.
import { alertingSql } from "../kiosk-rules.js";
import { fieldSql, percentiles, type FieldDef } from "./fields.js";
import type { Condition, ParsedQuery, Value } from "./parser.js";

export interface CompiledQuery {
  /** The WHERE condition over kiosks k (deleted kiosks excluded) and its parameters. */
  where: string;
  params: unknown[];
  /**
   * A page of kiosks in the query's order, with $limit and $offset appended to params.
   * `withTotal` adds the match's size to each row (a window count: every match is read);
   * with a stats stage the stats statement carries the total instead, and the page is a
   * top-N sort.
   */
  page(limit: number, offset: number, withTotal: boolean): { sql: string; params: unknown[] };
  count(): { sql: string; params: unknown[] };
  /**
   * The grouped aggregates (at most `maxGroups` + 1 rows, to tell a cut), when the query has
   * a stats stage; every row's `total` is the number of kiosks matched (all groups).
   */
  stats?: { sql: string; params: unknown[]; keys: string[]; aggregates: string[] };
}

export const maxGroups = 1000;

const versionKey = (sql: string) => `fleet_version_key(${sql})`;
const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);
const flipped: Record<string, string> = { "<": ">", "<=": ">=", ">": "<", ">=": "<=" };
const earthKm = 6371.0088;

/** The status filter written so that it can use kiosks' indexes (same meaning as statusSql). */
function statusCondition(value: string): string {
  switch (value) {
    case "online":
      return `(k.connected AND NOT ${alertingSql("k.state")})`;
    case "alerting":
      return `(k.connected AND ${alertingSql("k.state")})`;
    case "offline":
      return "(NOT k.connected AND k.last_seen_at IS NOT NULL)";
    default:
      return "(NOT k.connected AND k.last_seen_at IS NULL)";
  }
}

/**
 * stock's comparison as one over whole units (on_hand is an integer), so that the
 * (sku, on_hand) index applies: `< 4.5` is `< 5`; true/false where no unit count could differ.
 */
function wholeUnits(op: string, v: number): { op: string; n: string } | boolean {
  const clamp = (n: number) => String(Math.max(-1e18, Math.min(1e18, n)));
  switch (op) {
    case "<":
    case ">=":
      return { op, n: clamp(Math.ceil(v)) };
    case "<=":
    case ">":
      return { op, n: clamp(Math.floor(v)) };
    case "=":
      return Number.isInteger(v) && Math.abs(v) <= 1e18 ? { op, n: String(v) } : false;
    default:
      return Number.isInteger(v) && Math.abs(v) <= 1e18 ? { op: "<>", n: String(v) } : true;
  }
}

const holds = (op: string, a: number, b: number) =>
  op === "<" ? a < b : op === "<=" ? a <= b : op === ">" ? a > b : op === ">=" ? a >= b : op === "=" ? a === b : a !== b;

export function compileQuery(q: ParsedQuery): CompiledQuery {
  // The statements share the WHERE's parameters; the page's order and the stats add their own.
  let params: unknown[] = [];
  const p = (v: unknown, cast: string) => `$${params.push(v)}::${cast}`;
  const castOf = (f: FieldDef) => (f.type === "number" || f.type === "age" ? "float8" : f.type === "bool" ? "boolean" : "text");
  const fsql = (f: FieldDef) => fieldSql(f, (v) => p(v, "text"));

  /**
   * stock("X") and alerts as the kiosks that match (kiosk_id IN a subquery over the
   * projection's index) rather than a subquery per kiosk. Where a condition sits under a
   * "not", stock's form keeps its "no value" (a kiosk without the SKU matches neither
   * stock("X") < 5 nor its negation); counts (alerts, sales) always have a value (0 without any).
   */
  const projected = (f: FieldDef, op: string, values: number[], negated: boolean): string | undefined => {
    if (op === "~") return undefined;
    if (f.name.startsWith("stock(") && !negated) {
      const sku = p(f.arg, "text");
      const ofSku = `SELECT s.kiosk_id FROM kiosk_stock s WHERE s.sku = ${sku}`;
      if (op === "in") {
        const whole = values.filter((v) => Number.isInteger(v) && Math.abs(v) <= 1e18).map(String);
        return whole.length ? `(k.kiosk_id IN (${ofSku} AND s.on_hand = ANY(${p(whole, "bigint[]")})))` : "false";
      }
      const b = wholeUnits(op, values[0]!);
      if (b === false) return "false";
      if (b === true) return `(k.kiosk_id IN (${ofSku}))`;
      return `(k.kiosk_id IN (${ofSku} AND s.on_hand ${b.op} ${p(b.n, "bigint")}))`;
    }
    if (f.perKiosk?.zero) {
      // A count or a sum over the kiosk's rows (alerts, sales): 0 without any.
      const rows = f.perKiosk.rows(f.arg !== undefined ? p(f.arg, "text") : undefined);
      const test = op === "in" ? (n: number) => values.includes(n) : (n: number) => holds(op, n, values[0]!);
      const matches = op === "in" ? `r.v = ANY(${p(values, "float8[]")})` : `r.v ${op === "!=" ? "<>" : op} ${p(values[0], "float8")}`;
      // When 0 matches, the match is every kiosk but those whose value does not.
      return test(0) ? `(k.kiosk_id NOT IN (SELECT r.kiosk_id FROM (${rows}) r WHERE NOT (${matches})))` : `(k.kiosk_id IN (SELECT r.kiosk_id FROM (${rows}) r WHERE ${matches}))`;
    }
    return undefined;
  };

  const cond = (c: Condition, negated = false): string => {
    switch (c.kind) {
      case "and":
      case "or":
        return `(${c.items.map((x) => cond(x, negated)).join(c.kind === "and" ? " AND " : " OR ")})`;
      case "not":
        // A kiosk without the value (NULL) matches neither a comparison nor its negation.
        // Under a not (however many), stock keeps the form with its NULL, as every other field.
        return `(NOT COALESCE(${cond(c.item, true)}, true))`;
      case "near": {
        const dLat = c.km / 111.2;
        const cosLat = Math.cos((c.latitude * Math.PI) / 180);
        const dLon = cosLat > 1e-6 ? c.km / (111.32 * cosLat) : 360;
        const lat = p(c.latitude, "float8");
        const lon = p(c.longitude, "float8");
        const box = [`k.latitude BETWEEN ${p(c.latitude - dLat, "float8")} AND ${p(c.latitude + dLat, "float8")}`];
        if (c.longitude - dLon >= -180 && c.longitude + dLon <= 180) box.push(`k.longitude BETWEEN ${p(c.longitude - dLon, "float8")} AND ${p(c.longitude + dLon, "float8")}`);
        const haversine = `${2 * earthKm} * asin(sqrt(power(sin(radians(k.latitude - ${lat}) / 2), 2) + cos(radians(${lat})) * cos(radians(k.latitude)) * power(sin(radians(k.longitude - ${lon}) / 2), 2)))`;
        return `(${box.join(" AND ")} AND ${haversine} <= ${p(c.km, "float8")})`;
      }
      case "within": {
        const lat = `k.latitude BETWEEN ${p(c.south, "float8")} AND ${p(c.north, "float8")}`;
        const lon =
          c.west <= c.east
            ? `k.longitude BETWEEN ${p(c.west, "float8")} AND ${p(c.east, "float8")}`
            : `(k.longitude >= ${p(c.west, "float8")} OR k.longitude <= ${p(c.east, "float8")})`; // across the antimeridian
        return `(${lat} AND ${lon})`;
      }
      case "in": {
        const f = c.field;
        const fast = f.perKiosk ? projected(f, "in", c.values as number[], negated) : undefined;
        if (fast) return fast;
        if (f.type === "tags") return `(k.tags && ${p(c.values, "text[]")})`;
        if (f.name === "status") return `(${(c.values as string[]).map(statusCondition).join(" OR ")})`;
        if (f.type === "version") return `(${f.sql} = ANY(${p(c.values, "text[]")}) OR ${f.sql} LIKE ANY(${p(c.values.map((v) => `${likeEscape(String(v))}.%`), "text[]")}))`;
        return `(${fsql(f)} = ANY(${p(c.values, `${castOf(f)}[]`)}))`;
      }
      case "compare":
        return (c.field.perKiosk && projected(c.field, c.op, [c.value as number], negated)) || compare(c.field, c.op, c.value);
    }
  };

  const compare = (f: FieldDef, op: string, v: Value): string => {
    const sqlOp = op === "!=" ? "<>" : op;
    switch (f.type) {
      case "tags": {
        const has = `(k.tags @> ARRAY[${p(v, "text")}])`;
        return op === "=" ? has : `(NOT ${has})`;
      }
      case "age":
        // last_seen_age > 1h: last seen before an hour ago (the column compared, so its index applies).
        return `(${f.column} ${flipped[op]} now() - make_interval(secs => ${p(v, "float8")}))`;
      case "version": {
        if (op === "=" || op === "!=") {
          const eq = `(${f.sql} = ${p(v, "text")} OR ${f.sql} LIKE ${p(`${likeEscape(String(v))}.%`, "text")})`;
          return op === "=" ? eq : `(NOT ${eq})`;
        }
        return `(${f.sql} <> '' AND ${versionKey(f.sql)} ${sqlOp} ${versionKey(p(v, "text"))})`;
      }
      case "text":
        if (op === "~") return `(${f.sql} ILIKE ${p(`%${likeEscape(String(v))}%`, "text")})`;
        return `(${f.sql} ${sqlOp} ${p(v, "text")})`;
      case "enum":
        if (f.name === "status") return op === "=" ? statusCondition(String(v)) : `(NOT ${statusCondition(String(v))})`;
        return `(${f.sql} ${sqlOp} ${p(v, "text")})`;
      case "bool":
        return `(${f.sql} ${sqlOp} ${p(v, "boolean")})`;
      case "number":
        return `(${fsql(f)} ${sqlOp} ${p(v, "float8")})`;
    }
  };

  const where = ["k.deleted_at IS NULL", ...(q.where ? [cond(q.where)] : [])].join(" AND ");
  const base = [...params];
  params = [...base];
  // The page and the stats each join the per-kiosk values they sort, group or aggregate by
  // (once per field), on parameters of their own.
  let joins: { sql: string[]; alias: Map<string, string> } = { sql: [], alias: new Map() };
  const valueOf = (f: FieldDef): string => {
    if (!f.perKiosk) return fsql(f);
    let alias = joins.alias.get(f.name);
    if (!alias) {
      alias = `j${joins.sql.length}`;
      joins.sql.push(` LEFT JOIN (${f.perKiosk.rows(f.arg !== undefined ? p(f.arg, "text") : undefined)}) ${alias} ON ${alias}.kiosk_id = k.kiosk_id`);
      joins.alias.set(f.name, alias);
    }
    return f.perKiosk.zero ? `COALESCE(${alias}.v, 0)` : `${alias}.v`;
  };
  const sortSql = (f: FieldDef, sql = valueOf(f)) => (f.type === "version" ? versionKey(sql) : sql);
  // Kiosks without the value sort last either way. Where the query's conditions already rule
  // out a missing value (a comparison on the field, ANDed at the top), PostgreSQL's own null
  // order is the same answer and lets an index on the field give the order (DESC NULLS LAST
  // cannot walk an ascending index backwards). An age sorts by its timestamp, reversed.
  const present = new Set<string>();
  const topLevel = q.where ? (q.where.kind === "and" ? q.where.items : [q.where]) : [];
  for (const c of topLevel) if (c.kind === "compare" || c.kind === "in") present.add(c.field.name);
  const kioskOrder = [
    ...q.sort
      .filter((s) => s.field)
      .map((s) => {
        const f = s.field!;
        const desc = f.type === "age" ? !s.desc : s.desc;
        const expr = f.type === "age" ? f.column! : sortSql(f);
        const nulls = present.has(f.name) ? "" : " NULLS LAST";
        return `${expr} ${desc ? "DESC" : "ASC"}${nulls}`;
      }),
    "k.kiosk_id ASC",
  ].join(", ");
  const pageParams = params;
  const pageJoins = joins.sql.join("");

  const compiled: CompiledQuery = {
    where,
    params: base,
    page: (limit, offset, withTotal) => {
      const ps = [...pageParams];
      return {
        sql: `SELECT k.*${withTotal ? ", count(*) OVER () AS total" : ""} FROM kiosks k${pageJoins} WHERE ${where} ORDER BY ${kioskOrder} LIMIT $${ps.push(limit)} OFFSET $${ps.push(offset)}`,
        params: ps,
      };
    },
    count: () => ({ sql: `SELECT count(*) AS n FROM kiosks k WHERE ${where}`, params: [...base] }),
  };

  if (q.stats) {
    params = [...base];
    joins = { sql: [], alias: new Map() };
    const { aggregates, by } = q.stats;
    // Each key's SQL written once: GROUP BY, the select list and ORDER BY must be the same
    // expression (a field with an argument has the same parameter in all three).
    const bySql = by.map(valueOf);
    const keys = by.map((f, i) => `(${bySql[i]})::text AS g${i}`);
    const aggs = aggregates.map((a, i) => {
      const expr = a.field ? valueOf(a.field) : "";
      const q95 = percentiles[a.fn];
      const sql =
        a.fn === "count" ? "count(*)" : q95 !== undefined ? `percentile_cont(${q95}) WITHIN GROUP (ORDER BY ${expr})` : `${a.fn}(${expr})`;
      return `(${sql})::float8 AS a${i}`;
    });
    const groupOrder: string[] = [];
    for (const s of q.sort) {
      if (s.aggregate !== undefined) groupOrder.push(`a${s.aggregate} ${s.desc ? "DESC" : "ASC"} NULLS LAST`);
      else {
        const i = by.findIndex((f) => f.name === s.field!.name);
        if (i >= 0) groupOrder.push(`${sortSql(by[i]!, bySql[i])} ${s.desc ? "DESC" : "ASC"} NULLS LAST`);
      }
    }
    by.forEach((f, i) => groupOrder.push(`${sortSql(f, bySql[i])} ASC NULLS LAST`));
    compiled.stats = {
      sql: `SELECT ${[...keys, ...aggs, by.length ? "(sum(count(*)) OVER ())::bigint AS total" : "count(*) AS total"].join(", ")} FROM kiosks k${joins.sql.join("")} WHERE ${where}${by.length ? ` GROUP BY ${bySql.join(", ")}` : ""}${
        by.length ? ` ORDER BY ${groupOrder.join(", ")} LIMIT ${maxGroups + 1}` : ""
      }`,
      params,
      keys: by.map((f) => f.name),
      aggregates: aggregates.map((a) => a.label),
    };
  }
  return compiled;
}

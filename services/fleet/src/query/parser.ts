// Recursive-descent parser for the fleet query language (docs/fleet-query.md). It checks
// names, operators and values against the field catalog (fields.ts) as it goes, so every
// error points at the token that is wrong and says what would have been right.
import { aggregateFunctions, fieldNames, fields, type AggregateFunction, type FieldDef } from "./fields.js";
import { describeToken, positionOf, QueryError, tokenize, type Token } from "./tokens.js";

export type CompareOp = "=" | "!=" | "<" | "<=" | ">" | ">=" | "~";
export type Value = string | number | boolean;

export type Condition =
  | { kind: "and" | "or"; items: Condition[] }
  | { kind: "not"; item: Condition }
  | { kind: "compare"; field: FieldDef; op: CompareOp; value: Value }
  | { kind: "in"; field: FieldDef; values: Value[] }
  | { kind: "near"; latitude: number; longitude: number; km: number }
  | { kind: "within"; south: number; west: number; north: number; east: number };

export interface Aggregate {
  fn: AggregateFunction;
  field?: FieldDef;
  /** As written back: count(), p95(cpu). */
  label: string;
}

export interface SortItem {
  field?: FieldDef;
  /** An index into stats.aggregates: sorts the groups. */
  aggregate?: number;
  desc: boolean;
}

export interface ParsedQuery {
  where?: Condition;
  sort: SortItem[];
  stats?: { aggregates: Aggregate[]; by: FieldDef[] };
  limit?: number;
}

export const maxQueryLength = 4000;
const maxGroupFields = 4;
const maxAggregates = 10;
const maxInValues = 1000;

const keywords = new Set(["and", "or", "not", "in", "near", "within", "sort", "stats", "by", "limit", "asc", "desc", "true", "false"]);
const durationUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

export function parseQuery(source: string): ParsedQuery {
  if (source.length > maxQueryLength) throw new QueryError(positionOf(source, maxQueryLength), `a query of at most ${maxQueryLength} characters`, `${source.length}`);
  const tokens = tokenize(source);
  let i = 0;
  const peek = (n = 0) => tokens[Math.min(i + n, tokens.length - 1)]!;
  const next = () => tokens[Math.min(i++, tokens.length - 1)]!;
  const fail = (t: Token, expected: string): never => {
    throw new QueryError(positionOf(source, t.offset), expected, describeToken(t));
  };
  const isWord = (t: Token, w: string) => t.kind === "word" && t.text.toLowerCase() === w;
  const isPunct = (t: Token, p: string) => t.kind === "punct" && t.text === p;
  const expectPunct = (p: string, what = `"${p}"`) => {
    const t = next();
    if (!isPunct(t, p)) fail(t, what);
    return t;
  };
  const number = (what: string, min = -Infinity, max = Infinity): number => {
    const t = next();
    if (t.kind !== "number") fail(t, what);
    const n = Number(t.text);
    if (!(n >= min && n <= max)) fail(t, `${what} between ${min} and ${max}`);
    return n;
  };

  /** The argument of a field that takes one, after its name: ("SKU-1"), (critical). */
  const argumentOf = (f: FieldDef): FieldDef => {
    const fn = f.fn!;
    const example = f.name === "stock" ? 'stock("SKU-123")' : `${f.name}(${fn.values?.[0] ?? "x"})`;
    expectPunct("(", `"(" and ${fn.argument} after ${f.name}, such as ${example}`);
    const t = next();
    const what = `${fn.argument} for ${f.name}, such as ${example}`;
    if (t.kind !== "word" && t.kind !== "string") fail(t, fn.values ? `${what}: one of ${fn.values.join(", ")}` : what);
    let arg = t.text;
    if (fn.values) {
      const v = fn.values.find((x) => x === t.text.toLowerCase());
      if (v === undefined) fail(t, `${fn.argument} for ${f.name}: one of ${fn.values.join(", ")}`);
      arg = v!;
    }
    if (fn.pattern && !fn.pattern.test(arg)) fail(t, `${what} (letters, digits, '.', '_' and '-', at most 64)`);
    expectPunct(")", `")" to close ${f.name}(`);
    return { ...f, name: `${f.name}(${f.name === "stock" ? JSON.stringify(arg) : arg})`, arg };
  };

  const fieldAt = (t: Token, what = "a field"): FieldDef => {
    if (t.kind !== "word") fail(t, `${what} (${fieldNames.join(", ")})`);
    const f = fields.get(t.text.toLowerCase());
    if (!f) fail(t, `${what}: one of ${fieldNames.join(", ")}`);
    if (f!.fn && (f!.fn.required || isPunct(peek(), "("))) return argumentOf(f!);
    return f!;
  };

  /** A value for `field`, read as its type wants. */
  const value = (field: FieldDef): Value => {
    const t = next();
    if (t.kind !== "word" && t.kind !== "string" && t.kind !== "number") fail(t, `a value for ${field.name}`);
    switch (field.type) {
      case "number": {
        if (t.kind !== "number") fail(t, `a number for ${field.name}`);
        return Number(t.text);
      }
      case "age": {
        if (t.kind === "number") return Number(t.text);
        const m = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/i.exec(t.text);
        if (!m) fail(t, `a duration for ${field.name} such as 90s, 15m, 2h, 7d (or seconds)`);
        return Number(m![1]) * durationUnits[m![2]!.toLowerCase()]!;
      }
      case "bool": {
        if (isWord(t, "true")) return true;
        if (isWord(t, "false")) return false;
        return fail(t, `true or false for ${field.name}`);
      }
      case "enum": {
        const v = field.values!.find((x) => x.toLowerCase() === t.text.toLowerCase());
        if (v === undefined) fail(t, `one of ${field.values!.map((x) => (x === "" ? "''" : x)).join(", ")} for ${field.name}`);
        return v!;
      }
      case "tags": {
        if (!/^[a-z0-9][a-z0-9:_-]{0,39}$/.test(t.text)) fail(t, "a tag (1-40 lower-case letters, digits, ':', '_' or '-')");
        return t.text;
      }
      case "version":
      case "text":
        if (t.kind === "word" && keywords.has(t.text.toLowerCase()) && !["true", "false"].includes(t.text.toLowerCase())) fail(t, `a value for ${field.name} (quote it to mean the word)`);
        if (t.text.length > 300) fail(t, `a value of at most 300 characters for ${field.name}`);
        return t.text;
    }
  };

  const operators: Record<string, CompareOp[]> = {
    text: ["=", "!=", "~"],
    enum: ["=", "!="],
    number: ["=", "!=", "<", "<=", ">", ">="],
    version: ["=", "!=", "<", "<=", ">", ">="],
    tags: ["=", "!="],
    age: ["<", "<=", ">", ">="],
    bool: ["=", "!="],
  };

  const comparison = (): Condition => {
    const ft = next();
    const field = fieldAt(ft, "a field or a condition");
    const t = peek();
    if (isWord(t, "in")) {
      next();
      if (field.type === "age" || field.type === "bool") fail(t, `one of ${operators[field.type]!.join(" ")} after ${field.name}`);
      expectPunct("(", `"(" to open the list after in`);
      const values: Value[] = [value(field)];
      while (isPunct(peek(), ",")) {
        next();
        values.push(value(field));
        if (values.length > maxInValues) fail(peek(), `at most ${maxInValues} values in a list`);
      }
      expectPunct(")", `"," or ")" to close the list`);
      return { kind: "in", field, values };
    }
    if (t.kind !== "op") {
      // A bool field alone is the condition "field = true".
      if (field.type === "bool") return { kind: "compare", field, op: "=", value: true };
      fail(t, `an operator after ${field.name} (${operators[field.type]!.join(" ")}${field.type === "age" ? "" : " or in"})`);
    }
    next();
    const op = t.text as CompareOp;
    if (!operators[field.type]!.includes(op)) fail(t, `one of ${operators[field.type]!.join(" ")} after ${field.name}`);
    return { kind: "compare", field, op, value: value(field) };
  };

  const primary = (): Condition => {
    const t = peek();
    if (isPunct(t, "(")) {
      next();
      const c = condition();
      expectPunct(")", `"and", "or" or ")" to close the "(" at line ${positionOf(source, t.offset).line}, column ${positionOf(source, t.offset).column}`);
      return c;
    }
    if (isWord(t, "near") && isPunct(peek(1), "(")) {
      next();
      next();
      const latitude = number("a latitude", -90, 90);
      expectPunct(",");
      const longitude = number("a longitude", -180, 180);
      expectPunct(",");
      const km = number("a radius in km", 0, 20_040);
      expectPunct(")", `")" after near's radius`);
      return { kind: "near", latitude, longitude, km };
    }
    if (isWord(t, "alert") && isPunct(peek(1), "(")) {
      // alert(x): the kiosk has an open alert of severity or rule kind x (alerts(x) > 0).
      next();
      return { kind: "compare", field: argumentOf(fields.get("alerts")!), op: ">", value: 0 };
    }
    if (isWord(t, "within") && isPunct(peek(1), "(")) {
      next();
      next();
      const south = number("the south latitude", -90, 90);
      expectPunct(",");
      const west = number("the west longitude", -180, 180);
      expectPunct(",");
      const north = number("the north latitude", -90, 90);
      if (north < south) fail(tokens[i - 1]!, `a north latitude not below the south one (${south})`);
      expectPunct(",");
      const east = number("the east longitude", -180, 180);
      expectPunct(")", `")" after within's east longitude`);
      return { kind: "within", south, west, north, east };
    }
    return comparison();
  };

  const negation = (): Condition => {
    if (isWord(peek(), "not")) {
      next();
      return { kind: "not", item: negation() };
    }
    return primary();
  };

  /** Starts a condition: "(", "not", near/within or a field name. */
  const startsCondition = (t: Token) => isPunct(t, "(") || (t.kind === "word" && !["or", "and", "sort", "stats", "limit", "by", "asc", "desc", "in"].includes(t.text.toLowerCase()));

  const conjunction = (): Condition => {
    const items = [negation()];
    for (;;) {
      if (isWord(peek(), "and")) {
        next();
        items.push(negation());
      } else if (startsCondition(peek())) {
        items.push(negation()); // two conditions side by side: and
      } else break;
    }
    return items.length === 1 ? items[0]! : { kind: "and", items };
  };

  const condition = (): Condition => {
    const items = [conjunction()];
    while (isWord(peek(), "or")) {
      next();
      items.push(conjunction());
    }
    return items.length === 1 ? items[0]! : { kind: "or", items };
  };

  const aggregate = (): Aggregate => {
    const t = next();
    const fn = t.kind === "word" ? aggregateFunctions.find((f) => f === t.text.toLowerCase()) : undefined;
    if (!fn) fail(t, `an aggregate: ${aggregateFunctions.map((f) => `${f}(${f === "count" ? "" : "field"})`).join(", ")}`);
    expectPunct("(", `"(" after ${fn}`);
    if (fn === "count") {
      expectPunct(")", `")": count takes no field`);
      return { fn: fn!, label: "count()" };
    }
    const ft = next();
    const field = fieldAt(ft);
    if (field.type !== "number" && field.type !== "age") fail(ft, `a numeric field for ${fn} (${[...fields.values()].filter((f) => f.type === "number" || f.type === "age").map((f) => f.name).join(", ")})`);
    expectPunct(")", `")" after ${fn}'s field`);
    return { fn: fn!, field, label: `${fn}(${field.name})` };
  };

  const query: ParsedQuery = { sort: [] };
  const sortTokens: { t: Token; agg?: Aggregate; field?: FieldDef; desc: boolean }[] = [];
  if (!isPunct(peek(), "|") && peek().kind !== "eof") query.where = condition();
  const seen = new Set<string>();
  while (peek().kind !== "eof") {
    const bar = next();
    if (!isPunct(bar, "|")) fail(bar, query.where || seen.size ? `"|" before the next stage (sort, stats, limit), "and", "or" or the end of the query` : "a condition or | stage");
    const st = next();
    const stage = st.kind === "word" ? st.text.toLowerCase() : "";
    if (!["sort", "stats", "limit"].includes(stage)) fail(st, "a stage: sort, stats or limit");
    if (seen.has(stage)) fail(st, `one ${stage} stage only`);
    seen.add(stage);
    if (stage === "limit") query.limit = number("a row limit", 1, 1000);
    if (stage === "sort") {
      do {
        if (sortTokens.length) next(); // the ","
        const t = peek();
        let agg: Aggregate | undefined;
        let field: FieldDef | undefined;
        if (t.kind === "word" && isPunct(peek(1), "(") && !fields.get(t.text.toLowerCase())?.fn) agg = aggregate();
        else field = fieldAt(next(), "a field or an aggregate to sort by");
        let desc = false;
        if (isWord(peek(), "desc") || isWord(peek(), "asc")) desc = next().text.toLowerCase() === "desc";
        sortTokens.push({ t, agg, field, desc });
        if (sortTokens.length > 5) fail(t, "at most 5 sort keys");
      } while (isPunct(peek(), ","));
    }
    if (stage === "stats") {
      const aggregates = [aggregate()];
      while (isPunct(peek(), ",")) {
        next();
        aggregates.push(aggregate());
        if (aggregates.length > maxAggregates) fail(tokens[i - 1]!, `at most ${maxAggregates} aggregates`);
      }
      const by: FieldDef[] = [];
      if (isWord(peek(), "by")) {
        next();
        do {
          if (by.length) next();
          const ft = next();
          const f = fieldAt(ft, "a field to group by");
          if (f.type === "tags") fail(ft, "a field other than tag to group by (a kiosk has many tags)");
          by.push(f);
          if (by.length > maxGroupFields) fail(ft, `at most ${maxGroupFields} fields to group by`);
        } while (isPunct(peek(), ","));
      }
      query.stats = { aggregates, by };
    }
    if (peek().kind !== "eof" && !isPunct(peek(), "|")) fail(peek(), `"|" before the next stage, "," or the end of the query`);
  }
  // Sort keys resolved once every stage is read (stats may come after sort).
  for (const s of sortTokens) {
    if (s.agg) {
      const index = query.stats?.aggregates.findIndex((a) => a.label === s.agg!.label) ?? -1;
      if (index < 0) fail(s.t, `an aggregate that the stats stage computes to sort by (${s.agg.label} is not in it)`);
      query.sort.push({ aggregate: index, desc: s.desc });
    } else {
      const f = s.field!;
      if (f.type === "tags") fail(s.t, "a field other than tag to sort by");
      query.sort.push({ field: f, desc: s.desc });
    }
  }
  return query;
}

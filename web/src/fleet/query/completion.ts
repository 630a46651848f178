// Completion for the fleet query bar: what could come at the caret, from the language's
// description (FleetQueryService.GetQueryLanguage). A light look at the text before the
// caret — the server's parser is the judge of what is valid.
import type { QueryField } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";

export interface Suggestion {
  /** What replaces the word at the caret. */
  text: string;
  /** Shown beside it. */
  detail: string;
}

export interface Language {
  fields: QueryField[];
  aggregates: string[];
}

const connectives = ["and", "or", "not"];
const stages = ["sort", "stats", "limit"];

/** The word being typed at `caret` and where it starts. */
export function wordAt(text: string, caret: number): { start: number; word: string } {
  let start = caret;
  while (start > 0 && /[A-Za-z0-9_.:-]/.test(text[start - 1]!)) start--;
  return { start, word: text.slice(start, caret) };
}

export function suggest(lang: Language, text: string, caret: number, max = 8): { start: number; items: Suggestion[] } {
  const { start, word } = wordAt(text, caret);
  const before = text.slice(0, start);
  const prefix = word.toLowerCase();
  const byName = new Map(lang.fields.map((f) => [f.name, f]));
  // A field with an argument is offered as name( — stock("SKU"), alerts(critical) — and,
  // where the argument may be left out (alerts), as its plain name too.
  const fieldItems = (): Suggestion[] =>
    lang.fields.flatMap((f) => [
      ...(f.argumentRequired ? [] : [{ text: f.name, detail: `${f.type} · ${f.description}` }]),
      ...(f.argument ? [{ text: `${f.name}(`, detail: `${f.name}(${f.argument}) · ${f.description}` }] : []),
    ]);
  let items: Suggestion[];
  // After "field op" or "field in (": that field's values.
  const cmp = /([A-Za-z_]+)\s*(=|!=|<>|<=|>=|<|>|~)\s*$/.exec(before) ?? /([A-Za-z_]+)\s+in\s*\((?:[^)]*,)?\s*$/i.exec(before);
  const stage = /\|\s*(sort|stats|limit)\b[^|]*$/i.exec(before)?.[1]?.toLowerCase();
  // Inside "stock(" or alerts(' (alert( is alerts' shorthand): the argument's values — the SKUs fleet knows, severities and rule kinds.
  const call = /\b([A-Za-z_]+)\(\s*(["']?)$/.exec(before);
  const called = call ? byName.get(call[1]!.toLowerCase() === "alert" ? "alerts" : call[1]!.toLowerCase()) : undefined;
  // Right after "stock(...)" (a field with its argument): its operators.
  const afterCall = /\b([A-Za-z_]+)\([^()]*\)\s*$/.exec(before);
  const calledBefore = afterCall && !stage ? byName.get(afterCall[1]!.toLowerCase()) : undefined;
  if (called?.argument) {
    const quote = call![2]!;
    items = called.argumentValues.map((v) => ({ text: `${v}${quote})`, detail: called.argument }));
  } else if (calledBefore?.argument) {
    items = calledBefore.operators.map((op) => ({ text: op, detail: `${calledBefore.name}(…) ${op} …` }));
  } else if (cmp && byName.has(cmp[1]!.toLowerCase())) {
    const f = byName.get(cmp[1]!.toLowerCase())!;
    items = f.values.filter((v) => v !== "").map((v) => ({ text: v, detail: f.name }));
    if (f.type === "bool") items = ["true", "false"].map((v) => ({ text: v, detail: f.name }));
    if (f.type === "age") items = ["15m", "1h", "1d", "7d"].map((v) => ({ text: v, detail: "a duration" }));
  } else if (/[A-Za-z_]+\s*$/.test(before) && byName.has(/([A-Za-z_]+)\s*$/.exec(before)![1]!.toLowerCase()) && !stage) {
    // Right after a field: its operators.
    const f = byName.get(/([A-Za-z_]+)\s*$/.exec(before)![1]!.toLowerCase())!;
    items = f.operators.map((op) => ({ text: op, detail: `${f.name} ${op} …` }));
  } else if (/\|\s*$/.test(before)) {
    items = stages.map((s) => ({ text: s, detail: "stage" }));
  } else if (stage === "stats") {
    items = [
      ...lang.aggregates.map((a) => ({ text: a === "count" ? "count()" : `${a}(`, detail: "aggregate" })),
      { text: "by", detail: "group by fields" },
      ...fieldItems(),
    ];
  } else if (stage === "sort") {
    items = [...fieldItems(), { text: "desc", detail: "descending" }, { text: "asc", detail: "ascending" }, { text: "count()", detail: "sort groups by their count" }];
  } else {
    items = [
      ...fieldItems(),
      ...connectives.map((c) => ({ text: c, detail: "keyword" })),
      { text: "near(", detail: "near(lat, lon, km)" },
      { text: "within(", detail: "within(south, west, north, east)" },
      ...(byName.get("alerts")?.argument ? [{ text: "alert(", detail: "alert(severity or rule kind): an open alert of that kind" }] : []),
      { text: "|", detail: "a stage: sort, stats, limit" },
    ];
  }
  return { start, items: items.filter((s) => s.text.toLowerCase().startsWith(prefix) && s.text.toLowerCase() !== prefix).slice(0, max) };
}

/** The text with the suggestion in place of the word at the caret, and the caret after it. */
export function accept(text: string, caret: number, start: number, s: Suggestion): { text: string; caret: number } {
  const glue = /[(=<>~!]$/.test(s.text) || s.text.endsWith("(") ? "" : " ";
  const next = text.slice(0, start) + s.text + glue + text.slice(caret).replace(/^\S*/, "");
  return { text: next, caret: start + s.text.length + glue.length };
}

/** "line 2, column 8 (offset 22): expected …" → the offset, to point at the place. */
export function errorOffset(description: string): number | undefined {
  const m = /\(offset (\d+)\)/.exec(description);
  return m ? Number(m[1]) : undefined;
}

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
  const fieldItems = (): Suggestion[] => lang.fields.map((f) => ({ text: f.name, detail: `${f.type} · ${f.description}` }));
  let items: Suggestion[];
  // After "field op" or "field in (": that field's values.
  const cmp = /([A-Za-z_]+)\s*(=|!=|<>|<=|>=|<|>|~)\s*$/.exec(before) ?? /([A-Za-z_]+)\s+in\s*\((?:[^)]*,)?\s*$/i.exec(before);
  const stage = /\|\s*(sort|stats|limit)\b[^|]*$/i.exec(before)?.[1]?.toLowerCase();
  if (cmp && byName.has(cmp[1]!.toLowerCase())) {
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
    items = [...fieldItems(), ...connectives.map((c) => ({ text: c, detail: "keyword" })), { text: "near(", detail: "near(lat, lon, km)" }, { text: "within(", detail: "within(south, west, north, east)" }, { text: "|", detail: "a stage: sort, stats, limit" }];
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

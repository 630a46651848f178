// The fleet query language's tokenizer (grammar: docs/fleet-query.md). Hand-written so
// that every token knows where it starts: errors name the line, column and offset.

export type TokenKind = "word" | "string" | "number" | "op" | "punct" | "eof";

export interface Token {
  kind: TokenKind;
  /** The token as written, without quotes for strings (escapes resolved). */
  text: string;
  /** Offset of its first character in the query (UTF-16 code units, 0-based). */
  offset: number;
  /** How many characters of the query it spans. */
  length: number;
}

export interface Position {
  offset: number;
  line: number;
  column: number;
}

/** A malformed query: where (0-based offset, 1-based line and column) and what was expected. */
export class QueryError extends Error {
  constructor(
    readonly position: Position,
    readonly expected: string,
    readonly found: string,
  ) {
    super(`line ${position.line}, column ${position.column} (offset ${position.offset}): expected ${expected}${found ? `, found ${found}` : ""}`);
  }
}

export function positionOf(source: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < source.length; i++) {
    if (source[i] === "\n") {
      line++;
      lineStart = i + 1;
    }
  }
  return { offset, line, column: offset - lineStart + 1 };
}

export const describeToken = (t: Token): string => {
  if (t.kind === "eof") return "the end of the query";
  if (t.kind === "string") return `the string ${JSON.stringify(t.text)}`;
  return `"${t.text}"`;
};

const wordStart = /[A-Za-z_]/;
const wordChar = /[A-Za-z0-9_.:\-]/;
const digit = /[0-9]/;
const space = /\s/;

export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const fail = (at: number, expected: string, found: string): never => {
    throw new QueryError(positionOf(source, at), expected, found);
  };
  while (i < source.length) {
    const c = source[i]!;
    if (space.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (c === '"' || c === "'") {
      let text = "";
      i++;
      for (;;) {
        if (i >= source.length) fail(start, `a closing ${c} for the string started here`, "the end of the query");
        const ch = source[i]!;
        if (ch === "\\") {
          const next = source[i + 1];
          if (next === undefined) fail(i, "a character after \\", "the end of the query");
          text += next;
          i += 2;
          continue;
        }
        if (ch === c) {
          i++;
          break;
        }
        text += ch;
        i++;
      }
      tokens.push({ kind: "string", text, offset: start, length: i - start });
      continue;
    }
    if (digit.test(c) || (c === "-" && digit.test(source[i + 1] ?? "")) || (c === "." && digit.test(source[i + 1] ?? ""))) {
      i++;
      while (i < source.length && wordChar.test(source[i]!)) i++;
      const text = source.slice(start, i);
      // 12, -3.5 are numbers; 2.3.1, 1h, 10km are words (versions, durations) read by the field's type.
      tokens.push({ kind: /^-?(\d+(\.\d*)?|\.\d+)$/.test(text) ? "number" : "word", text, offset: start, length: i - start });
      continue;
    }
    if (wordStart.test(c)) {
      i++;
      while (i < source.length && wordChar.test(source[i]!)) i++;
      tokens.push({ kind: "word", text: source.slice(start, i), offset: start, length: i - start });
      continue;
    }
    const two = source.slice(i, i + 2);
    if (two === "!=" || two === "<=" || two === ">=" || two === "<>") {
      tokens.push({ kind: "op", text: two === "<>" ? "!=" : two, offset: start, length: 2 });
      i += 2;
      continue;
    }
    if (c === "=" || c === "<" || c === ">" || c === "~") {
      tokens.push({ kind: "op", text: c, offset: start, length: 1 });
      i++;
      continue;
    }
    if (c === "(" || c === ")" || c === "," || c === "|") {
      tokens.push({ kind: "punct", text: c, offset: start, length: 1 });
      i++;
      continue;
    }
    fail(start, "a field, a value, an operator (= != < <= > >= ~), ( ) , or |", `"${c}"`);
  }
  tokens.push({ kind: "eof", text: "", offset: source.length, length: 0 });
  return tokens;
}

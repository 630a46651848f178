// The fleet query language: parse (parser.ts), compile to parameterized SQL (compile.ts),
// run. InvalidArgument on field "query" names the line, column and offset of the mistake.
import { ConnectError } from "@connectrpc/connect";
import { invalidArgument } from "@adminkiosk/runtime";
import { compileQuery, type CompiledQuery } from "./compile.js";
import { parseQuery, type ParsedQuery } from "./parser.js";
import { QueryError } from "./tokens.js";

export { compileQuery, maxGroups, type CompiledQuery } from "./compile.js";
export { fields, aggregateFunctions, type FieldDef } from "./fields.js";
export { parseQuery, maxQueryLength, type ParsedQuery } from "./parser.js";
export { QueryError, tokenize } from "./tokens.js";

/** Parses and compiles `source`, or throws InvalidArgument naming `field` and the position. */
export function requireQuery(field: string, source: string): { parsed: ParsedQuery; compiled: CompiledQuery } {
  try {
    const parsed = parseQuery(source);
    return { parsed, compiled: compileQuery(parsed) };
  } catch (err) {
    if (err instanceof QueryError) throw invalidArgument(field, err.message);
    if (err instanceof ConnectError) throw err;
    throw err;
  }
}

// Statements a service repeats run as named prepared statements: PostgreSQL parses and plans a
// text once per connection instead of on every call (issue 13: a sale's ~30 parameterised
// statements cost the server ~250 µs each unnamed, ~80 µs prepared, and the client less too).
// Only statements with parameters (single statements: the extended protocol allows no more), and
// only once a text has been seen a few times, so texts built with literals in them stay unnamed;
// a process names at most `maxNamed` texts.
import type pg from "pg";

const prepareAfter = 3;
// Each connection keeps a plan per named text it ran: a bound on what a service with many
// generated texts (fleet's query language) can hold in PostgreSQL's memory.
const maxNamed = 500;
const maxCounted = 10_000;
const names = new Map<string, string>();
const seen = new Map<string, number>();

function nameFor(text: string): string | undefined {
  const known = names.get(text);
  if (known !== undefined || names.size >= maxNamed) return known;
  const count = (seen.get(text) ?? 0) + 1;
  if (count < prepareAfter) {
    if (seen.size >= maxCounted) seen.clear();
    seen.set(text, count);
    return undefined;
  }
  seen.delete(text);
  const name = `ak_${names.size + 1}`;
  names.set(text, name);
  return name;
}

/**
 * A migration that changes a table under a prepared `SELECT *` (another replica's deploy) makes
 * PostgreSQL refuse the statement on this connection ("cached plan must not change result
 * type"): the connection's calls prepare their texts again under new names (the old ones stay on
 * the connection until it closes), and the refused call is made once more under its new name.
 * Outside a transaction that answers it; inside one the transaction is already aborted, so the
 * caller gets the refusal (and retries the transaction as for any other failure).
 */
const generations = new WeakMap<object, number>();

type QueryConfig = { text: string; values?: unknown[]; name?: string; submit?: unknown };

/** Wraps a pool client's `query` (createPool does it for every client it opens). */
export function prepareRepeatedStatements(client: pg.ClientBase): void {
  const original = client.query as (...args: unknown[]) => unknown;
  const onError = (err: unknown): boolean => {
    if ((err as { code?: string } | undefined)?.code !== "0A000" || !/cached plan must not change result type/.test((err as Error).message)) return false;
    generations.set(client, (generations.get(client) ?? 0) + 1);
    return true;
  };
  (client as { query: unknown }).query = function (this: unknown, ...args: unknown[]) {
    const named = withName(args);
    if (!named) return original.apply(this, args);
    const callback = typeof named.at(-1) === "function" ? (named.at(-1) as (err: unknown, res: unknown) => void) : undefined;
    if (callback) {
      // pool.query's way: a callback.
      named[named.length - 1] = (err: unknown, res: unknown) => {
        const again = err && onError(err) ? withName(args) : undefined;
        if (!again) return callback(err, res);
        again[again.length - 1] = (retryErr: unknown, retryRes: unknown) => callback(abortedBy(retryErr, err), retryRes);
        original.apply(this, again);
      };
      return original.apply(this, named);
    }
    const result = original.apply(this, named) as Promise<unknown>;
    return result.catch((err: unknown) => {
      if (!onError(err)) throw err;
      const again = withName(args);
      if (!again) throw err;
      return (original.apply(this, again) as Promise<unknown>).catch((retryErr: unknown) => {
        throw abortedBy(retryErr, err);
      });
    });
  };

  function withName(args: unknown[]): unknown[] | undefined {
    const [first, second] = args;
    if (typeof first === "string") {
      if (!Array.isArray(second) || second.length === 0) return undefined;
      const name = nameFor(first);
      return name === undefined ? undefined : [{ text: first, values: second, name: suffixed(name) }, ...args.slice(2)];
    }
    const config = first as QueryConfig | undefined;
    if (!config || typeof config !== "object" || typeof config.text !== "string" || config.name !== undefined || typeof config.submit === "function") return undefined;
    const values = Array.isArray(second) ? second : config.values;
    if (!Array.isArray(values) || values.length === 0) return undefined;
    const name = nameFor(config.text);
    return name === undefined ? undefined : [{ ...config, name: suffixed(name) }, ...args.slice(1)];
  }

  /** The retry's error, or the refusal itself when the retry found its transaction aborted by it (25P02). */
  function abortedBy(retryErr: unknown, refusal: unknown): unknown {
    return (retryErr as { code?: string } | undefined)?.code === "25P02" ? refusal : retryErr;
  }

  function suffixed(name: string): string {
    const generation = generations.get(client);
    return generation ? `${name}_${generation}` : name;
  }
}

// Idempotency keys: one contract for every mutating RPC that takes one (docs/api.md,
// "Idempotency keys"). A key is the caller's (scoped by principalScope: service:<name>,
// kiosk:<id>, user:<id>) and names one request:
//   - the same key and the same request → the stored answer, or the stored refusal;
//   - the same key and a different request (other fields, or another RPC) → InvalidArgument
//     naming the key's field;
//   - concurrent requests with one key → the second waits for the first (a row lock) and
//     then reads what it stored: the work runs once;
//   - transient failures (Unavailable, Internal, Aborted, deadlines) are never stored, so a
//     retry with the same key runs again.
// `idempotent` keeps the record in the service's own `idempotency_keys` table (created by
// `migrate(…, { idempotencyKeys: true })`). Where the domain's own row is the record (an
// order keyed by kiosk and key, a reservation by its id), the service keeps that row and
// uses the pieces: requireIdempotencyKey, requestHash, requireSameRequest, isStoredRefusal.
import { createHash } from "node:crypto";
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { aborted, fromRefusal, invalid, isDomainErrorKind, refusalOf, type DomainErrorKind, type Refusal } from "./errors.js";
import type { Pool, PoolClient } from "./postgres.js";
import { requireText } from "./validate.js";

/** The key rule everywhere: 1–255 printable ASCII characters, no spaces. */
export const idempotencyKeyRule = { max: 255, pattern: /^[\x21-\x7e]+$/, patternHint: "must be printable ASCII without spaces" };

export function requireIdempotencyKey(value: string, field = "idempotency_key"): string {
  return requireText(field, value, idempotencyKeyRule);
}

/**
 * The request as its hash: the method and the message without its key (`keyField`, the
 * message's field holding the key), so a retry must repeat everything else exactly.
 */
export function requestHash<D extends DescMessage>(method: string, schema: D, request: MessageShape<D>, keyField = "idempotencyKey"): Buffer {
  const withoutKey = { ...request, [keyField]: "" } as MessageShape<D>;
  return createHash("sha256").update(method).update("\n").update(toBinary(schema, withoutKey)).digest();
}

/** The one refusal for a key used again for another request. */
export function keyReused(field = "idempotency_key") {
  return invalid(field, "was already used for a different request; use a new key for a new request");
}

/** Throws `keyReused` unless the stored hash is this request's. */
export function requireSameRequest(stored: Buffer, hash: Buffer, field = "idempotency_key"): void {
  if (!stored.equals(hash)) throw keyReused(field);
}

/**
 * Refusals that answer the request itself, so a retry with the same key gets them again.
 * Anything else (Unavailable, Aborted, Internal, a deadline) is transient and never stored.
 */
export const storedRefusalKinds: ReadonlySet<DomainErrorKind> = new Set([
  "invalid",
  "notFound",
  "alreadyExists",
  "failedPrecondition",
  "exhausted",
  "permissionDenied",
  "outOfRange",
]);

/** The refusal to store with the key, or undefined when `err` must not be stored. */
export function storedRefusalOf(err: unknown): Refusal | undefined {
  const refusal = refusalOf(err);
  return refusal && storedRefusalKinds.has(refusal.kind) ? refusal : undefined;
}

export const isStoredRefusal = (err: unknown): boolean => storedRefusalOf(err) !== undefined;

/** A stored refusal read back (jsonb); throws it again as the DomainError it was. */
export function replayRefusal(stored: unknown): never {
  const r = stored as Partial<Refusal> | null;
  if (!r || !isDomainErrorKind(r.kind) || typeof r.message !== "string") throw new Error(`unreadable stored refusal: ${JSON.stringify(stored)}`);
  throw fromRefusal({ kind: r.kind, message: r.message, violations: r.violations ?? [], ...(r.info ? { info: r.info } : {}) });
}

export interface IdempotencyClaim {
  /** principalScope(caller) */
  scope: string;
  key: string;
  method: string;
  hash: Buffer;
}

/**
 * Runs `work` once per (scope, key): claims the key in the transaction that does the work
 * and stores the answer (or a stored refusal) with it. A duplicate waits on the claim's row
 * lock, then replays what the first stored.
 */
export async function idempotent<D extends DescMessage>(
  pool: Pool,
  claim: IdempotencyClaim,
  responseSchema: D,
  work: (tx: PoolClient) => Promise<MessageShape<D>>,
): Promise<MessageShape<D>> {
  const client = await pool.connect();
  // The steps around the work go as one round trip each side (several statements in one
  // simple query, the values as escaped literals): BEGIN + claim + SAVEPOINT before, the
  // answer + COMMIT after — two round trips where there were five.
  const lit = (v: string) => client.escapeLiteral(v);
  const bytes = (b: Uint8Array) => `${lit(`\\x${Buffer.from(b).toString("hex")}`)}::bytea`;
  const where = `scope = ${lit(claim.scope)} AND key = ${lit(claim.key)}`;
  try {
    const results = (await client.query(
      `BEGIN; INSERT INTO idempotency_keys (scope, key, method, request_hash) VALUES (${lit(claim.scope)}, ${lit(claim.key)}, ${lit(claim.method)}, ${bytes(claim.hash)}) ON CONFLICT DO NOTHING; SAVEPOINT work`,
    )) as unknown as { rowCount: number | null }[];
    if (results[1]!.rowCount === 0) {
      await client.query("COMMIT");
      return await replay(client, claim, responseSchema);
    }
    let response: MessageShape<D>;
    try {
      response = await work(client);
    } catch (err) {
      const refusal = storedRefusalOf(err);
      if (!refusal) throw err;
      await client.query("ROLLBACK TO SAVEPOINT work");
      await client.query("UPDATE idempotency_keys SET error = $3 WHERE scope = $1 AND key = $2", [claim.scope, claim.key, refusal]);
      await client.query("COMMIT");
      throw err;
    }
    await client.query(`UPDATE idempotency_keys SET response = ${bytes(toBinary(responseSchema, response))} WHERE ${where}; COMMIT`);
    return response;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

async function replay<D extends DescMessage>(client: PoolClient, claim: IdempotencyClaim, schema: D): Promise<MessageShape<D>> {
  const { rows } = await client.query<{ request_hash: Buffer; response: Buffer | null; error: unknown }>(
    "SELECT request_hash, response, error FROM idempotency_keys WHERE scope = $1 AND key = $2",
    [claim.scope, claim.key],
  );
  const row = rows[0];
  // Expired and removed between the INSERT and here: rare; the caller may simply retry.
  if (!row) throw aborted("the idempotency key expired while it was being used; retry");
  requireSameRequest(row.request_hash, claim.hash);
  if (row.error) replayRefusal(row.error);
  if (!row.response) throw aborted("the first request with this idempotency key has no answer yet; retry");
  return fromBinary(schema, row.response);
}

/** Keys older than `ttlMs` go (checked hourly, or every `ttlMs` if shorter); they may then be used again. */
export function startIdempotencyCleanup(pool: Pool, ttlMs: number): () => void {
  const timer = setInterval(() => {
    pool.query("DELETE FROM idempotency_keys WHERE created_at < now() - $1 * interval '1 millisecond'", [ttlMs]).catch(() => {});
  }, Math.min(ttlMs, 3_600_000));
  timer.unref();
  return () => clearInterval(timer);
}

// Idempotency keys on every mutating RPC (Stripe's rules). A request claims
// (scope, key) by inserting it in the same transaction that does the work and stores
// the answer there, so:
//   - the same key and the same request → the stored response, or the stored error;
//   - the same key and a different request (other fields, or another RPC) → InvalidArgument;
//   - concurrent requests with one key → the second INSERT waits for the first
//     transaction, then reads what it stored: the work runs once.
// Errors that say nothing about the request (Unavailable, Internal, Aborted, deadline)
// roll the claim back with the work, so a retry runs again.
import { createHash } from "node:crypto";
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { invalidArgument, principalScope, requireText, type Pool, type PoolClient, type Principal } from "@adminkiosk/runtime";

/** Outcomes stored with the key: they answer the request itself, so a retry gets them again. */
const storedCodes = new Set([Code.InvalidArgument, Code.NotFound, Code.AlreadyExists, Code.FailedPrecondition, Code.PermissionDenied, Code.OutOfRange]);

interface StoredError {
  code: Code;
  message: string;
  violations: { field: string; description: string }[];
}

export function requireIdempotencyKey(value: string): string {
  return requireText("idempotency_key", value, { max: 255, pattern: /^[\x21-\x7e]+$/, patternHint: "must be printable ASCII without spaces" });
}

export const scopeOf = (p: Principal): string => principalScope(p);

/** The request as its hash: the method and the message without its key. */
export function requestHash<D extends DescMessage>(method: string, schema: D, request: MessageShape<D>): Buffer {
  return createHash("sha256").update(method).update("\n").update(toBinary(schema, { ...request, idempotencyKey: "" })).digest();
}

export async function idempotent<D extends DescMessage>(
  pool: Pool,
  claim: { scope: string; key: string; method: string; hash: Buffer },
  responseSchema: D,
  work: (tx: PoolClient) => Promise<MessageShape<D>>,
): Promise<MessageShape<D>> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const claimed = await client.query(
      "INSERT INTO idempotency_keys (scope, key, method, request_hash) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
      [claim.scope, claim.key, claim.method, claim.hash],
    );
    if (claimed.rowCount === 0) {
      await client.query("COMMIT");
      return await replay(client, claim, responseSchema);
    }
    await client.query("SAVEPOINT work");
    let response: MessageShape<D>;
    try {
      response = await work(client);
    } catch (err) {
      if (!(err instanceof ConnectError) || !storedCodes.has(err.code)) throw err;
      await client.query("ROLLBACK TO SAVEPOINT work");
      await client.query("UPDATE idempotency_keys SET error = $3 WHERE scope = $1 AND key = $2", [claim.scope, claim.key, toStored(err)]);
      await client.query("COMMIT");
      throw err;
    }
    await client.query("UPDATE idempotency_keys SET response = $3 WHERE scope = $1 AND key = $2", [claim.scope, claim.key, Buffer.from(toBinary(responseSchema, response))]);
    await client.query("COMMIT");
    return response;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

async function replay<D extends DescMessage>(client: PoolClient, claim: { scope: string; key: string; hash: Buffer }, schema: D): Promise<MessageShape<D>> {
  const { rows } = await client.query<{ request_hash: Buffer; response: Buffer | null; error: StoredError | null }>(
    "SELECT request_hash, response, error FROM idempotency_keys WHERE scope = $1 AND key = $2",
    [claim.scope, claim.key],
  );
  const row = rows[0];
  // Expired and removed between the INSERT and here: rare; the caller may simply retry.
  if (!row) throw new ConnectError("the idempotency key expired while it was being used; retry", Code.Aborted);
  if (!row.request_hash.equals(claim.hash)) throw invalidArgument("idempotency_key", "was already used for a different request; use a new key for a new request");
  if (row.error) throw fromStored(row.error);
  if (!row.response) throw new ConnectError("the first request with this idempotency key has no answer yet; retry", Code.Aborted);
  return fromBinary(schema, row.response);
}

function toStored(err: ConnectError): StoredError {
  const violations = err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
  return { code: err.code, message: err.rawMessage, violations };
}

function fromStored(e: StoredError): ConnectError {
  const first = e.violations[0];
  if (e.code === Code.InvalidArgument && first) return invalidArgument(first.field, first.description);
  return new ConnectError(e.message, e.code);
}

/** Keys older than the TTL go; they may then be used again. */
export function startIdempotencyCleanup(pool: Pool, ttlMs: number): () => void {
  const timer = setInterval(() => {
    pool.query("DELETE FROM idempotency_keys WHERE created_at < now() - $1 * interval '1 millisecond'", [ttlMs]).catch(() => {});
  }, Math.min(ttlMs, 3_600_000));
  timer.unref();
  return () => clearInterval(timer);
}

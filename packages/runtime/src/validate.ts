// Input checks that end in InvalidArgument naming the field (as in the proto), with a
// google.rpc.BadRequest detail so clients can point at the field.
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";

export function invalidArgument(field: string, description: string): ConnectError {
  return new ConnectError(`${field}: ${description}`, Code.InvalidArgument, undefined, [
    { desc: BadRequestSchema, value: { fieldViolations: [{ field, description }] } },
  ]);
}

export interface TextRule {
  min?: number;
  max: number;
  pattern?: RegExp;
  /** Said when `pattern` does not match. */
  patternHint?: string;
  /**
   * Free text from a device or a program (an error message, a stack trace, a tool's
   * output with colour codes): control characters are kept, only NUL is refused
   * (PostgreSQL's text and jsonb cannot hold it).
   */
  allowControl?: boolean;
}

/** Trims nothing and forgives nothing: the value must already be what the contract says. */
export function requireText(field: string, value: string, rule: TextRule): string {
  const min = rule.min ?? 1;
  if (value.length < min) throw invalidArgument(field, min === 1 ? "must not be empty" : `must be at least ${min} characters`);
  if (value.length > rule.max) throw invalidArgument(field, `must be at most ${rule.max} characters`);
  if (rule.allowControl) {
    if (value.includes("\u0000")) throw invalidArgument(field, "must not contain NUL characters");
  } else if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/.test(value)) throw invalidArgument(field, "must not contain control characters");
  if (rule.pattern && !rule.pattern.test(value)) throw invalidArgument(field, rule.patternHint ?? `must match ${rule.pattern.source}`);
  return value;
}

/**
 * Kiosk ids: letters, digits, '_' and '-', up to 64. No '.': kiosk ids are NATS subject
 * tokens (auth.device.<kiosk_id>.revoked, link.kiosk.<kiosk_id>.*).
 */
export function requireKioskId(field: string, value: string): string {
  return requireText(field, value, { max: 64, pattern: /^[A-Za-z0-9_-]+$/, patternHint: "may contain only letters, digits, '_' and '-'" });
}

const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** An email address, compared case-insensitively (so returned lower-cased). */
export function requireEmail(field: string, value: string): string {
  return requireText(field, value.trim(), { max: 254, pattern: emailPattern, patternHint: "must be an email address" }).toLowerCase();
}

/** A phone number in E.164 ("+" country code and number, 8-15 digits in all, e.g. "+420601234567"). */
export function requirePhoneNumber(field: string, value: string): string {
  const v = value.trim().replace(/[\s()-]/g, "");
  if (!/^\+[1-9][0-9]{7,14}$/.test(v)) throw invalidArgument(field, 'must be an E.164 phone number such as "+420601234567"');
  return v;
}

export function requireUuid(field: string, value: string): string {
  return requireText(field, value, {
    max: 36,
    pattern: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
    patternHint: "must be a UUID",
  });
}

/** 0 means the default; anything else must be within 1..max. */
export function pageSize(field: string, value: number, fallback = 50, max = 500): number {
  if (value === 0) return fallback;
  if (value < 1 || value > max) throw invalidArgument(field, `must be between 1 and ${max}`);
  return value;
}

/** Page tokens are opaque to callers: base64url JSON of the last row's sort key. */
export function encodePageToken(cursor: Record<string, string>): string {
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

export const cursorPatterns = {
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  integer: /^\d{1,19}$/,
  timestamp: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/,
  any: /^[\s\S]{1,1000}$/,
};

/**
 * The cursor in a page token, or undefined for the first page. Every key of `shape`
 * must be present and match its pattern, so a forged token is InvalidArgument,
 * never a database error.
 */
export function decodePageToken<K extends string>(field: string, token: string, shape: Record<K, RegExp>): Record<K, string> | undefined {
  if (token === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const cursor: Partial<Record<K, string>> = {};
  for (const key of Object.keys(shape) as K[]) {
    const value: unknown = typeof parsed === "object" && parsed !== null ? Reflect.get(parsed, key) : undefined;
    if (typeof value !== "string" || !shape[key].test(value)) throw invalidArgument(field, "is not a page token this service issued");
    cursor[key] = value;
  }
  return cursor as Record<K, string>;
}

const currencies = new Set(Intl.supportedValuesOf("currency"));

/** An ISO 4217 currency code Node knows (upper case, e.g. EUR); money is integer minor units of it. */
export function requireCurrency(field: string, value: string): string {
  if (!/^[A-Z]{3}$/.test(value) || !currencies.has(value)) throw invalidArgument(field, "must be an ISO 4217 currency code in upper case, e.g. EUR");
  return value;
}

/** The largest finite value of a PostgreSQL `real` (IEEE float4). */
export const float32Max = 3.4028234663852886e38;

export interface NumberRule {
  min: number;
  max: number;
  /** Whole numbers only (for smallint/integer columns). */
  integer?: boolean;
  /**
   * Stored as a PostgreSQL `real`: besides min..max, a value so close to zero that a
   * float4 rounds it to 0 is refused there ("out of range"), so it is refused here.
   */
  float32?: boolean;
}

/** A finite number within min..max (NaN and ±Infinity are refused). */
export function requireNumber(field: string, value: number, rule: NumberRule): number {
  const what = rule.integer ? "an integer" : "a finite number";
  if (!Number.isFinite(value) || value < rule.min || value > rule.max || (rule.integer && !Number.isInteger(value)))
    throw invalidArgument(field, `must be ${what} from ${rule.min} to ${rule.max}`);
  if (rule.float32 && value !== 0 && Math.fround(value) === 0) throw invalidArgument(field, "is too close to 0 for a 32-bit float (send 0)");
  return value;
}

/** A 64-bit integer (proto int64, PostgreSQL bigint) within min..max. */
export function requireBigInt(field: string, value: bigint, rule: { min: bigint; max: bigint }): bigint {
  if (value < rule.min || value > rule.max) throw invalidArgument(field, `must be from ${rule.min} to ${rule.max}`);
  return value;
}

/**
 * One of the values a protobuf enum declares. protobuf-es keeps a number it does not
 * know (open enums), so a device can send 70000 where a smallint column waits.
 * `values` is the generated TypeScript enum (its reverse mapping names each number).
 */
export function requireEnum<E extends number>(field: string, value: E, values: Record<number, string>): E {
  if (typeof values[value] !== "string") throw invalidArgument(field, `must be one of the values the contract declares (got ${value})`);
  return value;
}

/** A repeated field of at most `max` items (and at least `min`, default 0). */
export function requireCount<T>(field: string, list: readonly T[], max: number, min = 0): readonly T[] {
  if (list.length < min || list.length > max) throw invalidArgument(field, min > 0 ? `must hold ${min} to ${max} items` : `must hold at most ${max} items`);
  return list;
}

const timestampMinSeconds = -62_135_596_800n; // 0001-01-01T00:00:00Z
const timestampMaxSeconds = 253_402_300_799n; // 9999-12-31T23:59:59Z

/** A google.protobuf.Timestamp as its definition allows: years 1 to 9999, nanos 0 to 999,999,999. */
export function requireTimestamp(field: string, value: { seconds: bigint; nanos: number }): { seconds: bigint; nanos: number } {
  if (value.seconds < timestampMinSeconds || value.seconds > timestampMaxSeconds || !Number.isInteger(value.nanos) || value.nanos < 0 || value.nanos > 999_999_999)
    throw invalidArgument(field, "must be a valid timestamp (years 1 to 9999)");
  return value;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * A JSON document (a google.protobuf.Struct) that PostgreSQL's jsonb will take: no NUL
 * in any string or key, finite numbers, at most `maxDepth` levels and `maxBytes` as JSON.
 */
export function requireJson<T>(field: string, value: T, rule: { maxBytes: number; maxDepth: number }): T {
  const walk = (v: Json, depth: number) => {
    if (depth > rule.maxDepth) throw invalidArgument(field, `must be nested at most ${rule.maxDepth} levels deep`);
    if (typeof v === "string") {
      if (v.includes("\u0000")) throw invalidArgument(field, "must not contain NUL characters");
    } else if (typeof v === "number") {
      if (!Number.isFinite(v)) throw invalidArgument(field, "must hold finite numbers only");
    } else if (Array.isArray(v)) v.forEach((x) => walk(x, depth + 1));
    else if (v !== null && typeof v === "object")
      for (const [k, x] of Object.entries(v)) {
        if (k.includes("\u0000")) throw invalidArgument(field, "must not contain NUL characters");
        walk(x, depth + 1);
      }
  };
  walk(value as Json, 1);
  if (Buffer.byteLength(JSON.stringify(value)) > rule.maxBytes) throw invalidArgument(field, `must be at most ${rule.maxBytes} bytes as JSON`);
  return value;
}

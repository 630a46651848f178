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
}

/** Trims nothing and forgives nothing: the value must already be what the contract says. */
export function requireText(field: string, value: string, rule: TextRule): string {
  const min = rule.min ?? 1;
  if (value.length < min) throw invalidArgument(field, min === 1 ? "must not be empty" : `must be at least ${min} characters`);
  if (value.length > rule.max) throw invalidArgument(field, `must be at most ${rule.max} characters`);
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/.test(value)) throw invalidArgument(field, "must not contain control characters");
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

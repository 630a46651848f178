// Contact data and identifiers as customers accepts them: one rule each, used by every RPC that
// takes them, so a malformed value is refused the same way (InvalidArgument naming the field).
import { randomBytes, randomInt } from "node:crypto";
import type { MemberRef } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { isSupportedCountry, parsePhoneNumberWithError, type CountryCode } from "libphonenumber-js";
import { invalid, requireEmail } from "@adminkiosk/runtime";

/** An optional email: "" stays "", anything else must be an address (lower-cased). */
export const optionalEmail = (field: string, value: string): string | undefined => (value.trim() === "" ? undefined : requireEmail(field, value));

/** A region libphonenumber knows ("CZ", "DE", …), for config validation. */
export const isPhoneRegion = (region: string): region is CountryCode => isSupportedCountry(region);

/**
 * A phone number as libphonenumber reads it — international ("+420 601 234 567", "00420…") or
 * national in `region` ("601 234 567") — that is a valid number of its country (length and
 * prefixes by the country's numbering plan), normalised to E.164. Anything else is
 * INVALID_ARGUMENT naming `field`.
 */
export function requirePhone(field: string, value: string, region: CountryCode | undefined): string {
  const v = value.trim();
  if (v.length > 32) throw invalid(field, "must be a phone number (at most 32 characters)");
  let parsed;
  try {
    parsed = parsePhoneNumberWithError(v.replace(/^00(?=[1-9])/, "+"), region ? { defaultCountry: region } : undefined);
  } catch {
    throw invalid(field, `must be a phone number, international ("+420 601 234 567")${region ? ` or national in ${region}` : ""}`);
  }
  if (!parsed.isValid()) throw invalid(field, `${parsed.number} is not a valid ${parsed.country ?? `+${parsed.countryCallingCode}`} phone number`);
  return parsed.number;
}

/** An optional phone number, normalised to E.164 ("" stays ""). */
export const optionalPhone = (field: string, value: string, region: CountryCode | undefined): string | undefined => (value.trim() === "" ? undefined : requirePhone(field, value, region));

const cardPattern = /^[0-9]{12,19}$/;
const qrPattern = /^mq_[A-Za-z0-9_-]{32}$/;

/** What a kiosk scanned, checked for shape (not yet for existence). */
export type ScannedMember = { cardNumber: string } | { qrToken: string };

export function requireMemberRef(field: string, ref: MemberRef | undefined): ScannedMember {
  const kind = ref?.kind;
  if (!kind || kind.case === undefined) throw invalid(field, "must name the member by card_number or qr_token");
  if (kind.case === "cardNumber") {
    const v = kind.value.replace(/[\s-]/g, "");
    if (!cardPattern.test(v)) throw invalid(`${field}.card_number`, "must be 12-19 digits");
    return { cardNumber: v };
  }
  if (!qrPattern.test(kind.value)) throw invalid(`${field}.qr_token`, 'must be a member QR token ("mq_" and 32 characters)');
  return { qrToken: kind.value };
}

/** The field a scanned identifier came in, for refusals about it. */
export const scannedField = (field: string, s: ScannedMember) => ("cardNumber" in s ? `${field}.card_number` : `${field}.qr_token`);

/** A new card number: 16 digits, the last a Luhn check digit (so a mistyped number is caught by the scanner app too). */
export function newCardNumber(): string {
  const digits = [9, 8, ...Array.from({ length: 13 }, () => randomInt(10))];
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits[digits.length - 1 - i]!;
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return [...digits, (10 - (sum % 10)) % 10].join("");
}

export const newQrToken = (): string => `mq_${randomBytes(24).toString("base64url")}`;

/** "b***@example.com", "+42060****567": what lists show of a contact. */
export function maskContact(value: string | null): string {
  if (!value) return "";
  if (value.includes("@")) return value.replace(/^(.)[^@]*@/, "$1***@");
  return value.length > 7 ? `${value.slice(0, 6)}${"*".repeat(value.length - 9)}${value.slice(-3)}` : "***";
}

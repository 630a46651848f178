// The buyer's review link on a receipt (issue 22): notifications signs a token for one order,
// customers verifies it on its public review RPCs. One format, both sides:
//   rv1.<base64url("<order_id>.<kiosk_id>.<expires unix s>")>.<base64url(HMAC-SHA256(secret, "rv1.<payload>"))>
// The secret (REVIEW_LINK_SECRET) is shared by the two services only; customers accepts every
// secret it lists (rotation: add the new one to customers, then sign with it at notifications,
// then drop the old one). The token grants reviewing that order's products until it expires,
// nothing else: it names no person and reads no personal data.
import { createHmac, timingSafeEqual } from "node:crypto";
import { invalid, permissionDenied } from "./errors.js";

const prefix = "rv1";
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const kioskPattern = /^[A-Za-z0-9_-]{1,64}$/;

export interface ReviewGrant {
  orderId: string;
  kioskId: string;
  expiresAt: Date;
}

const mac = (secret: string, payload: string) => createHmac("sha256", secret).update(`${prefix}.${payload}`).digest();

/** A token for reviewing `orderId` (bought at `kioskId`) until `expiresAt`. */
export function signReviewToken(secret: string, grant: ReviewGrant): string {
  const payload = Buffer.from(`${grant.orderId.toLowerCase()}.${grant.kioskId}.${Math.floor(grant.expiresAt.getTime() / 1000)}`).toString("base64url");
  return `${prefix}.${payload}.${mac(secret, payload).toString("base64url")}`;
}

/**
 * The grant a token carries. Not a token at all (shape): INVALID_ARGUMENT naming `field`; a
 * signature none of `secrets` made (forged or altered) or a past expiry: PERMISSION_DENIED
 * naming `field`.
 */
export function verifyReviewToken(secrets: string[], token: string, field = "token", now = new Date()): ReviewGrant {
  const parts = token.trim().split(".");
  if (parts.length !== 3 || parts[0] !== prefix || !/^[A-Za-z0-9_-]+$/.test(parts[1]!) || !/^[A-Za-z0-9_-]{43}$/.test(parts[2]!))
    throw invalid(field, "must be a review link's token (rv1.<payload>.<signature>)");
  const [, payload, signature] = parts as [string, string, string];
  const given = Buffer.from(signature, "base64url");
  if (!secrets.some((s) => timingSafeEqual(mac(s, payload), given))) throw permissionDenied(`${field}: the review link's signature does not match (altered or not ours)`);
  const [orderId, kioskId, expires] = Buffer.from(payload, "base64url").toString("utf8").split(".");
  if (!orderId || !uuid.test(orderId) || !kioskId || !kioskPattern.test(kioskId) || !expires || !/^[0-9]{1,12}$/.test(expires))
    throw invalid(field, "carries no order, kiosk and expiry");
  const expiresAt = new Date(Number(expires) * 1000);
  if (expiresAt.getTime() <= now.getTime()) throw permissionDenied(`${field}: the review link expired at ${expiresAt.toISOString()}`);
  return { orderId, kioskId, expiresAt };
}

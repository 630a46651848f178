// Tickets' QR payloads: a compact JWS (EdDSA, Ed25519) over a few short claims, so a
// scanner verifies a ticket offline with the public keys from GetTicketVerificationKeys.
import { calculateJwkThumbprint, CompactSign, exportJWK, importJWK, type JWK } from "jose";

export interface TicketClaims {
  /** ticket id */
  tid: string;
  /** order id */
  oid: string;
  /** kiosk that sold it */
  kid: string;
  /** event id */
  ev: string;
  seat: string;
  /** issued at, seconds since the epoch */
  iat: number;
}

export interface TicketSigner {
  sign(claims: TicketClaims): Promise<string>;
  /** The JWKS scanners verify with: the current key, then any rotated-out ones. */
  jwksJson: string;
}

export const ticketTokenType = "ticket+jws";

/** `privateJwk`: the ORDERS_TICKET_SIGNING_KEY; `previous`: public JWKs still published. */
export async function createTicketSigner(privateJwk: string, previous: string): Promise<TicketSigner> {
  let jwk: JWK;
  let older: JWK[];
  try {
    jwk = JSON.parse(privateJwk) as JWK;
    older = JSON.parse(previous) as JWK[];
  } catch {
    throw new Error("ORDERS_TICKET_SIGNING_KEY and ORDERS_TICKET_PREVIOUS_KEYS must be JSON");
  }
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.d || !jwk.x) throw new Error("ORDERS_TICKET_SIGNING_KEY must be an Ed25519 private JWK");
  if (!Array.isArray(older)) throw new Error("ORDERS_TICKET_PREVIOUS_KEYS must be a JSON array of public JWKs");
  const key = await importJWK(jwk, "EdDSA");
  const publicJwk: JWK = { kty: "OKP", crv: "Ed25519", x: jwk.x };
  const kid = await calculateJwkThumbprint(publicJwk);
  const keys = [{ ...publicJwk, kid, alg: "EdDSA", use: "sig" }, ...older.map((k) => ({ kty: k.kty, crv: k.crv, x: k.x, kid: k.kid, alg: "EdDSA", use: "sig" }))];
  const encoder = new TextEncoder();
  return {
    sign: (claims) => new CompactSign(encoder.encode(JSON.stringify(claims))).setProtectedHeader({ alg: "EdDSA", kid, typ: ticketTokenType }).sign(key),
    jwksJson: JSON.stringify({ keys }),
  };
}

/** A fresh signing key as ORDERS_TICKET_SIGNING_KEY wants it (npm start, tests). */
export async function generateTicketSigningKey(): Promise<string> {
  const { generateKeyPair } = await import("jose");
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  return JSON.stringify(await exportJWK(privateKey));
}

/**
 * What a scanner does with a QR payload, offline: verify the JWS with the published keys
 * (EdDSA only, typ ticket+jws) and read the claims. Each part must be canonical
 * base64url, so no two payloads (e.g. differing in a last character's unused bits)
 * verify as the same ticket.
 */
export async function verifyTicket(payload: string, jwksJson: string): Promise<TicketClaims> {
  const { compactVerify, createLocalJWKSet } = await import("jose");
  const parts = payload.split(".");
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p) || Buffer.from(p, "base64url").toString("base64url") !== p))
    throw new Error("not a canonical compact JWS");
  const { payload: body, protectedHeader } = await compactVerify(payload, createLocalJWKSet(JSON.parse(jwksJson) as { keys: JWK[] }), { algorithms: ["EdDSA"] });
  if (protectedHeader.typ !== ticketTokenType) throw new Error("not a ticket");
  return JSON.parse(new TextDecoder().decode(body)) as TicketClaims;
}

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
  /** A ticket-signing delegation to a kiosk's key (docs/offline.md), signed with the ticket key. */
  signDelegation(claims: DelegationClaims): Promise<string>;
  /** The JWKS scanners verify with: the current key, then any rotated-out ones. */
  jwksJson: string;
}

export const ticketTokenType = "ticket+jws";
export const delegationTokenType = "ticket-delegation+jws";
export const offlineTicketTokenType = "ticket-offline+jws";

/**
 * What orders signs for a kiosk going offline (docs/offline.md): this kiosk's Ed25519
 * key may sign tickets for these seats of this lease, until exp.
 */
export interface DelegationClaims {
  /** kiosk */
  sub: string;
  lease: string;
  /** The kiosk's public key. */
  jwk: { kty: "OKP"; crv: "Ed25519"; x: string };
  /** "<event_id>/<seat_id>" the kiosk may issue tickets for. */
  seats: string[];
  iat: number;
  exp: number;
  /** Card floor limit per sale (minor units of cur). */
  floor: number;
  cur: string;
}

/** A ticket a kiosk signed offline with its delegated key. */
export interface OfflineTicketClaims {
  tid: string;
  /** The sale's idempotency key at the kiosk. */
  sale: string;
  /** kiosk */
  kid: string;
  ev: string;
  seat: string;
  iat: number;
}

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
    signDelegation: (claims) => new CompactSign(encoder.encode(JSON.stringify(claims))).setProtectedHeader({ alg: "EdDSA", kid, typ: delegationTokenType }).sign(key),
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
  if (parts.length === 6) {
    const offline = await verifyOfflineTicket(payload, jwksJson);
    return { tid: offline.tid, oid: "", kid: offline.kid, ev: offline.ev, seat: offline.seat, iat: offline.iat };
  }
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p) || Buffer.from(p, "base64url").toString("base64url") !== p))
    throw new Error("not a canonical compact JWS");
  const { payload: body, protectedHeader } = await compactVerify(payload, createLocalJWKSet(JSON.parse(jwksJson) as { keys: JWK[] }), { algorithms: ["EdDSA"] });
  if (protectedHeader.typ !== ticketTokenType) throw new Error("not a ticket");
  return JSON.parse(new TextDecoder().decode(body)) as TicketClaims;
}

/**
 * A ticket a kiosk issued offline (docs/offline.md): "<delegation>.<ticket>", six canonical
 * base64url parts. The delegation must verify with the published keys (typ
 * ticket-delegation+jws), the ticket with the key it delegates (typ ticket-offline+jws),
 * for the delegation's kiosk, one of its seats, signed within its lifetime. Needs nothing
 * but the published keys: a scanner verifies it offline.
 */
export async function verifyOfflineTicket(payload: string, jwksJson: string): Promise<OfflineTicketClaims & { lease: string }> {
  const { compactVerify, createLocalJWKSet, importJWK } = await import("jose");
  const parts = payload.split(".");
  if (parts.length !== 6 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p) || Buffer.from(p, "base64url").toString("base64url") !== p))
    throw new Error("not an offline ticket (six canonical base64url parts)");
  const decoder = new TextDecoder();
  const delegation = await compactVerify(parts.slice(0, 3).join("."), createLocalJWKSet(JSON.parse(jwksJson) as { keys: JWK[] }), { algorithms: ["EdDSA"] });
  if (delegation.protectedHeader.typ !== delegationTokenType) throw new Error("not a ticket delegation");
  const d = JSON.parse(decoder.decode(delegation.payload)) as DelegationClaims;
  if (d.jwk?.kty !== "OKP" || d.jwk.crv !== "Ed25519" || typeof d.jwk.x !== "string") throw new Error("the delegation names no Ed25519 key");
  const kioskKey = await importJWK({ kty: "OKP", crv: "Ed25519", x: d.jwk.x }, "EdDSA");
  const ticket = await compactVerify(parts.slice(3).join("."), kioskKey, { algorithms: ["EdDSA"] });
  if (ticket.protectedHeader.typ !== offlineTicketTokenType) throw new Error("not an offline ticket");
  const t = JSON.parse(decoder.decode(ticket.payload)) as OfflineTicketClaims;
  if (t.kid !== d.sub) throw new Error(`the ticket names kiosk ${t.kid}, the delegation ${d.sub}`);
  if (!Array.isArray(d.seats) || !d.seats.includes(`${t.ev}/${t.seat}`)) throw new Error(`seat ${t.seat} of event ${t.ev} is outside the delegation`);
  if (typeof t.iat !== "number" || t.iat < d.iat - 60 || t.iat > d.exp) throw new Error("the ticket was signed outside the delegation's lifetime");
  return { ...t, lease: d.lease };
}

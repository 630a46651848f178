// Verifying the tokens auth issues. Access tokens (typ at+jwt, RFC 9068) name a user
// and role; device credentials (typ device+jwt) name an enrolled kiosk; service tokens
// (typ service+jwt) name one of the platform's services. All are EdDSA JWTs whose keys come from auth's JWKS. The algorithm, issuer, audience and
// typ are pinned so one kind of token is never accepted as another (RFC 8725).
import { KeyObject, verify as verifySignature, webcrypto } from "node:crypto";
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type CompactJWSHeaderParameters, type JWTPayload, type JWTVerifyGetKey, type ProtectedHeaderParameters } from "jose";
import type { Redis } from "ioredis";
import type { Principal } from "./principal.js";
import { roleFromName } from "./principal.js";

export const tokenIssuer = "adminkiosk-auth";
export const tokenAudience = "adminkiosk";
export const accessTokenType = "at+jwt";
export const deviceTokenType = "device+jwt";
export const serviceTokenType = "service+jwt";
/** Names a service token may carry: lower-case words, as the services' folders are named. */
export const serviceNamePattern = /^[a-z][a-z0-9-]{1,30}$/;
export const signingAlgorithm = "EdDSA";

export class TokenRejected extends Error {
  override name = "TokenRejected";
}

export interface TokenVerifierOptions {
  keys: JWTVerifyGetKey;
  /** Answers whether a credential was revoked: a device, or a person's ended session (auth keeps both in Redis). */
  isRevoked: (credential: RevocableCredential) => Promise<boolean>;
  now?: () => Date;
  /**
   * Verified tokens kept (least recently used dropped first; default 10,000): a token seen
   * again skips the signature check until it expires, or at most VERIFIED_TOKEN_TTL_MS after
   * it was verified (as long as the JWKS is cached, so a key auth withdrew stops working as
   * soon as it did without the cache). Revocation is still asked on every call.
   */
  cacheSize?: number;
  /**
   * When the revocation store cannot answer (Redis is down), a credential it said was not
   * revoked at most this long ago is still accepted (default 30 s; 0: never). One never
   * checked, or checked longer ago, is refused (Unavailable): the platform fails closed
   * except for a Redis blip under callers already working (issue 16, operations.md
   * "Degradation matrix"). A revocation cannot be recorded while Redis is down anyway.
   */
  revocationGraceMs?: number;
}

/** How long a verified token is trusted without checking its signature again. */
export const VERIFIED_TOKEN_TTL_MS = 10 * 60_000;

export type TokenVerifier = (token: string) => Promise<Principal>;

export type RevocableCredential = { kind: "device"; deviceId: string } | { kind: "session"; sessionId: string };

/** The Redis set auth keeps revoked device ids in; every service's verifier consults it. */
export const revokedDevicesKey = "auth:revoked-devices";
/**
 * Ended sessions (logout, reuse detected, user disabled, password or role changed):
 * one key per session that lives as long as an access token can, so an access token
 * stops working everywhere at once instead of at its expiry.
 */
export const endedSessionKey = (sessionId: string) => `auth:session-ended:${sessionId}`;

/**
 * isRevoked for createTokenVerifier, backed by auth's Redis keys, asked for all the calls of one
 * tick together: one SMISMEMBER for devices and one MGET for people's sessions, instead of a
 * round trip (and a socket write) per call — link opens hundreds of streams per tick in a
 * reconnect storm, fleet serves SendCommand to dozens of callers at once. Each call still gets
 * its own answer, asked after it arrived.
 */
export function redisRevocationCheck(redis: Pick<Redis, "smismember" | "mget">): (credential: RevocableCredential) => Promise<boolean> {
  type Asked = { id: string; resolve: (revoked: boolean) => void; reject: (err: unknown) => void };
  let devices: Asked[] = [];
  let sessions: Asked[] = [];
  const answer = (asked: Asked[], reply: Promise<boolean[]>) =>
    reply.then(
      (revoked) => asked.forEach((a, i) => a.resolve(revoked[i] === true)),
      (err: unknown) => asked.forEach((a) => a.reject(err)),
    );
  const flush = () => {
    const [d, s] = [devices, sessions];
    devices = [];
    sessions = [];
    if (d.length) answer(d, redis.smismember(revokedDevicesKey, ...d.map((a) => a.id)).then((r) => r.map((x) => x === 1)));
    if (s.length) answer(s, redis.mget(...s.map((a) => endedSessionKey(a.id))).then((r) => r.map((x) => x !== null)));
  };
  return (c) =>
    new Promise<boolean>((resolve, reject) => {
      if (devices.length === 0 && sessions.length === 0) setImmediate(flush);
      if (c.kind === "device") devices.push({ id: c.deviceId, resolve, reject });
      else sessions.push({ id: c.sessionId, resolve, reject });
    });
}

/** Keys from auth's JWKS URL: cached, and fetched again when a token names an unknown kid. */
export function remoteKeys(jwksUrl: string): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(jwksUrl), { cacheMaxAge: 10 * 60_000, cooldownDuration: 5_000, timeoutDuration: 3_000 });
}

/** What a verified token says, before its revocation is asked. */
interface Verified {
  principal: Principal;
  revocable?: RevocableCredential;
  /** Trusted until then (ms since the epoch). */
  until: number;
}

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const cacheSize = options.cacheSize ?? 10_000;
  const verified = new Map<string, Verified>();
  const now = () => (options.now?.() ?? new Date()).getTime();
  const grace = options.revocationGraceMs ?? 30_000;
  const notRevokedAt = new Map<string, number>();
  return async (token) => {
    let v = verified.get(token);
    if (v && now() < v.until) {
      // Most recently used last: the oldest is dropped first.
      verified.delete(token);
      verified.set(token, v);
    } else {
      if (v) verified.delete(token);
      v = await verify(token);
      if (cacheSize > 0) {
        verified.set(token, v);
        if (verified.size > cacheSize) verified.delete(verified.keys().next().value!);
      }
    }
    if (v.revocable && (await revoked(v.revocable)))
      throw new TokenRejected(v.revocable.kind === "session" ? "the session has ended; sign in again" : "the device credential was revoked");
    return { ...v.principal };
  };

  /** Asks the revocation store; if it cannot answer, a recent "not revoked" stands for `revocationGraceMs`. */
  async function revoked(c: RevocableCredential): Promise<boolean> {
    const key = c.kind === "session" ? `s:${c.sessionId}` : `d:${c.deviceId}`;
    try {
      const answer = await options.isRevoked(c);
      if (answer) notRevokedAt.delete(key);
      else if (grace > 0) {
        notRevokedAt.delete(key);
        notRevokedAt.set(key, now());
        if (notRevokedAt.size > cacheSize) notRevokedAt.delete(notRevokedAt.keys().next().value!);
      }
      return answer;
    } catch (err) {
      const at = notRevokedAt.get(key);
      if (at !== undefined && now() - at <= grace) return false;
      throw err;
    }
  }

  async function verify(token: string): Promise<Verified> {
    let typ: unknown;
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
      typ = header.typ;
    } catch {
      throw new TokenRejected("the token is not a JWT");
    }
    if (typ !== accessTokenType && typ !== deviceTokenType && typ !== serviceTokenType) throw new TokenRejected("the token is not an access token, device credential or service token");
    let payload: JWTPayload;
    try {
      payload =
        (await verifyEd25519(token, header, options.keys, options.now?.() ?? new Date())) ??
        (
          await jwtVerify(token, options.keys, {
            algorithms: [signingAlgorithm],
            issuer: tokenIssuer,
            audience: tokenAudience,
            typ,
            requiredClaims: ["sub", "exp", "iat"],
            currentDate: options.now?.(),
          })
        ).payload;
    } catch (err) {
      throw new TokenRejected(describeJoseError(err));
    }
    const sub = payload.sub ?? "";
    // requiredClaims guarantees exp; jose accepts a token while now <= exp.
    const until = Math.min((payload.exp ?? 0) * 1000, now() + VERIFIED_TOKEN_TTL_MS);
    if (typ === accessTokenType) {
      const role = roleFromName(payload["role"]);
      const sessionId = payload["sid"];
      if (!role || typeof sessionId !== "string") throw new TokenRejected("the access token lacks a role or session");
      return { principal: { kind: "user", userId: sub, role, sessionId }, revocable: { kind: "session", sessionId }, until };
    }
    if (typ === serviceTokenType) {
      // Short-lived and not revocable one by one: a service whose secret leaked gets a new
      // secret, and its tokens lapse within SERVICE_TOKEN_TTL.
      if (!serviceNamePattern.test(sub)) throw new TokenRejected("the service token names no service");
      return { principal: { kind: "service", service: sub }, until };
    }
    const kioskId = payload["kiosk_id"];
    if (typeof kioskId !== "string") throw new TokenRejected("the device credential lacks a kiosk id");
    return { principal: { kind: "device", deviceId: sub, kioskId, expiresAt: new Date((payload.exp ?? 0) * 1000) }, revocable: { kind: "device", deviceId: sub }, until };
  }
}

/** Node KeyObjects of the key set's Ed25519 keys (jose hands out WebCrypto CryptoKeys). */
const keyObjects = new WeakMap<object, KeyObject>();
const base64url = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * What jwtVerify checks for our tokens, with the EdDSA signature checked by node's synchronous
 * `crypto.verify` instead of WebCrypto's job: ~0.1 ms less of the event loop per token, where
 * link checks thousands a second in a reconnect storm (bench/RESULTS.md, issue 12). The same
 * checks as jose's with our options (alg pinned to EdDSA; iss, aud, typ (checked by the
 * caller), sub, exp and iat present; iat, nbf and exp numbers; not before nbf, not at or after
 * exp; no clock tolerance), failing with jose's errors. Anything unusual (a header parameter
 * besides alg, typ and kid, such as crit or b64; a key that is not an Ed25519 CryptoKey) is
 * left to jose: undefined.
 */
async function verifyEd25519(token: string, header: ProtectedHeaderParameters, keys: JWTVerifyGetKey, currentDate: Date): Promise<JWTPayload | undefined> {
  if (header.alg !== signingAlgorithm || Object.keys(header).some((k) => k !== "alg" && k !== "typ" && k !== "kid")) return undefined;
  const parts = token.split(".");
  if (parts.length !== 3 || !parts.every((p) => base64url.test(p))) return undefined;
  const [protectedPart, payloadPart, signaturePart] = parts as [string, string, string];
  const key: unknown = await keys(header as CompactJWSHeaderParameters, { protected: protectedPart, payload: payloadPart, signature: signaturePart });
  const k = key as Partial<webcrypto.CryptoKey> | null;
  if (typeof k !== "object" || k === null || k.type !== "public" || k.algorithm?.name !== "Ed25519") return undefined;
  let keyObject = keyObjects.get(k);
  if (!keyObject) {
    try {
      keyObject = KeyObject.from(k as webcrypto.CryptoKey);
    } catch {
      return undefined; // not a CryptoKey after all
    }
    keyObjects.set(k, keyObject);
  }
  let valid: boolean;
  try {
    valid = verifySignature(null, Buffer.from(`${protectedPart}.${payloadPart}`), keyObject, Buffer.from(signaturePart, "base64url"));
  } catch {
    valid = false;
  }
  if (!valid) throw new errors.JWSSignatureVerificationFailed();
  let claims: unknown;
  try {
    claims = JSON.parse(utf8.decode(Buffer.from(payloadPart, "base64url")));
  } catch (cause) {
    throw new errors.JWTInvalid("JWT Claims Set must be a top-level JSON object", { cause });
  }
  if (typeof claims !== "object" || claims === null || Array.isArray(claims)) throw new errors.JWTInvalid("JWT Claims Set must be a top-level JSON object");
  const c = claims as JWTPayload;
  const invalid = (claim: string, why: string): never => {
    throw new errors.JWTClaimValidationFailed(why, c, claim, why === "missing" ? "missing" : "check_failed");
  };
  // jose's order: the options' claims first (iss, aud), then the required ones (iat, exp, sub).
  for (const claim of ["iss", "aud", "iat", "exp", "sub"]) if (!Object.hasOwn(c, claim)) invalid(claim, "missing");
  if (c.iss !== tokenIssuer) invalid("iss", "unexpected");
  if (typeof c.aud === "string" ? c.aud !== tokenAudience : !Array.isArray(c.aud) || !c.aud.includes(tokenAudience)) invalid("aud", "unexpected");
  const now = Math.floor(currentDate.getTime() / 1000);
  if (typeof c.iat !== "number") invalid("iat", "must be a number");
  if (c.nbf !== undefined && (typeof c.nbf !== "number" || c.nbf > now)) invalid("nbf", "check failed");
  if (typeof c.exp !== "number") invalid("exp", "must be a number");
  if (c.exp! <= now) throw new errors.JWTExpired('"exp" claim timestamp check failed', c, "exp", "check_failed");
  return c;
}

function describeJoseError(err: unknown): string {
  // The key set could not be fetched: not the caller's fault (Unavailable, not Unauthenticated).
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) throw err;
  if (err instanceof errors.JOSEError && err.code === "ERR_JOSE_GENERIC" && /JWKS|fetch/i.test(err.message)) throw err;
  if (err instanceof errors.JWTExpired) return "the token has expired";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "the token's signature is invalid";
  if (err instanceof errors.JWKSNoMatchingKey) return "the token was signed by an unknown key";
  if (err instanceof errors.JWTClaimValidationFailed) return `the token's ${err.claim} claim is invalid`;
  if (err instanceof errors.JOSEError) return "the token is invalid";
  throw err;
}

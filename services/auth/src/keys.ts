// The keys that sign access tokens and device credentials (Ed25519).
// Lifecycle: next (published, not signing) → active (signing) → retired (published
// until the last token it signed has expired). Rotation promotes the next key, which
// every verifier's cached JWKS already holds, so no token is ever signed by a key a
// verifier has not seen. Private halves are encrypted at rest with AES-256-GCM.
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from "node:crypto";
import {
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose";
import { inTransaction, signingAlgorithm, tokenAudience, tokenIssuer, type Pool, type PoolClient } from "@adminkiosk/runtime";

export interface SigningKeyRow {
  kid: string;
  algorithm: string;
  public_jwk: JWK;
  private_jwk_enc: Buffer;
  created_at: Date;
  activated_at: Date | null;
  retired_at: Date | null;
  unpublish_at: Date | null;
}

export interface KeyRing {
  /** Signs a JWT with the active key. */
  sign(typ: string, claims: JWTPayload, subject: string, ttlMs: number): Promise<{ token: string; expiresAt: Date }>;
  /** The JWKS document: every key still published. */
  jwks(): Promise<{ keys: JWK[] }>;
  /** A jose key resolver over the published keys, reloaded when a token names an unknown kid. */
  resolver: JWTVerifyGetKey;
  /** Promotes the next key, retires the active one and publishes a new next key. */
  rotate(): Promise<SigningKeyRow>;
  /** Makes sure there is an active and a next key, and rotates when the active key is older than maxAgeMs. */
  ensureFresh(maxAgeMs: number): Promise<void>;
  list(): Promise<SigningKeyRow[]>;
}

export function createKeyRing(pool: Pool, encryptionKey: Buffer, longestTokenTtlMs: number): KeyRing {
  let active: { kid: string; key: CryptoKey; activatedAt: Date } | undefined;
  let published: JWTVerifyGetKey | undefined;
  let publishedKids = new Set<string>();
  let loadedAt = 0;
  let jwksCache: { at: number; keys: JWK[] } | undefined;

  const load = async () => {
    loadedAt = Date.now();
    const { rows } = await pool.query<SigningKeyRow>(
      "SELECT * FROM signing_keys WHERE unpublish_at IS NULL OR unpublish_at > now() ORDER BY created_at",
    );
    const current = rows.find((r) => r.activated_at !== null && r.retired_at === null);
    // Decrypt the private key only when the active key changed, not on every reload.
    active =
      current === undefined ? undefined
      : active?.kid === current.kid ? active
      : { kid: current.kid, key: await importPrivate(current, encryptionKey), activatedAt: current.activated_at! };
    publishedKids = new Set(rows.map((r) => r.kid));
    published = createLocalJWKSet({ keys: rows.map((r) => r.public_jwk) });
    return rows;
  };

  const insertKey = async (tx: PoolClient, activate: boolean) => {
    const { publicKey, privateKey } = await generateKeyPair(signingAlgorithm, { crv: "Ed25519", extractable: true });
    const kid = randomUUID();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: signingAlgorithm, use: "sig" };
    const sealed = seal(JSON.stringify(await exportJWK(privateKey)), encryptionKey);
    const { rows } = await tx.query<SigningKeyRow>(
      `INSERT INTO signing_keys (kid, algorithm, public_jwk, private_jwk_enc, activated_at)
       VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END) RETURNING *`,
      [kid, signingAlgorithm, publicJwk, sealed, activate],
    );
    return rows[0]!;
  };

  /** Rotates; with `ifOlderThanMs`, only when the active key is that old (or missing), decided under the lock. */
  const rotate = async (ifOlderThanMs?: number): Promise<SigningKeyRow | undefined> => {
    const promoted = await inTransaction(pool, async (tx) => {
      // Serialise rotations across replicas: two replicas starting together rotate once.
      await tx.query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE");
      if (ifOlderThanMs !== undefined) {
        const { rows } = await tx.query<{ fresh: boolean }>(
          `SELECT (SELECT count(*) FROM signing_keys WHERE activated_at IS NULL) = 1
              AND EXISTS (SELECT 1 FROM signing_keys WHERE activated_at IS NOT NULL AND retired_at IS NULL
                          AND activated_at > now() - $1 * interval '1 millisecond') AS fresh`,
          [ifOlderThanMs],
        );
        if (rows[0]?.fresh) return undefined;
      }
      // The retiring key may have signed a token a moment ago; it stays published as long as that token lives.
      await tx.query(
        "UPDATE signing_keys SET retired_at = now(), unpublish_at = now() + $1 * interval '1 millisecond' WHERE activated_at IS NOT NULL AND retired_at IS NULL",
        [longestTokenTtlMs],
      );
      const { rows } = await tx.query<SigningKeyRow>("UPDATE signing_keys SET activated_at = now() WHERE activated_at IS NULL RETURNING *");
      const next = rows[0] ?? (await insertKey(tx, true));
      await insertKey(tx, false);
      return next;
    });
    jwksCache = undefined;
    await load();
    return promoted;
  };

  // Another replica may have rotated: an unknown kid reloads the keys, at most once a second.
  const resolver: JWTVerifyGetKey = async (header, token) => {
    const unknownKid = header.kid !== undefined && !publishedKids.has(header.kid);
    if (!published || (unknownKid && Date.now() - loadedAt > 1_000)) await load();
    if (!published) throw new Error("no signing keys");
    return published(header, token);
  };

  return {
    resolver,
    rotate: async () => (await rotate())!,
    async sign(typ, claims, subject, ttlMs) {
      // Reload now and then so a rotation by another replica is followed within a minute.
      if (!active || Date.now() - loadedAt > 60_000) await load();
      if (!active) throw new Error("no active signing key");
      const issuedAt = Date.now();
      const expiresAt = new Date(issuedAt + ttlMs);
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: signingAlgorithm, kid: active.kid, typ })
        .setIssuer(tokenIssuer)
        .setAudience(tokenAudience)
        .setSubject(subject)
        .setIssuedAt(Math.floor(issuedAt / 1000))
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .setJti(randomUUID())
        .sign(active.key);
      return { token, expiresAt };
    },
    async jwks() {
      // Served to every verifier; a second-old view is fresh enough (keys are published ahead of use).
      if (!jwksCache || Date.now() - jwksCache.at > 1_000) jwksCache = { at: Date.now(), keys: (await load()).map((r) => r.public_jwk) };
      return { keys: jwksCache.keys };
    },
    async ensureFresh(maxAgeMs) {
      await rotate(maxAgeMs);
      await load();
    },
    async list() {
      const { rows } = await pool.query<SigningKeyRow>("SELECT * FROM signing_keys ORDER BY created_at DESC");
      return rows;
    },
  };
}

async function importPrivate(row: SigningKeyRow, encryptionKey: Buffer): Promise<CryptoKey> {
  const jwk: JWK = JSON.parse(unseal(row.private_jwk_enc, encryptionKey));
  const key = await importJWK(jwk, signingAlgorithm);
  if (key instanceof Uint8Array) throw new Error(`signing key ${row.kid} is not an asymmetric key`);
  return key;
}

/** AES-256-GCM under the key encryption key (also the SSO provider tokens auth keeps). */
export function seal(plaintext: string, key: Buffer): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

export function unseal(sealed: Buffer, key: Buffer): string {
  const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, 12));
  decipher.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString("utf8");
}

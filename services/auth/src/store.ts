// auth's own SQL (schema "auth"). Secrets are stored only as hashes.
import { createHash } from "node:crypto";
import type { Pool, PoolClient } from "@adminkiosk/runtime";

type Db = Pool | PoolClient;

export const sha256 = (value: string) => createHash("sha256").update(value).digest();

export interface UserRow {
  user_id: string;
  email: string;
  display_name: string;
  role: string;
  password_hash: string;
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
  /** Set for a person created by single sign-on (both or neither); they have no local password. */
  sso_provider: string | null;
  sso_subject: string | null;
}

export interface RefreshTokenRow {
  token_id: string;
  family_id: string;
  user_id: string;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
  /** The login that started the session (the family); its absolute lifetime counts from here. */
  session_started_at: Date;
  /** The token issued when this one was spent (the newest, after retries of a lost answer). */
  replaced_by: string | null;
  /** Set when a retry replaced this token before it was ever used. */
  superseded_at: Date | null;
}

export interface DeviceRow {
  device_id: string;
  kiosk_id: string;
  enrolled_at: Date;
  credential_expires: Date;
  revoked_at: Date | null;
}

export const users = {
  async byEmail(db: Db, email: string) {
    const { rows } = await db.query<UserRow>("SELECT * FROM users WHERE email = $1", [email]);
    return rows[0];
  },
  async byId(db: Db, userId: string) {
    const { rows } = await db.query<UserRow>("SELECT * FROM users WHERE user_id = $1", [userId]);
    return rows[0];
  },
  async insert(db: Db, u: { email: string; displayName: string; role: string; passwordHash: string }) {
    const { rows } = await db.query<UserRow>(
      "INSERT INTO users (email, display_name, role, password_hash) VALUES ($1, $2, $3, $4) RETURNING *",
      [u.email, u.displayName, u.role, u.passwordHash],
    );
    return rows[0]!;
  },
  async bySsoIdentity(db: Db, provider: string, subject: string) {
    const { rows } = await db.query<UserRow>("SELECT * FROM users WHERE sso_provider = $1 AND sso_subject = $2", [provider, subject]);
    return rows[0];
  },
  /** A person created at their first single sign-on: no local password. */
  async insertFromSso(db: Db, u: { email: string; displayName: string; role: string; provider: string; subject: string }) {
    const { rows } = await db.query<UserRow>(
      "INSERT INTO users (email, display_name, role, password_hash, sso_provider, sso_subject) VALUES ($1, $2, $3, '', $4, $5) RETURNING *",
      [u.email, u.displayName, u.role, u.provider, u.subject],
    );
    return rows[0]!;
  },
  async update(db: Db, userId: string, change: { displayName?: string; role?: string; disabled?: boolean; passwordHash?: string; email?: string }) {
    const { rows } = await db.query<UserRow>(
      `UPDATE users SET display_name = COALESCE($2, display_name), role = COALESCE($3, role),
         disabled = COALESCE($4, disabled), password_hash = COALESCE($5, password_hash), email = COALESCE($6, email), updated_at = now()
       WHERE user_id = $1 RETURNING *`,
      [userId, change.displayName ?? null, change.role ?? null, change.disabled ?? null, change.passwordHash ?? null, change.email ?? null],
    );
    return rows[0];
  },
  async list(db: Db, q: { limit: number; after?: { email: string }; query?: string; role?: string }) {
    const { rows } = await db.query<UserRow>(
      `SELECT * FROM users
       WHERE ($1::text IS NULL OR email > $1)
         AND ($2::text IS NULL OR email ILIKE '%' || $2 || '%' OR display_name ILIKE '%' || $2 || '%')
         AND ($3::text IS NULL OR role = $3)
       ORDER BY email LIMIT $4`,
      [q.after?.email ?? null, q.query ? escapeLike(q.query) : null, q.role ?? null, q.limit],
    );
    return rows;
  },
  async count(db: Db) {
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM users");
    return Number(rows[0]!.n);
  },
};

export const refreshTokens = {
  async insert(db: Db, t: { familyId: string; userId: string; token: string; expiresAt: Date; sessionStartedAt: Date }) {
    const { rows } = await db.query<{ token_id: string }>(
      "INSERT INTO refresh_tokens (family_id, user_id, token_hash, expires_at, session_started_at) VALUES ($1, $2, $3, $4, $5) RETURNING token_id",
      [t.familyId, t.userId, sha256(t.token), t.expiresAt, t.sessionStartedAt],
    );
    return rows[0]!.token_id;
  },
  /** Locks the row: two refreshes racing on one token are decided one after the other. */
  async lockByToken(db: PoolClient, token: string) {
    const { rows } = await db.query<RefreshTokenRow>("SELECT * FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE", [sha256(token)]);
    return rows[0];
  },
  async lockById(db: PoolClient, tokenId: string) {
    const { rows } = await db.query<RefreshTokenRow>("SELECT * FROM refresh_tokens WHERE token_id = $1 FOR UPDATE", [tokenId]);
    return rows[0];
  },
  /** Records that the token was spent (first use; a retry keeps the first use's time) and what replaced it. */
  async markUsed(db: Db, tokenId: string, replacedBy: string) {
    await db.query("UPDATE refresh_tokens SET used_at = COALESCE(used_at, now()), replaced_by = $2 WHERE token_id = $1", [tokenId, replacedBy]);
  },
  /** A token replaced before it was used: it stops working, and presenting it later counts as reuse. */
  async supersede(db: Db, tokenId: string) {
    await db.query("UPDATE refresh_tokens SET superseded_at = now(), revoked_at = now() WHERE token_id = $1", [tokenId]);
  },
  async revokeFamily(db: Db, familyId: string) {
    const { rowCount } = await db.query("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL", [familyId]);
    return rowCount ?? 0;
  },
  /** Revokes every refresh token of the user; returns the sessions (families) that were still open. */
  async revokeAllForUser(db: Db, userId: string) {
    const { rows } = await db.query<{ family_id: string }>(
      "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL RETURNING family_id",
      [userId],
    );
    return [...new Set(rows.map((r) => r.family_id))];
  },
};

export interface SsoLoginRow {
  provider: string;
  nonce: string;
  code_verifier: string;
  binding_hash: Buffer | null;
  expires_at: Date;
}

export interface SsoSessionRow {
  family_id: string;
  user_id: string;
  provider: string;
  subject: string;
  provider_sid: string | null;
  id_token_enc: Buffer;
  refresh_token_enc: Buffer | null;
  access_token_enc: Buffer | null;
  checked_at: Date;
}

/** Sign-ins begun at a provider: state, nonce and PKCE verifier, each usable once. */
export const ssoLogins = {
  async insert(db: Db, l: { state: string; provider: string; nonce: string; codeVerifier: string; binding: string | null; expiresAt: Date }) {
    // Expired attempts go as new ones come, so the table holds only the last few minutes' worth.
    await db.query("DELETE FROM sso_logins WHERE expires_at < now() - interval '1 minute'");
    await db.query("INSERT INTO sso_logins (state_hash, provider, nonce, code_verifier, binding_hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6)", [
      sha256(l.state),
      l.provider,
      l.nonce,
      l.codeVerifier,
      l.binding === null ? null : sha256(l.binding),
      l.expiresAt,
    ]);
  },
  /** Spends the attempt named by `state`: answers it once, then never again. */
  async take(db: Db, state: string) {
    const { rows } = await db.query<SsoLoginRow>("DELETE FROM sso_logins WHERE state_hash = $1 RETURNING *", [sha256(state)]);
    return rows[0];
  },
};

export const ssoSessions = {
  async insert(db: Db, s: { familyId: string; userId: string; provider: string; subject: string; providerSid: string | null; idTokenEnc: Buffer; refreshTokenEnc: Buffer | null; accessTokenEnc: Buffer | null }) {
    await db.query(
      `INSERT INTO sso_sessions (family_id, user_id, provider, subject, provider_sid, id_token_enc, refresh_token_enc, access_token_enc)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [s.familyId, s.userId, s.provider, s.subject, s.providerSid, s.idTokenEnc, s.refreshTokenEnc, s.accessTokenEnc],
    );
  },
  async byFamily(db: Db, familyId: string) {
    const { rows } = await db.query<SsoSessionRow>("SELECT * FROM sso_sessions WHERE family_id = $1", [familyId]);
    return rows[0];
  },
  /** After a check at the provider: its (possibly rotated) tokens and when it was asked. */
  async checked(db: Db, familyId: string, s: { idTokenEnc: Buffer; refreshTokenEnc: Buffer | null; accessTokenEnc: Buffer | null }) {
    await db.query("UPDATE sso_sessions SET id_token_enc = $2, refresh_token_enc = $3, access_token_enc = $4, checked_at = now() WHERE family_id = $1", [
      familyId,
      s.idTokenEnc,
      s.refreshTokenEnc,
      s.accessTokenEnc,
    ]);
  },
  async moveToFamily(db: Db, from: string, to: string) {
    await db.query("UPDATE sso_sessions SET family_id = $2 WHERE family_id = $1", [from, to]);
  },
  /** The sessions a provider's logout token names: by its session id, or every one of the subject. */
  async familiesFor(db: Db, provider: string, q: { sid?: string; subject?: string }) {
    const { rows } = await db.query<{ family_id: string; user_id: string }>(
      `SELECT family_id, user_id FROM sso_sessions WHERE provider = $1
         AND ($2::text IS NULL OR provider_sid = $2) AND ($3::text IS NULL OR subject = $3)`,
      [provider, q.sid ?? null, q.subject ?? null],
    );
    return rows;
  },
};

export const enrollmentCodes = {
  async insert(db: Db, c: { code: string; kioskId: string; createdBy: string | null; expiresAt: Date }) {
    await db.query("INSERT INTO enrollment_codes (code_hash, kiosk_id, created_by, expires_at) VALUES ($1, $2, $3, $4)", [
      sha256(c.code),
      c.kioskId,
      c.createdBy,
      c.expiresAt,
    ]);
  },
  /** Spends a code: succeeds once, only before it expires, and only if it was not voided. */
  async redeem(db: Db, code: string) {
    const { rows } = await db.query<{ kiosk_id: string; expired: boolean; used: boolean; voided: boolean }>(
      `WITH found AS (SELECT * FROM enrollment_codes WHERE code_hash = $1 FOR UPDATE),
            spent AS (UPDATE enrollment_codes e SET used_at = now() FROM found
                      WHERE e.code_hash = found.code_hash AND found.used_at IS NULL AND found.voided_at IS NULL AND found.expires_at > now()
                      RETURNING e.kiosk_id)
       SELECT found.kiosk_id, found.expires_at <= now() AS expired, found.used_at IS NOT NULL AS used,
              found.voided_at IS NOT NULL AS voided FROM found`,
      [sha256(code)],
    );
    return rows[0];
  },
  /** Voids a kiosk's codes that are still unused and unexpired (its revocation); returns how many. */
  async voidForKiosk(db: Db, kioskId: string) {
    const { rowCount } = await db.query(
      "UPDATE enrollment_codes SET voided_at = now() WHERE kiosk_id = $1 AND used_at IS NULL AND voided_at IS NULL AND expires_at > now()",
      [kioskId],
    );
    return rowCount ?? 0;
  },
};

export const devices = {
  async insert(db: Db, d: { kioskId: string; credentialExpires: Date; firmwareVersion: string; hardwareModel: string }) {
    const { rows } = await db.query<DeviceRow>(
      "INSERT INTO devices (kiosk_id, credential_expires, firmware_version, hardware_model) VALUES ($1, $2, $3, $4) RETURNING *",
      [d.kioskId, d.credentialExpires, d.firmwareVersion, d.hardwareModel],
    );
    return rows[0]!;
  },
  async byId(db: Db, deviceId: string) {
    const { rows } = await db.query<DeviceRow>("SELECT * FROM devices WHERE device_id = $1", [deviceId]);
    return rows[0];
  },
  async extend(db: Db, deviceId: string, credentialExpires: Date) {
    const { rows } = await db.query<DeviceRow>(
      "UPDATE devices SET credential_expires = $2 WHERE device_id = $1 AND revoked_at IS NULL RETURNING *",
      [deviceId, credentialExpires],
    );
    return rows[0];
  },
  /** Revokes the kiosk's active devices, all of them or all but `except` (the one just enrolled). */
  async revokeKiosk(db: Db, kioskId: string, except?: string) {
    const { rows } = await db.query<DeviceRow>(
      "UPDATE devices SET revoked_at = now() WHERE kiosk_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR device_id <> $2) RETURNING *",
      [kioskId, except ?? null],
    );
    return rows;
  },
  async revokedIds(db: Db) {
    const { rows } = await db.query<{ device_id: string }>(
      "SELECT device_id FROM devices WHERE revoked_at IS NOT NULL AND credential_expires > now()",
    );
    return rows.map((r) => r.device_id);
  },
  async list(db: Db, q: { limit: number; after?: { enrolledAt: string; deviceId: string }; kioskId?: string; includeRevoked: boolean }) {
    const { rows } = await db.query<DeviceRow>(
      `SELECT * FROM devices
       WHERE ($1::timestamptz IS NULL OR (enrolled_at, device_id) < ($1, $2::uuid))
         AND ($3::text IS NULL OR kiosk_id = $3)
         AND ($4 OR revoked_at IS NULL)
       ORDER BY enrolled_at DESC, device_id DESC LIMIT $5`,
      [q.after?.enrolledAt ?? null, q.after?.deviceId ?? null, q.kioskId ?? null, q.includeRevoked, q.limit],
    );
    return rows;
  },
};

function escapeLike(s: string) {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

// People's sessions: login, refresh-token rotation with reuse detection, logout.
// A session is a refresh-token family. Refreshing spends the presented token and
// returns a new pair; presenting a spent token again means it was stolen, and the
// whole family is revoked (RFC 9700 §4.14.2) — with one exception: a refresh whose
// answer was lost (the network dropped while it was in flight) is retried with the
// token it spent. Within `reuseGraceMs` of the first use, and only while the token that
// answer carried has never been used, the retry is answered with a new pair and that
// unused token is superseded; presenting a superseded token later is reuse like any
// other, so a thief replaying within the grace loses the session at the owner's next
// refresh. Clients still refresh one at a time.
// A session also has an absolute end, SESSION_MAX_LIFETIME after its login: no refresh
// token or access token of it lasts beyond that, and refreshing past it is refused.
import { randomBytes, randomUUID } from "node:crypto";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { accessTokenType, endedSessionKey, inTransaction, requestInfo, roleFromName, type Pool, type PoolClient, type Redis } from "@adminkiosk/runtime";
import { recordAudit } from "./audit.js";
import type { KeyRing } from "./keys.js";
import { decoyHash, verifyPassword } from "./passwords.js";
import type { LoginLimiter } from "./rate-limit.js";
import { refreshTokens, users, type RefreshTokenRow, type UserRow } from "./store.js";

export interface SessionSettings {
  accessTtlMs: number;
  refreshTtlMs: number;
  /** From the login; refreshing never extends a session past it. */
  sessionMaxLifetimeMs: number;
  scryptLogN: number;
  /** How long after a refresh token is spent a retry of that refresh is answered again (0: never). */
  reuseGraceMs: number;
}

/**
 * Asked at every refresh of a session whether it may go on (single sign-on asks the provider
 * again, sso.ts): answers the user as they are now (their role may have changed), or why not.
 */
export interface SessionCheck {
  check(tx: PoolClient, ctx: HandlerContext, familyId: string, user: UserRow): Promise<{ user: UserRow } | { refused: string }>;
  /** The session continues under a new id (its role changed, so every token of the old one ends). */
  moved(tx: PoolClient, from: string, to: string): Promise<void>;
  /** For a person who signs in elsewhere: the name of where, so a password login can say so. */
  signsInWith(user: UserRow): string | undefined;
}

export interface IssuedTokens {
  accessToken: string;
  accessExpiresAt: Date;
  refreshToken: string;
  refreshExpiresAt: Date;
}

const invalidLogin = () => new ConnectError("email or password is incorrect", Code.Unauthenticated);
const invalidRefresh = (why: string) => new ConnectError(`refresh token ${why}; sign in again`, Code.Unauthenticated);
const sessionOver = () => new ConnectError("the session has reached its maximum lifetime; sign in again", Code.Unauthenticated);

export function createSessions(pool: Pool, redis: Redis, keys: KeyRing, limiter: LoginLimiter, settings: SessionSettings, sessionCheck?: SessionCheck) {
  const decoy = decoyHash(settings.scryptLogN);

  /**
   * Marks sessions ended for every service's token check, for as long as an access token
   * of theirs can live. Called inside the transaction that revokes their refresh tokens:
   * if Redis is down the change rolls back and the caller gets Unavailable.
   */
  async function endSessions(familyIds: string[]) {
    if (familyIds.length === 0) return;
    const pipeline = redis.pipeline();
    for (const id of familyIds) pipeline.set(endedSessionKey(id), "1", "PX", settings.accessTtlMs + 5_000);
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  /** Ends every session of a user (disabled, password or role changed). */
  async function endAllForUser(tx: PoolClient, userId: string) {
    const families = await refreshTokens.revokeAllForUser(tx, userId);
    await endSessions(families);
    return families.length;
  }

  const sessionEnd = (startedAt: Date) => startedAt.getTime() + settings.sessionMaxLifetimeMs;

  async function issue(db: Pool | PoolClient, user: UserRow, familyId: string, sessionStartedAt: Date): Promise<IssuedTokens> {
    return (await issueWithId(db, user, familyId, sessionStartedAt)).tokens;
  }

  async function issueWithId(db: Pool | PoolClient, user: UserRow, familyId: string, sessionStartedAt: Date) {
    const role = roleFromName(user.role);
    if (!role) throw new Error(`user ${user.user_id} has an unknown role ${user.role}`);
    // Neither token outlives the session (an access token lives at least a second).
    const now = Date.now();
    const end = sessionEnd(sessionStartedAt);
    const access = await keys.sign(accessTokenType, { role: user.role, sid: familyId }, user.user_id, Math.max(1_000, Math.min(settings.accessTtlMs, end - now)));
    const refreshToken = randomBytes(32).toString("base64url");
    const refreshExpiresAt = new Date(Math.min(now + settings.refreshTtlMs, end));
    const tokenId = await refreshTokens.insert(db, { familyId, userId: user.user_id, token: refreshToken, expiresAt: refreshExpiresAt, sessionStartedAt });
    const tokens: IssuedTokens = { accessToken: access.token, accessExpiresAt: access.expiresAt, refreshToken, refreshExpiresAt };
    return { tokens, tokenId };
  }

  /**
   * For a spent token presented again: the unused token its last refresh issued, when this is a
   * retry of that refresh within the grace; undefined when it is reuse.
   */
  async function lostAnswer(tx: PoolClient, row: RefreshTokenRow) {
    if (!row.used_at || !row.replaced_by || Date.now() - row.used_at.getTime() > settings.reuseGraceMs) return undefined;
    const successor = await refreshTokens.lockById(tx, row.replaced_by);
    return successor && !successor.used_at && !successor.revoked_at ? successor : undefined;
  }

  /** A spent or superseded token presented again: it was stolen, so the session ends for everyone holding it. */
  async function reuseDetected(tx: PoolClient, ctx: HandlerContext, row: RefreshTokenRow) {
    const revoked = await refreshTokens.revokeFamily(tx, row.family_id);
    await endSessions([row.family_id]);
    await recordAudit(tx, ctx, "token.reuse_detected", row.user_id, { session: row.family_id, revokedTokens: revoked }, "");
    return invalidRefresh("was already used: the session has been ended");
  }

  return {
    async login(ctx: HandlerContext, email: string, password: string) {
      const peer = requestInfo(ctx).peer;
      await limiter.admit(peer, email, ctx.signal).catch(async (err: unknown) => {
        if (err instanceof ConnectError && err.code === Code.ResourceExhausted)
          await recordAudit(pool, ctx, "login.rate_limited", email, { reason: err.rawMessage }, "");
        throw err;
      });
      const user = await users.byEmail(pool, email);
      // Hash even for unknown accounts so the answer takes as long either way.
      const ok = await verifyPassword(password, user?.password_hash || (await decoy));
      const elsewhere = user && sessionCheck?.signsInWith(user);
      if (user && elsewhere) {
        await recordAudit(pool, ctx, "login.failed", user.user_id, { reason: "single sign-on account", provider: user.sso_provider }, "");
        throw new ConnectError(`${email} signs in with ${elsewhere} (single sign-on) and has no password here`, Code.FailedPrecondition);
      }
      if (!user || !ok || user.disabled) {
        await limiter.recordFailure(peer, email);
        await recordAudit(pool, ctx, "login.failed", user?.user_id ?? email, { reason: !user ? "unknown account" : !ok ? "wrong password" : "disabled" }, "");
        throw invalidLogin();
      }
      await limiter.recordSuccess(peer, email);
      const tokens = await inTransaction(pool, async (tx) => {
        const issued = await issue(tx, user, randomUUID(), new Date());
        await recordAudit(tx, ctx, "login.succeeded", user.user_id, {}, user.user_id);
        return issued;
      });
      return { user, tokens };
    },

    async refresh(ctx: HandlerContext, token: string) {
      const outcome = await inTransaction(pool, async (tx) => {
        const row = await refreshTokens.lockByToken(tx, token);
        if (!row) return { error: invalidRefresh("is not valid") };
        if (row.superseded_at) return { error: await reuseDetected(tx, ctx, row) };
        if (row.revoked_at) return { error: invalidRefresh("was revoked") };
        const retried = row.used_at ? await lostAnswer(tx, row) : undefined;
        if (row.used_at && !retried) return { error: await reuseDetected(tx, ctx, row) };
        if (sessionEnd(row.session_started_at) <= Date.now()) return { error: sessionOver() };
        if (!retried && row.expires_at <= new Date()) return { error: invalidRefresh("has expired") };
        const before = await users.byId(tx, row.user_id);
        if (!before || before.disabled) return { error: invalidRefresh("belongs to a disabled account") };
        // A retry continues the session where its lost answer left it (a role change may have moved it).
        let familyId = retried?.family_id ?? row.family_id;
        const verdict = sessionCheck ? await sessionCheck.check(tx, ctx, familyId, before) : { user: before };
        if ("refused" in verdict) {
          await refreshTokens.revokeFamily(tx, familyId);
          await endSessions([familyId]);
          return { error: new ConnectError(verdict.refused, Code.Unauthenticated) };
        }
        if (verdict.user.role !== before.role) {
          // Tokens carry the role: every token of the person's sessions ends, this one goes on
          // under a new id with the new role.
          await endAllForUser(tx, before.user_id);
          const moved = randomUUID();
          await sessionCheck?.moved(tx, familyId, moved);
          familyId = moved;
        }
        if (retried) await refreshTokens.supersede(tx, retried.token_id);
        const { tokens, tokenId } = await issueWithId(tx, verdict.user, familyId, row.session_started_at);
        await refreshTokens.markUsed(tx, row.token_id, tokenId);
        return { tokens };
      });
      // The family revocation above must commit even though the caller gets an error.
      if (outcome.error) throw outcome.error;
      return outcome.tokens;
    },

    /** Starts a session for a person who proved who they are elsewhere (single sign-on), in the caller's transaction. */
    async startSession(tx: PoolClient, user: UserRow) {
      const familyId = randomUUID();
      return { familyId, tokens: await issue(tx, user, familyId, new Date()) };
    },

    /** Ends these sessions (a provider's back-channel logout). */
    async endFamilies(tx: PoolClient, familyIds: string[]) {
      for (const id of familyIds) await refreshTokens.revokeFamily(tx, id);
      await endSessions(familyIds);
    },

    endAllForUser,

    /** Ends the token's session; answers its id (undefined for an unknown token). */
    async logout(ctx: HandlerContext, token: string): Promise<string | undefined> {
      return inTransaction(pool, async (tx) => {
        const row = await refreshTokens.lockByToken(tx, token);
        if (!row) return undefined;
        await refreshTokens.revokeFamily(tx, row.family_id);
        await endSessions([row.family_id]);
        await recordAudit(tx, ctx, "logout", row.user_id, { session: row.family_id }, row.user_id);
        return row.family_id;
      });
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;

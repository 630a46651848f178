// Single sign-on with OpenID Connect (docs/sso.md). Authorization Code with PKCE at one of the
// configured providers; the state, nonce and PKCE verifier stay here (sso_logins, usable once,
// for SSO_LOGIN_TTL). The ID token is checked by openid-client: signature against the
// provider's JWKS (non-repudiation checks on), issuer, audience, nonce, expiry and the one
// algorithm the provider is pinned to. The person's claims (ID token, then userinfo) give the
// role by the provider's rules; then auth starts its own session exactly as a password login
// does, so no other service knows the difference. At each refresh (SSO_RECHECK_INTERVAL) the
// provider is asked again with its refresh token: a person disabled there, or out of every
// group that gives a role, loses the session; a changed group changes the role.
import { decodeJwt, createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from "jose";
import * as oidc from "openid-client";
import { timingSafeEqual } from "node:crypto";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { inTransaction, invalidArgument, type Logger, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { recordAudit } from "./audit.js";
import { seal, unseal } from "./keys.js";
import type { SessionCheck, Sessions } from "./sessions.js";
import type { SsoProviderConfig } from "./sso-config.js";
import { claimsRead, decideRole, type RoleDecision } from "./sso-roles.js";
import { sha256, ssoLogins, ssoSessions, users, type SsoLoginRow, type UserRow } from "./store.js";

export interface SsoSettings {
  providers: SsoProviderConfig[];
  redirectUri: string | undefined;
  postLogoutRedirectUri: string | undefined;
  loginTtlMs: number;
  recheckIntervalMs: number;
  passwordDisabledDomains: string[];
  /** AUTH_KEY_ENCRYPTION_KEY: seals the provider's tokens at rest. */
  encryptionKey: Buffer;
}

type Claims = Record<string, unknown>;

const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout";

/** A fetch that failed to reach the provider (as opposed to an answer we refuse). */
const unreachable = (err: unknown) => err instanceof TypeError || (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError"));

/** What was wrong with a provider's answer, in words for the audit log and the caller. */
function describe(err: unknown): string {
  if (err instanceof oidc.ResponseBodyError) return `${err.error}${err.error_description ? `: ${err.error_description}` : ""}`;
  if (err instanceof oidc.AuthorizationResponseError) return `${err.error}${err.error_description ? `: ${err.error_description}` : ""}`;
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? err.cause.message : "";
    return cause && cause !== err.message ? `${err.message} (${cause})` : err.message;
  }
  return String(err);
}

export function createSso(pool: Pool, log: Logger, settings: SsoSettings) {
  const providers = new Map(settings.providers.map((p) => [p.id, p]));
  const configurations = new Map<string, Promise<oidc.Configuration>>();
  const logoutKeys = new Map<string, JWTVerifyGetKey>();
  const sealToken = (v: string) => seal(v, settings.encryptionKey);
  const openToken = (v: Buffer) => unseal(v, settings.encryptionKey);
  let sessions: Sessions | undefined;

  /** Discovery once per provider (again after a failure), with the algorithm pinned. */
  async function configuration(p: SsoProviderConfig): Promise<oidc.Configuration> {
    let pending = configurations.get(p.id);
    if (!pending) {
      const insecure = new URL(p.issuer).protocol === "http:";
      pending = oidc
        .discovery(new URL(p.issuer), p.clientId, { id_token_signed_response_alg: p.idTokenAlg }, oidc.ClientSecretBasic(p.clientSecret), {
          execute: insecure ? [oidc.allowInsecureRequests] : [],
          timeout: 10,
        })
        .then((config) => {
          oidc.enableNonRepudiationChecks(config);
          return config;
        });
      configurations.set(p.id, pending);
      pending.catch((err: unknown) => {
        configurations.delete(p.id);
        log.warn({ err, provider: p.id }, "sso discovery failed");
      });
    }
    return pending.catch((err: unknown) => {
      throw new ConnectError(`${p.displayName} cannot be reached for sign-in (${describe(err)}); try again shortly`, Code.Unavailable);
    });
  }

  const providerOf = (id: string) => {
    const p = providers.get(id);
    if (!p) throw invalidArgument("provider_id", `is not a configured single sign-on provider (${[...providers.keys()].join(", ") || "none configured"})`);
    return p;
  };

  /** ID token claims, then userinfo's over them (fresher, and where some providers keep groups). */
  async function personClaims(config: oidc.Configuration, accessToken: string | undefined, idClaims: Claims): Promise<Claims> {
    if (!accessToken || !config.serverMetadata().userinfo_endpoint) return idClaims;
    const info = await oidc.fetchUserInfo(config, accessToken, String(idClaims["sub"]));
    return { ...idClaims, ...info };
  }

  const refused = async (ctx: HandlerContext, provider: string, reason: string, message: string, code = Code.Unauthenticated) => {
    await recordAudit(pool, ctx, "sso.login_failed", provider, { reason });
    return new ConnectError(message, code);
  };

  const decisionDetails = (p: SsoProviderConfig, decision: RoleDecision, claims: Claims) => ({
    provider: p.id,
    role: decision.role ?? null,
    rule: decision.rule,
    claims: claimsRead(p.roles, claims),
  });

  const check: SessionCheck = {
    signsInWith(user: UserRow) {
      return user.sso_provider ? (providers.get(user.sso_provider)?.displayName ?? user.sso_provider) : undefined;
    },
    moved: (tx, from, to) => ssoSessions.moveToFamily(tx, from, to),
    async check(tx: PoolClient, ctx: HandlerContext, familyId: string, user: UserRow) {
      const session = await ssoSessions.byFamily(tx, familyId);
      if (!session || Date.now() - session.checked_at.getTime() < settings.recheckIntervalMs) return { user };
      const p = providers.get(session.provider);
      if (!p) return { refused: `single sign-on through ${session.provider} is no longer configured; sign in again` };
      const config = await configuration(p);
      let idToken = openToken(session.id_token_enc);
      let refreshToken = session.refresh_token_enc ? openToken(session.refresh_token_enc) : undefined;
      let accessToken = session.access_token_enc ? openToken(session.access_token_enc) : undefined;
      let claims: Claims;
      try {
        let idClaims: Claims = decodeJwt(idToken);
        if (refreshToken) {
          const answer = await oidc.refreshTokenGrant(config, refreshToken);
          refreshToken = answer.refresh_token ?? refreshToken;
          accessToken = answer.access_token;
          if (answer.id_token) idToken = answer.id_token;
          idClaims = answer.claims() ?? idClaims;
        } else if (!accessToken) {
          return { refused: `${p.displayName} gave no way to check this session again; sign in again` };
        }
        claims = await personClaims(config, accessToken, idClaims);
      } catch (err) {
        if (unreachable(err)) throw new ConnectError(`${p.displayName} cannot be reached to check the session; try again shortly`, Code.Unavailable);
        await recordAudit(tx, ctx, "sso.session_refused", user.user_id, { provider: p.id, reason: describe(err) }, `sso:${p.id}`);
        return { refused: `${p.displayName} no longer accepts this session (${describe(err)}); sign in again` };
      }
      if (claims["sub"] !== session.subject) return { refused: `${p.displayName} answered for another person; sign in again` };
      const decision = decideRole(p.roles, p.defaultRole, claims);
      if (!decision.role) {
        await recordAudit(tx, ctx, "sso.role_mapped", user.user_id, decisionDetails(p, decision, claims), `sso:${p.id}`);
        return { refused: `your ${p.displayName} account is no longer in a group that gives a role here; ask an admin` };
      }
      let current = user;
      if (decision.role !== user.role) {
        current = (await users.update(tx, user.user_id, { role: decision.role }))!;
        await recordAudit(tx, ctx, "sso.role_mapped", user.user_id, decisionDetails(p, decision, claims), `sso:${p.id}`);
        await recordAudit(tx, ctx, "user.role_changed", user.user_id, { from: user.role, to: decision.role, provider: p.id }, `sso:${p.id}`);
      }
      await ssoSessions.checked(tx, familyId, {
        idTokenEnc: sealToken(idToken),
        refreshTokenEnc: refreshToken ? sealToken(refreshToken) : null,
        accessTokenEnc: accessToken ? sealToken(accessToken) : null,
      });
      return { user: current };
    },
  };

  /** The person's account for a verified sign-in: found by provider and subject, or created now. */
  async function accountFor(tx: PoolClient, ctx: HandlerContext, p: SsoProviderConfig, claims: Claims, role: string): Promise<UserRow> {
    const subject = String(claims["sub"]);
    const email = String(claims["email"]).toLowerCase();
    const displayName = (typeof claims["name"] === "string" && claims["name"].trim() ? claims["name"].trim() : email).slice(0, 100);
    const known = await users.bySsoIdentity(tx, p.id, subject);
    if (!known) {
      if (await users.byEmail(tx, email))
        throw new ConnectError(`${email} already has an account here that signs in with a password; an admin must remove it before it can sign in with ${p.displayName}`, Code.FailedPrecondition);
      const created = await users.insertFromSso(tx, { email, displayName, role, provider: p.id, subject });
      await recordAudit(tx, ctx, "user.created", created.user_id, { email, role, provider: p.id, subject }, `sso:${p.id}`);
      return created;
    }
    if (known.disabled) throw new ConnectError(`${email}'s account is disabled here`, Code.PermissionDenied);
    const emailFree = email === known.email || !(await users.byEmail(tx, email));
    const updated = (await users.update(tx, known.user_id, { role, displayName, email: emailFree ? email : undefined }))!;
    if (known.role !== role) {
      // Tokens carry the role: the person's other sessions end.
      await sessions!.endAllForUser(tx, known.user_id);
      await recordAudit(tx, ctx, "user.role_changed", known.user_id, { from: known.role, to: role, provider: p.id }, `sso:${p.id}`);
    }
    return updated;
  }

  /** The begun sign-in the callback's state names: spent now, refused if expired or from another browser. */
  async function takeAttempt(ctx: HandlerContext, query: URLSearchParams, binding: string | null) {
    const state = query.get("state");
    if (!state) throw invalidArgument("callback_query", "has no state parameter");
    const attempt = await ssoLogins.take(pool, state);
    if (!attempt) throw await refused(ctx, "", "unknown, already used or expired state", "this sign-in is unknown, already completed or expired; start again");
    if (attempt.expires_at.getTime() <= Date.now()) throw await refused(ctx, attempt.provider, "expired state", "this sign-in took too long; start again");
    const presented = binding === null ? null : sha256(binding);
    const same = attempt.binding_hash === null ? presented === null : presented !== null && timingSafeEqual(attempt.binding_hash, presented);
    if (!same) throw await refused(ctx, attempt.provider, "state used from another browser", "this sign-in was begun in another browser; start again");
    const p = providers.get(attempt.provider);
    if (!p) throw await refused(ctx, attempt.provider, "provider no longer configured", `single sign-on through ${attempt.provider} is no longer configured`);
    return { p, attempt, state };
  }

  /** The code for tokens at the provider; the ID token checked (openid-client), then userinfo. */
  async function exchangeCode(ctx: HandlerContext, p: SsoProviderConfig, attempt: SsoLoginRow, state: string, query: URLSearchParams) {
    const error = query.get("error");
    if (error) throw await refused(ctx, p.id, `provider error ${error}`, `${p.displayName} did not sign you in: ${query.get("error_description") || error}`);
    const config = await configuration(p);
    const callback = new URL(settings.redirectUri!);
    callback.search = query.toString();
    try {
      const answer = await oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: attempt.code_verifier,
        expectedState: state,
        expectedNonce: attempt.nonce,
        idTokenExpected: true,
      });
      return { answer, claims: await personClaims(config, answer.access_token, answer.claims()!) };
    } catch (err) {
      if (unreachable(err)) throw new ConnectError(`${p.displayName} cannot be reached to finish the sign-in; try again`, Code.Unavailable);
      throw await refused(ctx, p.id, describe(err), `${p.displayName}'s answer was refused: ${describe(err)}`);
    }
  }

  return {
    check,
    /** sessions and sso need each other: sessions asks check(), sso starts sessions. */
    useSessions(s: Sessions) {
      sessions = s;
    },

    list: () => settings.providers.map((p) => ({ providerId: p.id, displayName: p.displayName })),
    passwordDisabledDomains: () => settings.passwordDisabledDomains,

    /** Whether `email`'s domain may sign in with a password. */
    passwordAllowed(email: string) {
      const domain = email.slice(email.lastIndexOf("@") + 1).toLowerCase();
      return !settings.passwordDisabledDomains.includes(domain);
    },

    async begin(providerId: string, binding: string | null): Promise<string> {
      const p = providerOf(providerId);
      const config = await configuration(p);
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const codeVerifier = oidc.randomPKCECodeVerifier();
      await ssoLogins.insert(pool, { state, provider: p.id, nonce, codeVerifier, binding, expiresAt: new Date(Date.now() + settings.loginTtlMs) });
      return oidc.buildAuthorizationUrl(config, {
        ...p.authorizationParams,
        redirect_uri: settings.redirectUri!,
        scope: p.scopes.join(" "),
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: "S256",
      }).href;
    },

    async complete(ctx: HandlerContext, query: URLSearchParams, binding: string | null) {
      const { p, attempt, state } = await takeAttempt(ctx, query, binding);
      const { answer, claims } = await exchangeCode(ctx, p, attempt, state, query);
      const email = typeof claims["email"] === "string" ? claims["email"].toLowerCase() : "";
      if (!email || claims["email_verified"] === false)
        throw await refused(ctx, p.id, "no verified email", `${p.displayName} gave no verified email address (ask for the email scope)`, Code.FailedPrecondition);
      if (p.emailDomains && !p.emailDomains.includes(email.slice(email.lastIndexOf("@") + 1)))
        throw await refused(ctx, p.id, `email domain not allowed: ${email}`, `${email} may not sign in through ${p.displayName}`, Code.PermissionDenied);
      const decision = decideRole(p.roles, p.defaultRole, claims);
      if (!decision.role) {
        await recordAudit(pool, ctx, "sso.role_mapped", email, decisionDetails(p, decision, claims), `sso:${p.id}`);
        throw await refused(ctx, p.id, "no role rule matched", `your ${p.displayName} account is in no group that gives a role here; ask an admin`, Code.PermissionDenied);
      }
      const role = decision.role;
      const idToken = answer.id_token!;
      return inTransaction(pool, async (tx) => {
        const user = await accountFor(tx, ctx, p, claims, role);
        const { familyId, tokens } = await sessions!.startSession(tx, user);
        await ssoSessions.insert(tx, {
          familyId,
          userId: user.user_id,
          provider: p.id,
          subject: String(claims["sub"]),
          providerSid: typeof claims["sid"] === "string" ? claims["sid"] : null,
          idTokenEnc: sealToken(idToken),
          refreshTokenEnc: answer.refresh_token ? sealToken(answer.refresh_token) : null,
          accessTokenEnc: sealToken(answer.access_token),
        });
        await recordAudit(tx, ctx, "sso.role_mapped", user.user_id, decisionDetails(p, decision, claims), `sso:${p.id}`);
        await recordAudit(tx, ctx, "login.succeeded", user.user_id, { method: "sso", provider: p.id }, user.user_id);
        return { user, tokens };
      });
    },

    /** Where to end the person's session at the provider too (RP-initiated logout), or "". */
    async endSessionUrl(familyId: string): Promise<string> {
      const session = await ssoSessions.byFamily(pool, familyId);
      const p = session && providers.get(session.provider);
      if (!session || !p) return "";
      const config = await configuration(p).catch(() => undefined);
      if (!config?.serverMetadata().end_session_endpoint) return "";
      return oidc.buildEndSessionUrl(config, {
        id_token_hint: openToken(session.id_token_enc),
        ...(settings.postLogoutRedirectUri ? { post_logout_redirect_uri: settings.postLogoutRedirectUri } : {}),
      }).href;
    },

    /**
     * OpenID Connect Back-Channel Logout 1.0: the provider POSTs a logout token (a JWT it signs)
     * when a person's session there ends; every session of ours it names ends. Answers the
     * HTTP status: 200, or 400 for a token we refuse (bad signature, issuer, audience, algorithm,
     * a nonce, no logout event).
     */
    async backchannelLogout(providerId: string, logoutToken: string): Promise<{ status: number; error?: string }> {
      const p = providers.get(providerId);
      if (!p) return { status: 404, error: "unknown provider" };
      let config: oidc.Configuration;
      try {
        config = await configuration(p);
      } catch {
        return { status: 503, error: "provider unreachable" };
      }
      const meta = config.serverMetadata();
      let keys = logoutKeys.get(p.id);
      if (!keys) logoutKeys.set(p.id, (keys = createRemoteJWKSet(new URL(meta.jwks_uri!))));
      let claims: Claims;
      try {
        ({ payload: claims } = await jwtVerify(logoutToken, keys, { issuer: meta.issuer, audience: p.clientId, algorithms: [p.idTokenAlg], maxTokenAge: "10m" }));
      } catch (err) {
        return { status: 400, error: `invalid logout token: ${describe(err)}` };
      }
      const events = claims["events"];
      if (typeof events !== "object" || events === null || !(backchannelLogoutEvent in events)) return { status: 400, error: "not a logout token (no logout event)" };
      if ("nonce" in claims) return { status: 400, error: "a logout token carries no nonce" };
      const sid = typeof claims["sid"] === "string" ? claims["sid"] : undefined;
      const subject = typeof claims["sub"] === "string" ? claims["sub"] : undefined;
      if (!sid && !subject) return { status: 400, error: "a logout token names a sid or a sub" };
      await inTransaction(pool, async (tx) => {
        const ended = await ssoSessions.familiesFor(tx, p.id, { sid, subject });
        await sessions!.endFamilies(tx, ended.map((e) => e.family_id));
        for (const e of ended) await recordAudit(tx, undefined, "logout", e.user_id, { session: e.family_id, provider: p.id, by: "back-channel logout" }, `sso:${p.id}`);
      });
      return { status: 200 };
    },
  };
}

export type Sso = ReturnType<typeof createSso>;

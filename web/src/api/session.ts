// The signed-in person's session. The access token lives only in this object's memory.
// The refresh token never reaches script: auth keeps it in an HttpOnly cookie on its own
// path (cookie mode, asked for with `x-adminkiosk-session: cookie`; docs/web.md, docs/api.md).
// localStorage holds only a flag without a secret ("signed-in"), so a reload knows to
// restore by Refresh and other tabs learn of a sign-out. Refreshing is single-flight: auth
// treats a refresh token presented twice as theft and ends the session (except a retry of a
// refresh whose answer was lost, within REFRESH_REUSE_GRACE), so one refresh runs at a time in
// this tab (a shared promise) and across tabs (a Web Lock around the Refresh, whose answer
// replaces the cookie every tab sends).
//
// The session is part of the first load, its calls are not: AuthService's client, the Connect
// transport and the protobuf runtime arrive with the platform chunk (api/platform.tsx), which
// the shell requests at start without waiting for it to paint (docs/web.md, "First load").
import { Code } from "@connectrpc/connect";
import type { Client } from "@connectrpc/connect";
import type { AuthService, TokenPair, User } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";

/** What the session needs from the platform chunk: AuthService's client and Connect's errors. */
export interface AuthCalls {
  auth: Client<typeof AuthService>;
  /** A ConnectError with this message and code. */
  error(message: string, code: Code): Error;
  /** The Connect code of any error (ConnectError.from). */
  codeOf(err: unknown): Code;
  /** Nothing answered: the network or the service is down (see errors.ts). */
  isNetworkError(err: unknown): boolean;
}

/** "signed-in" while a session is kept; "signed-out" or "ended" after one (no secret). */
const sessionFlagKey = "adminkiosk.session";
/** Where older versions of the app kept the refresh token; moved into the cookie on start. */
const legacyRefreshTokenKey = "adminkiosk.refreshToken";
const refreshLock = "adminkiosk.refresh";
/** Where to go after a single sign-on, kept across the trip to the provider (this tab only). */
const ssoNextKey = "adminkiosk.sso.next";
/** Asks auth to keep the refresh token in its HttpOnly cookie instead of the answer's body. */
const cookieMode = { headers: { "x-adminkiosk-session": "cookie" } };
/**
 * Refresh this long before the access token expires, so calls do not fail first: 30 s,
 * or a third of the token's lifetime when it lives less than 90 s (a 20 s token would
 * otherwise be refreshed on every call).
 */
const earlyRefreshMs = (lifetimeMs: number) => Math.min(30_000, lifetimeMs / 3);

export type SessionState =
  | { status: "restoring" }
  | { status: "unreachable"; error: unknown }
  | { status: "signed-out"; reason?: string }
  | { status: "signed-in"; user: User };

const insecure = "Open this app over https (or on localhost): the browser keeps the session only on a secure connection.";

export const sessionEndedReason = "Your session has ended. Please sign in again.";

export class Session {
  private state: SessionState;
  private readonly listeners = new Set<() => void>();
  private access: { token: string; expiresAt: number; renewAt: number; sid: string } | undefined;
  private inflight: Promise<string> | undefined;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  /** A refresh token an older version kept in storage, until the first Refresh moves it into the cookie. */
  private legacyRefreshToken: string | undefined;

  /** `calls` loads the platform chunk (once); its transport must not carry the session's own interceptor (these calls are public). */
  constructor(
    private readonly calls: () => Promise<AuthCalls>,
    private readonly storage: Storage = window.localStorage,
  ) {
    this.legacyRefreshToken = storage.getItem(legacyRefreshTokenKey) ?? undefined;
    if (this.legacyRefreshToken) {
      storage.removeItem(legacyRefreshTokenKey);
      storage.setItem(sessionFlagKey, "signed-in");
    }
    this.state = storage.getItem(sessionFlagKey) === "signed-in" ? { status: "restoring" } : { status: "signed-out" };
    // Signing out (or a session ending) in one tab signs out the others.
    window.addEventListener("storage", (event) => {
      if (event.key !== sessionFlagKey && event.key !== null) return;
      const flag = storage.getItem(sessionFlagKey);
      if (flag !== "signed-in" && this.state.status === "signed-in") this.end(flag === "ended" ? sessionEndedReason : "You signed out in another tab.");
    });
  }

  getState = (): SessionState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** The single sign-on providers the sign-in page offers, and the domains that must use one. */
  async ssoProviders() {
    const { auth } = await this.calls();
    return auth.listSsoProviders({});
  }

  async signIn(email: string, password: string): Promise<void> {
    const { auth, error } = await this.calls();
    // The cookie is Secure: a browser keeps it only for https or localhost.
    if (!window.isSecureContext) throw error(insecure, Code.FailedPrecondition);
    const res = await auth.login({ email, password }, cookieMode);
    if (!res.tokens || !res.user) throw error("sign-in answered without tokens", Code.Internal);
    this.keep(res.tokens);
    this.set({ status: "signed-in", user: res.user });
  }

  /**
   * Single sign-on: asks auth for the provider's sign-in page (auth binds the attempt to this
   * browser with an HttpOnly cookie) and goes there; the provider sends the browser back to
   * /sso/callback, which calls completeSso.
   */
  async beginSso(providerId: string, next: string): Promise<void> {
    const { auth, error } = await this.calls();
    if (!window.isSecureContext) throw error(insecure, Code.FailedPrecondition);
    const { authorizationUrl } = await auth.beginSsoLogin({ providerId }, cookieMode);
    window.sessionStorage.setItem(ssoNextKey, next);
    window.location.assign(authorizationUrl);
  }

  /** Back from the provider: completes the sign-in with what its redirect carried; answers where to go. */
  async completeSso(callbackQuery: string): Promise<string> {
    const { auth, error } = await this.calls();
    const res = await auth.completeSsoLogin({ callbackQuery }, cookieMode);
    if (!res.tokens || !res.user) throw error("sign-in answered without tokens", Code.Internal);
    this.keep(res.tokens);
    this.set({ status: "signed-in", user: res.user });
    const next = window.sessionStorage.getItem(ssoNextKey) ?? "/";
    window.sessionStorage.removeItem(ssoNextKey);
    return next.startsWith("/") ? next : "/";
  }

  /** On start: turns the kept session cookie into a session (or says why it could not). */
  async restore(): Promise<void> {
    if (this.state.status !== "restoring" && this.state.status !== "unreachable") return;
    this.set({ status: "restoring" });
    let calls: AuthCalls;
    try {
      calls = await this.calls();
    } catch (error) {
      // The platform chunk could not be fetched (offline, or the app was updated meanwhile).
      this.set({ status: "unreachable", error });
      return;
    }
    try {
      const token = await this.refresh(undefined);
      const who = await calls.auth.whoAmI({}, { headers: { authorization: `Bearer ${token}` } });
      if (who.principal.case !== "user") throw calls.error("a kiosk credential cannot sign in here", Code.PermissionDenied);
      this.set({ status: "signed-in", user: who.principal.value });
    } catch (error) {
      if (calls.isNetworkError(error)) this.set({ status: "unreachable", error });
      // A refused refresh has already ended the session, with its reason.
      else if (this.getState().status !== "signed-out") this.end(sessionEndedReason);
    }
  }

  /**
   * Answers where to send the browser to end the session at its single sign-on provider too
   * ("" when it has none, or for a password session).
   */
  async signOut(): Promise<string> {
    this.end(undefined);
    // Logout ends the session at auth and clears the cookie. The local session is over
    // either way; if auth cannot be told, the cookie stays (unused: the flag says signed
    // out) until it expires or the next sign-in replaces it.
    const res = await this.calls()
      .then(({ auth }) => auth.logout({}, cookieMode))
      .catch(() => undefined);
    return res?.endSessionUrl ?? "";
  }

  /** An access token that is not about to expire, refreshing first when needed. */
  async accessToken(): Promise<string> {
    if (this.access && Date.now() < this.access.renewAt) return this.access.token;
    return this.refresh(this.access?.token);
  }

  /**
   * A new access token, unless the one the caller saw (`stale`) was already replaced.
   * Concurrent callers share one refresh.
   */
  refresh(stale: string | undefined): Promise<string> {
    if (this.access && this.access.token !== stale && Date.now() < this.access.renewAt) return Promise.resolve(this.access.token);
    this.inflight ??= this.acrossTabs(() => this.rotate()).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async rotate(): Promise<string> {
    const calls = await this.calls();
    // Another tab may have signed out while this one waited for the lock.
    if (this.storage.getItem(sessionFlagKey) !== "signed-in") throw calls.error(this.end(sessionEndedReason), Code.Unauthenticated);
    try {
      // The cookie carries the refresh token (a kept legacy token goes in the body once).
      const { tokens } = await calls.auth.refresh({ refreshToken: this.legacyRefreshToken ?? "" }, cookieMode);
      if (!tokens) throw calls.error("refresh answered without tokens", Code.Internal);
      this.legacyRefreshToken = undefined;
      const before = this.access?.sid;
      this.keep(tokens);
      // A role changed at auth (single sign-on groups, an admin) moves the session to a new
      // id: learn the person's new role, so the navigation and pages follow it.
      if (before && this.access?.sid !== before && this.state.status === "signed-in") await this.reloadUser(tokens.accessToken);
      return tokens.accessToken;
    } catch (err) {
      if (calls.codeOf(err) === Code.Unauthenticated) throw calls.error(this.end(sessionEndedReason), Code.Unauthenticated);
      throw err;
    }
  }

  private async acrossTabs<T>(work: () => Promise<T>): Promise<T> {
    // Web Locks exist in secure contexts (https, localhost); elsewhere one tab is still single-flight.
    if (!navigator.locks) return work();
    return await navigator.locks.request(refreshLock, work);
  }

  private async reloadUser(token: string) {
    const { auth } = await this.calls();
    const who = await auth.whoAmI({}, { headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
    if (who?.principal.case === "user" && this.state.status === "signed-in") this.set({ status: "signed-in", user: who.principal.value });
  }

  private keep(tokens: TokenPair) {
    // google.protobuf.Timestamp in ms (what timestampMs computes, without loading the runtime).
    const expiry = tokens.accessTokenExpireTime;
    const expiresAt = expiry ? Number(expiry.seconds) * 1000 + Math.round(expiry.nanos / 1e6) : Date.now() + 60_000;
    const renewAt = expiresAt - earlyRefreshMs(expiresAt - Date.now());
    this.access = { token: tokens.accessToken, expiresAt, renewAt, sid: sessionIdOf(tokens.accessToken) };
    this.storage.setItem(sessionFlagKey, "signed-in");
    this.scheduleRenewal(renewAt - Date.now());
  }

  /**
   * Refreshes ahead of expiry even when no unary call asks for a token: a page fed only
   * by server streams (opened with the token of their time) makes no calls, and a session
   * ended elsewhere must still end here. A refresh nothing answered is tried again later.
   */
  private scheduleRenewal(inMs: number) {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(
      () => {
        if (this.state.status !== "signed-in" || !this.access) return;
        this.refresh(this.access.token).catch(async (err: unknown) => {
          if ((await this.calls()).isNetworkError(err)) this.scheduleRenewal(5_000);
        });
      },
      Math.max(inMs, 1_000),
    );
  }

  /** Forgets every token; returns the message callers waiting on a refresh get. */
  private end(reason: string | undefined): string {
    clearTimeout(this.renewTimer);
    this.access = undefined;
    this.legacyRefreshToken = undefined;
    // Tells the other tabs, unless one of them ended it and told this one.
    if (this.storage.getItem(sessionFlagKey) === "signed-in") this.storage.setItem(sessionFlagKey, reason === undefined ? "signed-out" : "ended");
    this.set({ status: "signed-out", reason });
    return reason ?? "signed out";
  }

  private set(state: SessionState) {
    this.state = state;
    for (const listener of this.listeners) listener();
  }
}

/** The access token's session id (its `sid` claim; "" if it has none). Not verified: only compared. */
function sessionIdOf(token: string): string {
  try {
    const payload = token.split(".")[1] ?? "";
    const claims: unknown = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
    return typeof claims === "object" && claims !== null && "sid" in claims && typeof claims.sid === "string" ? claims.sid : "";
  } catch {
    return "";
  }
}

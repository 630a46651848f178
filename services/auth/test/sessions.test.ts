// Sign-in, tokens and roles as people experience them.
import { Code, ConnectError } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService, AuthService, UserService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { Redis } from "ioredis";
import { createTokenVerifier, redisRevocationCheck, remoteKeys, TokenRejected } from "@adminkiosk/runtime";
import { waitFor } from "@adminkiosk/devstack";
import { adminEmail, adminPassword, Role, startAuth, failure, type AuthFixture } from "../../../test/support/auth.js";


let auth: AuthFixture;
beforeAll(async () => {
  auth = await startAuth();
});
afterAll(() => auth?.stop());

describe("login", () => {
  it("returns an access token that works and a refresh token", async () => {
    const res = await auth.client(AuthService).login({ email: adminEmail, password: adminPassword });
    expect(res.user?.role).toBe(Role.ADMIN);
    expect(res.tokens?.accessToken.split(".")).toHaveLength(3);
    expect(res.tokens?.refreshToken.length).toBeGreaterThan(30);
    const me = await auth.client(AuthService, res.tokens!.accessToken).whoAmI({});
    expect(me.principal.case === "user" && me.principal.value.email).toBe(adminEmail);
  });

  it("accepts the email in any case", async () => {
    const res = await auth.client(AuthService).login({ email: adminEmail.toUpperCase(), password: adminPassword });
    expect(res.user?.email).toBe(adminEmail);
  });

  it("refuses a wrong password and an unknown account with the same answer", async () => {
    const wrong = await failure(auth.client(AuthService).login({ email: adminEmail, password: "not-the-password" }));
    const unknown = await failure(auth.client(AuthService).login({ email: "nobody@test.local", password: "whatever-password" }));
    expect(wrong.code).toBe(Code.Unauthenticated);
    expect(unknown.code).toBe(Code.Unauthenticated);
    expect(wrong.rawMessage).toBe(unknown.rawMessage);
  });

  it("refuses a disabled user", async () => {
    const user = await auth.userWithRole(Role.VIEWER);
    await auth.client(UserService, await auth.adminToken()).updateUser({ userId: user.userId, disabled: true });
    const err = await failure(auth.client(AuthService).login({ email: user.email, password: "a-long-enough-password" }));
    expect(err.code).toBe(Code.Unauthenticated);
    // ...and its session is over, access token included, before the token expires.
    expect((await failure(auth.client(AuthService).refresh({ refreshToken: user.refreshToken }))).code).toBe(Code.Unauthenticated);
    const ended = await failure(auth.client(AuthService, user.accessToken).whoAmI({}));
    expect(ended.code).toBe(Code.Unauthenticated);
    expect(ended.rawMessage).toMatch(/session has ended/);
  });
});

describe("access tokens", () => {
  it("a call without a token is Unauthenticated", async () => {
    const err = await failure(auth.client(UserService).listUsers({}));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toMatch(/missing credential/);
  });

  it("a tampered token is Unauthenticated", async () => {
    const token = await auth.adminToken();
    const [header, payload, signature] = token.split(".");
    // Promote a viewer's claims or flip a signature byte: both must fail.
    const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, "base64url").toString()), role: "admin", sub: "someone-else" })).toString("base64url");
    const flipped = signature!.slice(0, -2) + (signature!.at(-2) === "A" ? "B" : "A") + signature!.at(-1);
    for (const bad of [`${header}.${forgedPayload}.${signature}`, `${header}.${payload}.${flipped}`, "not.a.jwt", "garbage"]) {
      const err = await failure(auth.client(UserService, bad).listUsers({}));
      expect(err.code, bad).toBe(Code.Unauthenticated);
    }
  });

  it("a token with alg none or another typ is refused", async () => {
    const token = await auth.adminToken();
    const payload = token.split(".")[1];
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "at+jwt" })).toString("base64url")}.${payload}.`;
    expect((await failure(auth.client(UserService, none).listUsers({}))).code).toBe(Code.Unauthenticated);
  });

  it("a token works until it expires; then it is Unauthenticated and says so", async () => {
    const shortLived = await startAuth({ ACCESS_TOKEN_TTL: "2s" });
    try {
      const { accessToken } = await shortLived.login(adminEmail, adminPassword);
      const expiresAt = decodeJwt(accessToken).exp! * 1000;
      // Asks until the token is refused rather than sleeping past its expiry. Every answer
      // that came back before the expiry must have been a yes (auth decided it earlier
      // still); a slow machine may get fewer such answers, never a wrong one.
      const answers: { at: number; code?: Code }[] = [];
      const refused = await waitFor("the token to be refused", async () => {
        try {
          await shortLived.client(UserService, accessToken).listUsers({});
          answers.push({ at: Date.now() });
          return undefined;
        } catch (err) {
          const error = ConnectError.from(err);
          answers.push({ at: Date.now(), code: error.code });
          return error;
        }
      }, { interval: 200 });
      expect(answers.filter((a) => a.at < expiresAt && a.code !== undefined)).toEqual([]);
      expect(refused.code).toBe(Code.Unauthenticated);
      expect(refused.rawMessage).toMatch(/expired/);
    } finally {
      await shortLived.stop();
    }
  }, 60_000);
});

describe("roles", () => {
  it("a viewer calling an admin RPC is PermissionDenied", async () => {
    const viewer = await auth.userWithRole(Role.VIEWER);
    const err = await failure(auth.client(UserService, viewer.accessToken).listUsers({}));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toMatch(/admin/);
    // A viewer may still ask who it is.
    const me = await auth.client(AuthService, viewer.accessToken).whoAmI({});
    expect(me.principal.case).toBe("user");
  });

  it("an operator cannot manage users either", async () => {
    const operator = await auth.userWithRole(Role.OPERATOR);
    const err = await failure(auth.client(AuditService, operator.accessToken).listAuditEvents({}));
    expect(err.code).toBe(Code.PermissionDenied);
  });

  it("the last active admin cannot be demoted", async () => {
    const token = await auth.adminToken();
    const { user } = await auth.client(AuthService, token).whoAmI({}).then((r) => ({ user: r.principal.case === "user" ? r.principal.value : undefined }));
    const err = await failure(auth.client(UserService, token).updateUser({ userId: user!.userId, role: Role.VIEWER }));
    expect(err.code).toBe(Code.FailedPrecondition);
  });

  it("a role change is audited and ends the user's sessions", async () => {
    const token = await auth.adminToken();
    const user = await auth.userWithRole(Role.VIEWER);
    await auth.client(UserService, token).updateUser({ userId: user.userId, role: Role.OPERATOR });
    // The old token says "viewer"; it must not outlive the change.
    expect((await failure(auth.client(AuthService, user.accessToken).whoAmI({}))).code).toBe(Code.Unauthenticated);
    const again = await auth.login(user.email, "a-long-enough-password");
    const me = await auth.client(AuthService, again.accessToken).whoAmI({});
    expect(me.principal.case === "user" && me.principal.value.role).toBe(Role.OPERATOR);
    const { events } = await auth.client(AuditService, token).listAuditEvents({ type: "user.role_changed", subject: user.userId });
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.detailsJson)).toEqual({ from: "viewer", to: "operator" });
  });
});

describe("refresh tokens", () => {
  it("rotate: each refresh spends the token and returns a working pair", async () => {
    const first = await auth.login(adminEmail, adminPassword);
    const second = (await auth.client(AuthService).refresh({ refreshToken: first.refreshToken })).tokens!;
    expect(second.refreshToken).not.toBe(first.refreshToken);
    await auth.client(UserService, second.accessToken).listUsers({});
    const third = (await auth.client(AuthService).refresh({ refreshToken: second.refreshToken })).tokens!;
    expect(third.refreshToken).not.toBe(second.refreshToken);
  });

  it("reuse of a spent token, once its successor was used, revokes the whole session", async () => {
    const first = await auth.login(adminEmail, adminPassword);
    const second = (await auth.client(AuthService).refresh({ refreshToken: first.refreshToken })).tokens!;
    const third = (await auth.client(AuthService).refresh({ refreshToken: second.refreshToken })).tokens!;
    const reuse = await failure(auth.client(AuthService).refresh({ refreshToken: first.refreshToken }));
    expect(reuse.code).toBe(Code.Unauthenticated);
    expect(reuse.rawMessage).toMatch(/already used/);
    // The legitimate holder's newer token is dead too: the thief and the owner both must sign in again.
    expect((await failure(auth.client(AuthService).refresh({ refreshToken: third.refreshToken }))).code).toBe(Code.Unauthenticated);
    const { events } = await auth.client(AuditService, await auth.adminToken()).listAuditEvents({ type: "token.reuse_detected" });
    expect(events.length).toBeGreaterThan(0);
  });

  it("a refresh retried because its answer was lost is answered again; the lost token is then theft", async () => {
    const first = await auth.login(adminEmail, adminPassword);
    // The answer carrying `lost` never reached the browser (it went offline mid-request).
    const lost = (await auth.client(AuthService).refresh({ refreshToken: first.refreshToken })).tokens!;
    const retried = (await auth.client(AuthService).refresh({ refreshToken: first.refreshToken })).tokens!;
    expect(retried.refreshToken).not.toBe(lost.refreshToken);
    await auth.client(UserService, retried.accessToken).listUsers({});
    const next = (await auth.client(AuthService).refresh({ refreshToken: retried.refreshToken })).tokens!;
    // The session goes on; the retry's spent token, presented after its successor was used, is reuse.
    expect((await failure(auth.client(AuthService).refresh({ refreshToken: first.refreshToken }))).rawMessage).toMatch(/already used/);
    expect((await failure(auth.client(AuthService).refresh({ refreshToken: next.refreshToken }))).code).toBe(Code.Unauthenticated);
  });

  it("a token superseded by a retry ends the session when it shows up: whoever replayed the old token loses it too", async () => {
    const first = await auth.login(adminEmail, adminPassword);
    const owners = (await auth.client(AuthService).refresh({ refreshToken: first.refreshToken })).tokens!;
    // A thief replays the spent token within the grace and gets a pair...
    const thiefs = (await auth.client(AuthService).refresh({ refreshToken: first.refreshToken })).tokens!;
    // ...until the owner's next refresh presents the superseded token: the session ends for both.
    const owner = await failure(auth.client(AuthService).refresh({ refreshToken: owners.refreshToken }));
    expect(owner.rawMessage).toMatch(/already used: the session has been ended/);
    expect((await failure(auth.client(AuthService).refresh({ refreshToken: thiefs.refreshToken }))).code).toBe(Code.Unauthenticated);
    expect((await failure(auth.client(UserService, thiefs.accessToken).listUsers({}))).rawMessage).toMatch(/session has ended/);
  });

  it("refreshes racing with one token are decided one after the other: each is answered, one pair goes on", async () => {
    const { refreshToken } = await auth.login(adminEmail, adminPassword);
    const results = await Promise.all([0, 1, 2].map(() => auth.client(AuthService).refresh({ refreshToken })));
    expect(new Set(results.map((r) => r.tokens!.refreshToken)).size).toBe(3);
    for (const r of results) await auth.client(UserService, r.tokens!.accessToken).listUsers({});
    // Only the pair issued last was never superseded; presenting a superseded one ends the session,
    // so of the three at most one refreshes, and afterwards none does.
    const outcomes: boolean[] = [];
    for (const r of results) outcomes.push(await auth.client(AuthService).refresh({ refreshToken: r.tokens!.refreshToken }).then(() => true, () => false));
    expect(outcomes.filter(Boolean).length).toBeLessThanOrEqual(1);
    const events = await auth.client(AuditService, await auth.adminToken()).listAuditEvents({ type: "token.reuse_detected" });
    expect(events.events.length).toBeGreaterThan(0);
  });

  it("with REFRESH_REUSE_GRACE 0s, or past the grace, a second use of a token is theft", async () => {
    const strict = await startAuth({ REFRESH_REUSE_GRACE: "0s" });
    try {
      const login = (await strict.client(AuthService).login({ email: adminEmail, password: adminPassword })).tokens!;
      const second = (await strict.client(AuthService).refresh({ refreshToken: login.refreshToken })).tokens!;
      expect((await failure(strict.client(AuthService).refresh({ refreshToken: login.refreshToken }))).rawMessage).toMatch(/already used/);
      expect((await failure(strict.client(AuthService).refresh({ refreshToken: second.refreshToken }))).code).toBe(Code.Unauthenticated);
    } finally {
      await strict.stop();
    }
    // Starting a second auth (a database, migrations, the admin's password hash) takes a while on a busy machine.
  }, 120_000);

  it("logout ends the session: the refresh token and the access token stop working at once", async () => {
    const { refreshToken, accessToken } = await auth.login(adminEmail, adminPassword);
    // Another service, verifying through the JWKS and auth's Redis, sees the end too.
    const redis = new Redis(auth.redisUrl);
    const verify = createTokenVerifier({ keys: remoteKeys(`${auth.service.url}/.well-known/jwks.json`), isRevoked: redisRevocationCheck(redis) });
    try {
      await verify(accessToken);
      await auth.client(AuthService).logout({ refreshToken });
      expect((await failure(auth.client(AuthService).refresh({ refreshToken }))).code).toBe(Code.Unauthenticated);
      expect((await failure(auth.client(UserService, accessToken).listUsers({}))).code).toBe(Code.Unauthenticated);
      await expect(verify(accessToken)).rejects.toBeInstanceOf(TokenRejected);
      // Other sessions of the same user go on.
      await auth.client(UserService, await auth.adminToken()).listUsers({});
    } finally {
      redis.disconnect();
    }
  });

  it("a session ends SESSION_MAX_LIFETIME after its login, however often it refreshes", async () => {
    const short = await startAuth({ SESSION_MAX_LIFETIME: "6s" });
    try {
      const login = (await short.client(AuthService).login({ email: adminEmail, password: adminPassword })).tokens!;
      const first = (await short.client(AuthService).refresh({ refreshToken: login.refreshToken })).tokens!;
      // Refreshing does not move the end: every refresh token of the session expires with it.
      expect(first.refreshTokenExpireTime).toEqual(login.refreshTokenExpireTime);
      let token = first.refreshToken;
      // Refresh (rotating) until auth refuses: the session's end, however slow the machine.
      const refused = await waitFor(
        "the session to reach its maximum lifetime",
        async () => {
          try {
            token = (await short.client(AuthService).refresh({ refreshToken: token })).tokens!.refreshToken;
            return undefined;
          } catch (err) {
            return ConnectError.from(err);
          }
        },
        { timeout: 60_000, interval: 250 },
      );
      expect(refused.code).toBe(Code.Unauthenticated);
      expect(refused.rawMessage).toBe("the session has reached its maximum lifetime; sign in again");
      // Signing in again starts a new session.
      await short.login(adminEmail, adminPassword);
    } finally {
      await short.stop();
    }
  }, 120_000);

  it("an unknown refresh token is Unauthenticated", async () => {
    expect((await failure(auth.client(AuthService).refresh({ refreshToken: "x".repeat(43) }))).code).toBe(Code.Unauthenticated);
  });
});

describe("login rate limiting", () => {
  it("refuses an address that failed repeatedly for an account, even with the right password", async () => {
    const user = await auth.userWithRole(Role.VIEWER);
    for (let i = 0; i < 5; i++) {
      expect((await failure(auth.client(AuthService).login({ email: user.email, password: "wrong-password-x" }))).code).toBe(Code.Unauthenticated);
    }
    const locked = await failure(auth.client(AuthService).login({ email: user.email, password: "a-long-enough-password" }));
    expect(locked.code).toBe(Code.ResourceExhausted);
    expect(locked.rawMessage).toMatch(/retry in \d+ s/);
    // Other accounts are unaffected.
    await auth.login(adminEmail, adminPassword);
  });

  it("limits attempts per client address", async () => {
    const limited = await startAuth({ LOGIN_RATE_PER_IP: "3" });
    try {
      const admin = await limited.adminToken();
      for (let i = 0; i < 2; i++) await limited.login(adminEmail, adminPassword);
      const err = await failure(limited.client(AuthService).login({ email: adminEmail, password: adminPassword }));
      expect(err.code).toBe(Code.ResourceExhausted);
      expect(err.rawMessage).toMatch(/from this address/);
      const { events } = await limited.client(AuditService, admin).listAuditEvents({ type: "login.rate_limited" });
      expect(events).toHaveLength(1);
    } finally {
      await limited.stop();
    }
  }, 120_000);
});

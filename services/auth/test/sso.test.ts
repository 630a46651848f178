// Single sign-on against a real OpenID provider (devstack's oidc-provider): the code flow as
// a browser drives it, roles from groups, a person losing their role at the provider losing
// it here at the next refresh, and every forged or replayed answer refused.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService, AuthService, UserService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { oidcDevRoleRules, oidcTestUsers, signInAtProvider, startOidcProvider, type IdTokenForgery, type OidcProvider } from "@adminkiosk/devstack";
import { failure, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";

const redirectUri = "http://127.0.0.1:8080/sso/callback";
const clientSecret = "a-client-secret-of-the-local-provider-0123456789";

let provider: OidcProvider;
let auth: AuthFixture;
beforeAll(async () => {
  provider = await startOidcProvider({
    port: 0,
    clients: [{ clientId: "adminkiosk", clientSecret, redirectUris: [redirectUri] }],
    users: [
      ...oidcTestUsers,
      // One person per test that changes them at the provider, so tests do not meet.
      { login: "olga", email: "olga@acme.test", name: "Olga", groups: ["kiosk-operators"] },
      { login: "dave", email: "dave@acme.test", name: "Dave", groups: ["kiosk-admins"] },
      { login: "sam", email: "sam@partner.test", name: "Sam Partner", groups: ["staff"] },
    ],
  });
  auth = await startAuth({
    SSO_PROVIDERS: JSON.stringify([
      { id: "acme", displayName: "Acme ID", issuer: provider.issuer, clientId: "adminkiosk", scopes: ["openid", "email", "profile", "groups"], roles: oidcDevRoleRules },
    ]),
    SSO_CLIENT_SECRETS: `acme=${clientSecret}`,
    SSO_REDIRECT_URI: redirectUri,
    PASSWORD_LOGIN_DISABLED_DOMAINS: "acme.test",
  });
}, 120_000);
afterAll(async () => {
  await auth?.stop();
  await provider?.close();
});

/** Begins at auth, signs in at the provider as `login`, and answers what the redirect back carried. */
async function atProvider(login: string): Promise<string> {
  const { authorizationUrl } = await auth.client(AuthService).beginSsoLogin({ providerId: "acme" });
  const back = await signInAtProvider(authorizationUrl, login);
  expect(back.origin + back.pathname).toBe(redirectUri);
  return back.search;
}

async function signIn(login: string) {
  return auth.client(AuthService).completeSsoLogin({ callbackQuery: await atProvider(login) });
}

describe("single sign-on", () => {
  it("lists the configured providers and the domains without passwords, for the login page", async () => {
    const res = await auth.client(AuthService).listSsoProviders({});
    expect(res.providers.map((p) => [p.providerId, p.displayName])).toEqual([["acme", "Acme ID"]]);
    expect(res.passwordLoginDisabledDomains).toEqual(["acme.test"]);
  });

  it("the authorization URL asks for a code with PKCE (S256), a state and a nonce", async () => {
    const { authorizationUrl } = await auth.client(AuthService).beginSsoLogin({ providerId: "acme" });
    const url = new URL(authorizationUrl);
    expect(url.origin).toBe(provider.issuer);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ response_type: "code", client_id: "adminkiosk", redirect_uri: redirectUri, code_challenge_method: "S256" });
    for (const p of ["state", "nonce", "code_challenge"]) expect(url.searchParams.get(p)?.length, p).toBeGreaterThan(20);
    expect((await failure(auth.client(AuthService).beginSsoLogin({ providerId: "nope" }))).rawMessage).toMatch(/provider_id/);
  });

  it("signs a person in through the provider: created on first sign-in with the role their group gives, a session like a password login's", async () => {
    const res = await signIn("alice");
    expect(res.user).toMatchObject({ email: "alice@acme.test", displayName: "Alice Admin", role: Role.ADMIN, ssoProviderId: "acme", ssoSubject: "alice" });
    const me = await auth.client(AuthService, res.tokens!.accessToken).whoAmI({});
    expect(me.principal.case === "user" && me.principal.value.email).toBe("alice@acme.test");
    // An admin by the mapping can do what admins do, and the refresh token works.
    await auth.client(UserService, res.tokens!.accessToken).listUsers({});
    const refreshed = await auth.client(AuthService).refresh({ refreshToken: res.tokens!.refreshToken });
    expect(refreshed.tokens?.accessToken).toBeTruthy();
    // The second sign-in finds the same account.
    const again = await signIn("alice");
    expect(again.user?.userId).toBe(res.user?.userId);
    // The audit log tells how the role was decided and that it was an SSO login.
    const audit = auth.client(AuditService, await auth.adminToken());
    const mapped = await audit.listAuditEvents({ type: "sso.role_mapped", subject: res.user!.userId });
    expect(JSON.parse(mapped.events[0]!.detailsJson)).toMatchObject({ provider: "acme", role: "admin", rule: 0, claims: { groups: ["kiosk-admins", "staff"] } });
    const logins = await audit.listAuditEvents({ type: "login.succeeded", subject: res.user!.userId });
    expect(JSON.parse(logins.events[0]!.detailsJson)).toEqual({ method: "sso", provider: "acme" });
  });

  it("maps groups to roles by the first matching rule, and refuses a person no rule gives a role", async () => {
    expect((await signIn("oscar")).user?.role).toBe(Role.OPERATOR);
    expect((await signIn("vera")).user?.role).toBe(Role.VIEWER);
    const err = await failure(signIn("nina"));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toMatch(/no group that gives a role/);
  });

  it("a person moved to another group at the provider has the new role at the next refresh; out of every group, no session", async () => {
    const first = await signIn("olga");
    expect(first.user?.role).toBe(Role.OPERATOR);
    provider.setGroups("olga", ["staff"]);
    const demoted = await auth.client(AuthService).refresh({ refreshToken: first.tokens!.refreshToken });
    const me = await auth.client(AuthService, demoted.tokens!.accessToken).whoAmI({});
    expect(me.principal.case === "user" && me.principal.value.role).toBe(Role.VIEWER);
    // The access token that carried the old role is ended everywhere.
    const old = await failure(auth.client(AuthService, first.tokens!.accessToken).whoAmI({}));
    expect(old.code).toBe(Code.Unauthenticated);
    provider.setGroups("olga", []);
    const gone = await failure(auth.client(AuthService).refresh({ refreshToken: demoted.tokens!.refreshToken }));
    expect(gone.code).toBe(Code.Unauthenticated);
    expect(gone.rawMessage).toMatch(/no longer in a group that gives a role/);
    expect((await failure(auth.client(AuthService, demoted.tokens!.accessToken).whoAmI({}))).code).toBe(Code.Unauthenticated);
  });

  it("a person disabled at the provider cannot refresh their session", async () => {
    const first = await signIn("dave");
    provider.setDisabled("dave", true);
    const err = await failure(auth.client(AuthService).refresh({ refreshToken: first.tokens!.refreshToken }));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toMatch(/Acme ID no longer accepts this session/);
    expect((await failure(auth.client(AuthService, first.tokens!.accessToken).whoAmI({}))).code).toBe(Code.Unauthenticated);
  });

  const forgeries: [IdTokenForgery, RegExp][] = [
    ["signature", /signature/i],
    ["audience", /aud/],
    ["nonce", /nonce/],
    ["issuer", /iss/],
    ["alg-hs256", /alg/],
    ["alg-none", /alg/],
    ["replay", /nonce/],
  ];
  for (const [kind, why] of forgeries) {
    it(`refuses an ID token that is forged: ${kind}`, async () => {
      const callback = await atProvider("vera");
      provider.forgeNextIdToken(kind);
      const err = await failure(auth.client(AuthService).completeSsoLogin({ callbackQuery: callback }));
      expect(err.code).toBe(Code.Unauthenticated);
      expect(err.rawMessage).toMatch(/answer was refused/);
      expect(err.rawMessage).toMatch(why);
    });
  }

  it("refuses a state used twice, a state never issued, and says which field is missing", async () => {
    const callback = await atProvider("vera");
    await auth.client(AuthService).completeSsoLogin({ callbackQuery: callback });
    const replayed = await failure(auth.client(AuthService).completeSsoLogin({ callbackQuery: callback }));
    expect(replayed.code).toBe(Code.Unauthenticated);
    expect(replayed.rawMessage).toMatch(/unknown, already completed or expired/);
    const invented = await failure(auth.client(AuthService).completeSsoLogin({ callbackQuery: "code=abc&state=made-up" }));
    expect(invented.code).toBe(Code.Unauthenticated);
    const missing = await failure(auth.client(AuthService).completeSsoLogin({ callbackQuery: "code=abc" }));
    expect(missing.code).toBe(Code.InvalidArgument);
    expect(missing.rawMessage).toMatch(/callback_query/);
  });

  it("password sign-in is switched off for a domain: no login, no new local account", async () => {
    const login = await failure(auth.client(AuthService).login({ email: "alice@acme.test", password: "any-password-at-all" }));
    expect(login.code).toBe(Code.FailedPrecondition);
    expect(login.rawMessage).toMatch(/password sign-in is switched off for acme\.test/);
    const create = await failure(
      auth.client(UserService, await auth.adminToken()).createUser({ email: "new@acme.test", displayName: "New", role: Role.VIEWER, password: "a-long-enough-password" }),
    );
    expect(create.code).toBe(Code.FailedPrecondition);
  });

  it("a person who signs in through a provider never gets a local password", async () => {
    const sam = (await signIn("sam")).user!;
    const admin = auth.client(UserService, await auth.adminToken());
    const set = await failure(admin.setPassword({ userId: sam.userId, password: "a-long-enough-password" }));
    expect(set.code).toBe(Code.FailedPrecondition);
    expect(set.rawMessage).toMatch(/signs in with Acme ID/);
    const login = await failure(auth.client(AuthService).login({ email: "sam@partner.test", password: "a-long-enough-password" }));
    expect(login.code).toBe(Code.FailedPrecondition);
    expect(login.rawMessage).toMatch(/signs in with Acme ID/);
    // The users page shows where each person comes from.
    const listed = await admin.listUsers({ query: "partner.test" });
    expect(listed.users.map((u) => [u.email, u.ssoProviderId])).toEqual([["sam@partner.test", "acme"]]);
  });
});

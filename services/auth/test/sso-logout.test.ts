// Single sign-on, the ends of a session and the browser's part: RP-initiated logout, the
// provider's back-channel logout (a real one ends our session, a forged one is refused), and
// the cookie that binds a begun sign-in to the browser that began it (login CSRF).
import { generateKeyPairSync, sign } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { freePort, oidcDevRoleRules, providerBrowser, startOidcProvider, waitFor, type OidcProvider } from "@adminkiosk/devstack";
import { failure, startAuth, type AuthFixture } from "../../../test/support/auth.js";

const redirectUri = "http://127.0.0.1:8080/sso/callback";
const signedOut = "http://127.0.0.1:8080/signin";
const clientSecret = "a-client-secret-of-the-local-provider-9876543210";

let provider: OidcProvider;
let auth: AuthFixture;
beforeAll(async () => {
  // auth first (it discovers the provider only when asked), so the provider knows where auth's back-channel is.
  const issuer = `http://127.0.0.1:${await freePort()}`;
  auth = await startAuth({
    SSO_PROVIDERS: JSON.stringify([{ id: "acme", displayName: "Acme ID", issuer, clientId: "adminkiosk", scopes: ["openid", "email", "groups"], roles: oidcDevRoleRules }]),
    SSO_CLIENT_SECRETS: `acme=${clientSecret}`,
    SSO_REDIRECT_URI: redirectUri,
    SSO_POST_LOGOUT_REDIRECT_URI: signedOut,
  });
  provider = await startOidcProvider({
    port: Number(new URL(issuer).port),
    clients: [
      {
        clientId: "adminkiosk",
        clientSecret,
        redirectUris: [redirectUri],
        postLogoutRedirectUris: [signedOut],
        backchannelLogoutUri: `${auth.service.url}/sso/acme/backchannel-logout`,
      },
    ],
  });
}, 120_000);
afterAll(async () => {
  await auth?.stop();
  await provider?.close();
});

async function signIn(login: string, browser = providerBrowser()) {
  const { authorizationUrl } = await auth.client(AuthService).beginSsoLogin({ providerId: "acme" });
  const back = await browser.signIn(authorizationUrl, login);
  const res = await auth.client(AuthService).completeSsoLogin({ callbackQuery: back.search });
  return { tokens: res.tokens!, browser };
}

const stillSignedIn = async (refreshToken: string) => {
  try {
    await auth.client(AuthService).refresh({ refreshToken });
    return true;
  } catch {
    return false;
  }
};

describe("single sign-on: signing out", () => {
  it("Logout answers the provider's end-session URL with the ID token hint and where to come back", async () => {
    const { tokens } = await signIn("oscar");
    const res = await auth.client(AuthService).logout({ refreshToken: tokens.refreshToken });
    const url = new URL(res.endSessionUrl);
    expect(url.origin).toBe(provider.issuer);
    expect(url.searchParams.get("post_logout_redirect_uri")).toBe(signedOut);
    expect(url.searchParams.get("id_token_hint")?.split(".")).toHaveLength(3);
    // A password session has none.
    const local = await auth.login("admin@test.local", "admin-password-123");
    expect((await auth.client(AuthService).logout({ refreshToken: local.refreshToken })).endSessionUrl).toBe("");
  });

  it("signing out at the provider ends the session here (back-channel logout)", async () => {
    const { tokens, browser } = await signIn("vera");
    const other = await signIn("alice");
    await browser.signOut(`${provider.issuer}/session/end`);
    // The provider told auth: vera's session is over; alice's goes on.
    await waitFor("the back-channel logout to end the session", async () => ((await stillSignedIn(tokens.refreshToken)) ? undefined : true));
    expect((await failure(auth.client(AuthService, tokens.accessToken).whoAmI({}))).code).toBe(Code.Unauthenticated);
    expect(await stillSignedIn(other.tokens.refreshToken)).toBe(true);
  });

  it("refuses a logout token that is forged, unsigned or not a logout token", async () => {
    const { tokens } = await signIn("oscar");
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const claims = {
      iss: provider.issuer,
      aud: "adminkiosk",
      iat: Math.floor(Date.now() / 1000),
      jti: "x1",
      sub: "oscar",
      events: { "http://schemas.openid.net/event/backchannel-logout": {} },
    };
    const rogue = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const signed = (header: object, body: object) => {
      const input = `${b64(header)}.${b64(body)}`;
      return `${input}.${sign("sha256", Buffer.from(input), rogue).toString("base64url")}`;
    };
    for (const token of [signed({ alg: "RS256", typ: "logout+jwt" }, claims), `${b64({ alg: "none" })}.${b64(claims)}.`, "not-a-jwt", ""]) {
      const res = await fetch(`${auth.service.url}/sso/acme/backchannel-logout`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ logout_token: token }).toString(),
      });
      expect(res.status, token.slice(0, 30)).toBe(400);
      expect(((await res.json()) as { error_description: string }).error_description).toMatch(/logout token/);
    }
    expect(await stillSignedIn(tokens.refreshToken)).toBe(true);
  });
});

describe("single sign-on in cookie mode: bound to the browser that began it", () => {
  const cookieName = "__Secure-adminkiosk-sso";
  async function call(method: string, body: object, cookie?: string) {
    const res = await fetch(`${auth.service.url}/adminkiosk.auth.v1.AuthService/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-adminkiosk-session": "cookie", ...(cookie ? { cookie } : {}) },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any>, cookies: res.headers.getSetCookie() };
  }
  const binding = (cookies: string[]) => cookies.find((c) => c.startsWith(`${cookieName}=`))!.split(";")[0]!;

  it("completes only with the cookie BeginSsoLogin set; another browser's link to the callback is refused", async () => {
    const mine = await call("BeginSsoLogin", { providerId: "acme" });
    expect(mine.status).toBe(200);
    expect(mine.cookies.find((c) => c.startsWith(`${cookieName}=`))).toMatch(/HttpOnly; Secure; SameSite=Strict/);
    const back = await providerBrowser().signIn(mine.body["authorizationUrl"], "vera");
    // The attacker's code and state, opened in a victim's browser (no cookie, or the victim's own).
    const victim = binding((await call("BeginSsoLogin", { providerId: "acme" })).cookies);
    for (const other of [undefined, victim]) {
      const refused = await call("CompleteSsoLogin", { callbackQuery: back.search }, other);
      expect(refused.status).toBe(401);
      expect(refused.body["message"]).toMatch(/another browser/);
    }
    // Spent by the refusal above (a state is usable once): begin again, and complete with the cookie.
    const again = await call("BeginSsoLogin", { providerId: "acme" });
    const back2 = await providerBrowser().signIn(again.body["authorizationUrl"], "vera");
    const done = await call("CompleteSsoLogin", { callbackQuery: back2.search }, binding(again.cookies));
    expect(done.status).toBe(200);
    expect(done.body["user"]["email"]).toBe("vera@acme.test");
    expect(done.cookies.some((c) => c.startsWith("__Secure-adminkiosk-refresh=") && !c.includes("Max-Age=0"))).toBe(true);
    expect(done.body["tokens"]["refreshToken"] ?? "").toBe("");
  });
});

describe("single sign-on: strangers beginning sign-ins", () => {
  it("BeginSsoLogin has the login budget per client address (each attempt is a row until it expires)", async () => {
    const sso = Object.fromEntries(Object.entries(auth.env).filter(([k]) => k.startsWith("SSO_")));
    const strict = await startAuth({ ...sso, LOGIN_RATE_PER_IP: "2" });
    try {
      const begin = () => strict.client(AuthService).beginSsoLogin({ providerId: "acme" });
      await begin();
      await begin();
      const err = await failure(begin());
      expect(err.code).toBe(Code.ResourceExhausted);
      expect(err.rawMessage).toMatch(/too many attempts from this address/);
    } finally {
      await strict.stop();
    }
  }, 60_000);
});

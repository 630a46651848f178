// Cookie mode, as the admin web app uses it: the refresh token in an HttpOnly cookie on
// AuthService's path, never in a response body. Called with plain fetch over HTTP/1.1 and
// Connect JSON, the way the browser calls through the web app's origin.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminEmail, adminPassword, startAuth, type AuthFixture } from "../../../test/support/auth.js";

const cookieName = "__Secure-adminkiosk-refresh";
const cookieMode = { "x-adminkiosk-session": "cookie" };

let auth: AuthFixture;
beforeAll(async () => {
  auth = await startAuth();
});
afterAll(() => auth?.stop());

interface Answer {
  status: number;
  body: Record<string, any>;
  setCookies: string[];
}

async function call(method: "Login" | "Refresh" | "Logout" | "WhoAmI", body: object, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${auth.service.url}/adminkiosk.auth.v1.AuthService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any>, setCookies: res.headers.getSetCookie() };
}

/** The one Set-Cookie of our cookie, split into its value and attributes (names lower-cased). */
function refreshCookie(answer: Answer): { value: string; attributes: Map<string, string> } {
  const mine = answer.setCookies.filter((c) => c.startsWith(`${cookieName}=`));
  expect(mine, answer.setCookies.join(" | ")).toHaveLength(1);
  const [pair, ...attrs] = mine[0]!.split(";").map((s) => s.trim());
  const attributes = new Map(attrs.map((a) => [a.split("=")[0]!.toLowerCase(), a.split("=").slice(1).join("=")] as const));
  return { value: pair!.slice(cookieName.length + 1), attributes };
}

const withCookie = (value: string) => ({ ...cookieMode, cookie: `other=1; ${cookieName}=${value}` });

async function signIn() {
  const login = await call("Login", { email: adminEmail, password: adminPassword }, cookieMode);
  expect(login.status).toBe(200);
  return { login, cookie: refreshCookie(login) };
}

describe("cookie mode", () => {
  it("Login sets an HttpOnly, Secure, SameSite=Strict cookie on AuthService's path and keeps the refresh token out of the body", async () => {
    const { login, cookie } = await signIn();
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(cookie.attributes.has("httponly")).toBe(true);
    expect(cookie.attributes.has("secure")).toBe(true);
    expect(cookie.attributes.get("samesite")).toBe("Strict");
    expect(cookie.attributes.get("path")).toBe("/adminkiosk.auth.v1.AuthService/");
    expect(cookie.attributes.has("domain")).toBe(false);
    // As long as the refresh token lives (REFRESH_TOKEN_TTL, 30 days by default).
    expect(Number(cookie.attributes.get("max-age"))).toBeGreaterThan(29 * 86_400);
    expect(login.body["tokens"]["accessToken"]).toBeTruthy();
    expect(login.body["tokens"]["refreshToken"] ?? "").toBe("");
    expect(JSON.stringify(login.body)).not.toContain(cookie.value);
  });

  it("Refresh with only the cookie works and rotates it", async () => {
    const { cookie } = await signIn();
    const refreshed = await call("Refresh", {}, withCookie(cookie.value));
    expect(refreshed.status).toBe(200);
    expect(refreshed.body["tokens"]["refreshToken"] ?? "").toBe("");
    const next = refreshCookie(refreshed);
    expect(next.value).not.toBe(cookie.value);
    expect(next.attributes.has("httponly")).toBe(true);
    const me = await call("WhoAmI", {}, { authorization: `Bearer ${refreshed.body["tokens"]["accessToken"]}` });
    expect(me.body["user"]["email"]).toBe(adminEmail);
    // The rotated cookie refreshes again.
    expect((await call("Refresh", {}, withCookie(next.value))).status).toBe(200);
  });

  it("a reused cookie is taken for theft, as a reused body token is: the session ends", async () => {
    const { cookie } = await signIn();
    const refreshed = await call("Refresh", {}, withCookie(cookie.value));
    // The browser moved on with the rotated cookie (so the old one's reappearance is no lost answer's retry).
    const moved = await call("Refresh", {}, withCookie(refreshCookie(refreshed).value));
    const next = refreshCookie(moved);
    const reused = await call("Refresh", {}, withCookie(cookie.value));
    expect(reused.status).toBe(401);
    expect(reused.body).toMatchObject({ code: "unauthenticated", message: expect.stringMatching(/already used/) });
    // The refused cookie is cleared...
    expect(refreshCookie(reused).attributes.get("max-age")).toBe("0");
    // ...and the whole session is over: the newer cookie and its access token too.
    const after = await call("Refresh", {}, withCookie(next.value));
    expect(after.body).toMatchObject({ code: "unauthenticated", message: expect.stringMatching(/revoked/) });
    const me = await call("WhoAmI", {}, { authorization: `Bearer ${moved.body["tokens"]["accessToken"]}` });
    expect(me.body).toMatchObject({ code: "unauthenticated", message: expect.stringMatching(/session has ended/) });
  });

  it("a Refresh whose answer was lost is answered again when the browser retries with the same cookie", async () => {
    const { cookie } = await signIn();
    // Went offline mid-request: auth rotated the cookie, the browser never stored the new one.
    const lost = refreshCookie(await call("Refresh", {}, withCookie(cookie.value)));
    const retried = await call("Refresh", {}, withCookie(cookie.value));
    expect(retried.status).toBe(200);
    const kept = refreshCookie(retried);
    expect(kept.value).not.toBe(lost.value);
    expect((await call("Refresh", {}, withCookie(kept.value))).status).toBe(200);
  });

  it("Logout ends the session of the cookie and clears it", async () => {
    const { login, cookie } = await signIn();
    const out = await call("Logout", {}, withCookie(cookie.value));
    expect(out.status).toBe(200);
    const cleared = refreshCookie(out);
    expect(cleared.value).toBe("");
    expect(cleared.attributes.get("max-age")).toBe("0");
    expect(cleared.attributes.get("path")).toBe("/adminkiosk.auth.v1.AuthService/");
    expect((await call("Refresh", {}, withCookie(cookie.value))).body).toMatchObject({ code: "unauthenticated", message: expect.stringMatching(/revoked/) });
    const me = await call("WhoAmI", {}, { authorization: `Bearer ${login.body["tokens"]["accessToken"]}` });
    expect(me.body["code"]).toBe("unauthenticated");
  });

  it("without a cookie, Refresh is Unauthenticated and Logout still succeeds", async () => {
    const refresh = await call("Refresh", {}, cookieMode);
    expect(refresh.body).toMatchObject({ code: "unauthenticated", message: expect.stringMatching(/sign in again/) });
    expect((await call("Refresh", {}, { ...cookieMode, cookie: `${cookieName}=not a token!` })).body["code"]).toBe("unauthenticated");
    const out = await call("Logout", {}, cookieMode);
    expect(out.status).toBe(200);
    expect(refreshCookie(out).attributes.get("max-age")).toBe("0");
  });

  it("a body token in cookie mode moves into the cookie (how the web app adopts a token it kept before)", async () => {
    const plain = await call("Login", { email: adminEmail, password: adminPassword });
    const refreshed = await call("Refresh", { refreshToken: plain.body["tokens"]["refreshToken"] }, cookieMode);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body["tokens"]["refreshToken"] ?? "").toBe("");
    expect((await call("Refresh", {}, withCookie(refreshCookie(refreshed).value))).status).toBe(200);
  });
});

describe("without the header (the kiosk SDK, tools, services)", () => {
  it("tokens travel in the body as before, and a cookie is neither set nor read", async () => {
    const login = await call("Login", { email: adminEmail, password: adminPassword });
    expect(login.setCookies).toEqual([]);
    const refreshToken = login.body["tokens"]["refreshToken"] as string;
    expect(refreshToken.length).toBeGreaterThan(30);
    // A cookie alone is not enough: the body's field is required.
    const cookieOnly = await call("Refresh", {}, { cookie: `${cookieName}=${refreshToken}` });
    expect(cookieOnly.body).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/refresh_token/) });
    const refreshed = await call("Refresh", { refreshToken });
    expect(refreshed.setCookies).toEqual([]);
    expect((refreshed.body["tokens"]["refreshToken"] as string).length).toBeGreaterThan(30);
  });
});

// Single sign-on in a real browser: the admin web's "Sign in with …" → the local OpenID
// provider's login form (devstack's oidc-provider) → back in the admin web with the role the
// person's group gives, the users page saying where they come from; moved to another group
// at the provider, the app has the new role after its next refresh; signing out ends the
// provider's session too (its end-session page) and comes back. Real auth, the production
// build on devstack's web server, Debian's chromium driven by playwright-core.
import { type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureWebBuild, freePort, oidcDevRoleRules, oidcTestPassword, repoRoot, startOidcProvider, startWebServer, webDistDir, type OidcProvider, type WebServer } from "@adminkiosk/devstack";
import { startAuth, type AuthFixture } from "../support/auth.js";
import { launchBrowser } from "../support/browser.js";

const clientSecret = "the-e2e-client-secret-at-the-local-provider-0123";

let provider: OidcProvider;
let auth: AuthFixture;
let web: WebServer;
let browser: Browser;
let webUrl: string;

beforeAll(async () => {
  const built = ensureWebBuild(repoRoot);
  built.catch(() => {}); // awaited below
  const webPort = await freePort();
  webUrl = `http://127.0.0.1:${webPort}`;
  provider = await startOidcProvider({
    port: 0,
    clients: [{ clientId: "adminkiosk-e2e", clientSecret, redirectUris: [`${webUrl}/sso/callback`], postLogoutRedirectUris: [`${webUrl}/signin`] }],
  });
  // Access tokens of 20 s: the app refreshes every few seconds, and each refresh asks the provider again.
  auth = await startAuth({
    ACCESS_TOKEN_TTL: "20s",
    SSO_PROVIDERS: JSON.stringify([
      { id: "acme", displayName: "Acme ID", issuer: provider.issuer, clientId: "adminkiosk-e2e", scopes: ["openid", "email", "profile", "groups"], roles: oidcDevRoleRules },
    ]),
    SSO_CLIENT_SECRETS: `acme=${clientSecret}`,
    SSO_REDIRECT_URI: `${webUrl}/sso/callback`,
    SSO_POST_LOGOUT_REDIRECT_URI: `${webUrl}/signin`,
    PASSWORD_LOGIN_DISABLED_DOMAINS: "acme.test",
  });
  await built;
  web = await startWebServer({ distDir: webDistDir(repoRoot), upstreams: { auth: auth.service.url }, port: webPort });
  browser = await launchBrowser();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await web?.close();
  await auth?.stop();
  await provider?.close();
});

describe("single sign-on in the admin web", () => {
  it("Sign in with Acme ID → the provider's login → back with the group's role; removed from the group, the role goes at the next refresh", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${webUrl}/signin?next=${encodeURIComponent("/admin/users")}`);
    await page.getByRole("button", { name: "Sign in with Acme ID" }).click();
    // The provider's own page.
    await page.waitForURL((url) => url.origin === provider.issuer);
    await page.getByLabel("Login").fill("alice");
    await page.getByLabel("Password").fill(oidcTestPassword);
    await page.getByRole("button", { name: "Sign in" }).click();
    // Back in the admin web, where the person was going, as an admin (group kiosk-admins).
    await page.waitForURL(`${webUrl}/admin/users`, { timeout: 30_000 });
    await expect.poll(() => page.getByTestId("role").textContent(), { timeout: 20_000, interval: 250 }).toBe("Admin");
    const alice = page.getByTestId("user-row").filter({ hasText: "alice@acme.test" });
    await expect.poll(() => alice.getByTestId("user-origin").textContent(), { timeout: 20_000, interval: 250 }).toBe("Acme ID");
    const local = page.getByTestId("user-row").filter({ hasText: "admin@test.local" });
    await expect(local.getByTestId("user-origin").textContent()).resolves.toBe("Password");

    // IT moves Alice out of kiosk-admins (she stays in staff: viewer).
    provider.setGroups("alice", ["staff"]);
    await expect.poll(() => page.getByTestId("role").textContent(), { timeout: 60_000, interval: 500 }).toBe("Viewer");
    await page.getByText("Not available for your role").waitFor();

    // Signing out goes through the provider's end-session page (RP-initiated logout) and back.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL((url) => url.origin === provider.issuer);
    await page.getByRole("button", { name: "Yes, sign me out" }).click();
    await page.waitForURL(`${webUrl}/signin`);
    await page.getByRole("button", { name: "Sign in with Acme ID" }).waitFor();
    await page.close();
  }, 120_000);

  it("password sign-in for a domain on single sign-on says to use the provider", async () => {
    const page = await browser.newPage();
    await page.goto(`${webUrl}/signin`);
    await page.getByLabel("Email").fill("vera@acme.test");
    await page.getByText("People at acme.test sign in with single sign-on").waitFor();
    await page.close();
  });
});

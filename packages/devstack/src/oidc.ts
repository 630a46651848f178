// A local OpenID provider for `npm start -- --sso` and the tests: oidc-provider (a certified
// OpenID Connect implementation) with a login form, test people in groups, discovery, JWKS,
// Authorization Code with PKCE, refresh tokens, userinfo, RP-initiated and back-channel
// logout. Tests steer it the way they steer the payment simulator: change a person's groups,
// disable them, or have the next ID token come back forged (bad signature, wrong audience,
// nonce or issuer, HS256 or alg none, or a replay of the previous one) so auth's checks are
// shown against a real provider, not a stand-in.
import { createHmac, generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type Provider from "oidc-provider";
import type { KoaContext } from "oidc-provider";

export interface OidcTestUser {
  /** What is typed into the login form; also the person's subject (`sub`). */
  login: string;
  email: string;
  name: string;
  groups: string[];
  disabled?: boolean;
}

/** Every test person's password at the local provider (it is a development tool). */
export const oidcTestPassword = "sso-dev-password";

/** The local provider's people: one per role the dev mapping gives, and one with no role. */
export const oidcTestUsers: OidcTestUser[] = [
  { login: "alice", email: "alice@acme.test", name: "Alice Admin", groups: ["kiosk-admins", "staff"] },
  { login: "oscar", email: "oscar@acme.test", name: "Oscar Operator", groups: ["kiosk-operators", "staff"] },
  { login: "vera", email: "vera@acme.test", name: "Vera Viewer", groups: ["staff"] },
  { login: "nina", email: "nina@acme.test", name: "Nina Nobody", groups: ["contractors"] },
];

/** auth's role rules for the local provider's groups (SSO_PROVIDERS' `roles`), first match wins. */
export const oidcDevRoleRules = [
  { claim: "groups", value: "kiosk-admins", role: "admin" },
  { claim: "groups", value: "kiosk-operators", role: "operator" },
  { claim: "groups", value: "staff", role: "viewer" },
] as const;

export interface OidcClientRegistration {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  /** Where the provider POSTs a logout token when a person's session there ends. */
  backchannelLogoutUri?: string;
}

export type IdTokenForgery = "signature" | "audience" | "nonce" | "issuer" | "alg-hs256" | "alg-none" | "replay";

export interface OidcProvider {
  issuer: string;
  port: number;
  users: Map<string, OidcTestUser>;
  setGroups(login: string, groups: string[]): void;
  setDisabled(login: string, disabled: boolean): void;
  /** The next token response carries an ID token spoiled this way (once). */
  forgeNextIdToken(kind: IdTokenForgery): void;
  close(): Promise<void>;
}

export interface OidcProviderOptions {
  host?: string;
  /** 0 picks a free port. */
  port: number;
  clients: OidcClientRegistration[];
  users?: OidcTestUser[];
}

export async function startOidcProvider(options: OidcProviderOptions): Promise<OidcProvider> {
  const users = new Map((options.users ?? oidcTestUsers).map((u) => [u.login, { ...u, groups: [...u.groups] }]));
  const host = options.host ?? "127.0.0.1";
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://${host}:${port}`;

  // Loaded here, not at import: devstack is imported by every test, and oidc-provider warns on load.
  const { default: Provider } = await import("oidc-provider");
  const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = randomUUID();
  const privateJwk = signingKey.privateKey.export({ format: "jwk" });
  const provider = new Provider(issuer, {
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      redirect_uris: c.redirectUris,
      post_logout_redirect_uris: c.postLogoutRedirectUris ?? [],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "RS256",
      ...(c.backchannelLogoutUri ? { backchannel_logout_uri: c.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
    })),
    jwks: { keys: [{ ...privateJwk, kid, alg: "RS256", use: "sig" }] },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
    scopes: ["openid", "offline_access", "email", "profile", "groups"],
    // Groups and email in the ID token itself, as Keycloak's and Entra ID's group claims are.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    ttl: { Interaction: 3600, Session: 14 * 86_400, Grant: 14 * 86_400, AuthorizationCode: 60, AccessToken: 3600, IdToken: 3600, RefreshToken: 14 * 86_400 },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // First-party: consent is implied (as an organisation's IdP does for its own apps).
    loadExistingGrant: async (ctx: KoaContext) => {
      const { client, session, result } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      const grantId = result?.consent?.grantId ?? session.grantIdFor(client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ accountId: session.accountId, clientId: client.clientId });
      grant.addOIDCScope("openid offline_access email profile groups");
      grant.addOIDCClaims(["email", "email_verified", "name", "groups"]);
      await grant.save();
      return grant;
    },
    // A refresh token for every code exchange (without asking for offline_access), so auth
    // can ask again at each refresh whether the person is still enabled and in their groups.
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) => client.grantTypeAllowed("refresh_token"),
    findAccount: async (_ctx: unknown, id: string) => {
      const user = users.get(id);
      // Disabled or removed: no login, no refresh token grant, no userinfo.
      if (!user || user.disabled) return undefined;
      return {
        accountId: id,
        claims: async () => ({ sub: id, email: user.email, email_verified: true, name: user.name, groups: [...user.groups] }),
      };
    },
  });

  let forgery: IdTokenForgery | undefined;
  let previousIdToken: string | undefined;
  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const rs256 = (key: KeyObject, header: object, claims: object) => {
    const input = `${b64(header)}.${b64(claims)}`;
    return `${input}.${sign("sha256", Buffer.from(input), key).toString("base64url")}`;
  };
  const spoil = (idToken: string, kind: IdTokenForgery, clientSecret: string): string => {
    const [h, p] = idToken.split(".");
    const header = JSON.parse(Buffer.from(h ?? "", "base64url").toString()) as Record<string, unknown>;
    const claims = JSON.parse(Buffer.from(p ?? "", "base64url").toString()) as Record<string, unknown>;
    switch (kind) {
      case "signature":
        return rs256(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey, header, claims);
      case "audience":
        return rs256(signingKey.privateKey, header, { ...claims, aud: "another-client" });
      case "nonce":
        return rs256(signingKey.privateKey, header, { ...claims, nonce: randomBytes(16).toString("base64url") });
      case "issuer":
        return rs256(signingKey.privateKey, header, { ...claims, iss: "http://127.0.0.1:1/elsewhere" });
      case "alg-hs256": {
        const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
        return `${input}.${createHmac("sha256", clientSecret).update(input).digest("base64url")}`;
      }
      case "alg-none":
        return `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`;
      case "replay":
        return previousIdToken ?? idToken;
    }
  };
  provider.use(async (ctx, next) => {
    await next();
    const body = ctx.body as { id_token?: unknown } | undefined;
    if (ctx.path !== "/token" || ctx.status !== 200 || typeof body?.id_token !== "string") return;
    const issued = body.id_token;
    if (forgery) {
      const secret = options.clients.find((c) => c.clientId === ctx.oidc.client?.clientId)?.clientSecret ?? "";
      body.id_token = spoil(issued, forgery, secret);
      forgery = undefined;
    }
    previousIdToken = issued;
  });

  const oidc = provider.callback();
  handler = (req, res) => {
    const match = /^\/interaction\/([^/?]+)(\/login)?/.exec(req.url ?? "");
    if (!match) return oidc(req, res);
    loginInteraction(provider, users, req, res, Boolean(match[2])).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`interaction failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  };

  const user = (login: string) => {
    const found = users.get(login);
    if (!found) throw new Error(`no test user ${login} at the local OpenID provider`);
    return found;
  };
  return {
    issuer,
    port,
    users,
    setGroups: (login, groups) => void (user(login).groups = [...groups]),
    setDisabled: (login, disabled) => void (user(login).disabled = disabled),
    forgeNextIdToken: (kind) => void (forgery = kind),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The login prompt: a form of login and password; consent is implied (loadExistingGrant). */
async function loginInteraction(provider: Provider, users: Map<string, OidcTestUser>, req: http.IncomingMessage, res: http.ServerResponse, submitted: boolean) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name !== "login") {
    // Only consent can be left, and loadExistingGrant grants it.
    await provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
    return;
  }
  let error = "";
  if (submitted && req.method === "POST") {
    const form = new URLSearchParams(await readBody(req));
    const login = form.get("login") ?? "";
    const found = users.get(login);
    if (found && !found.disabled && form.get("password") === oidcTestPassword) {
      await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
      return;
    }
    error = "Unknown login, wrong password or disabled account.";
  }
  res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
  res.end(`<!doctype html><html><head><title>Local OpenID provider: sign in</title></head><body>
<h1>Local OpenID provider</h1>
<p>Test people: ${[...users.values()].map((u) => `${escapeHtml(u.login)} (${escapeHtml(u.groups.join(", ") || "no groups")})`).join("; ")}. Password: ${oidcTestPassword}</p>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ""}
<form method="post" action="/interaction/${escapeHtml(details.uid)}/login">
<label>Login <input name="login" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form></body></html>`);
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error("form too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * A browser's visits to the provider, with plain fetch and one cookie jar (so the provider's
 * session survives from sign-in to sign-out).
 */
export function providerBrowser() {
  const jar = new Map<string, string>();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const remember = (res: Response) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair!.indexOf("=");
      jar.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
  };
  /**
   * Opens `start` and follows redirects while they stay at the provider's origin; a page with a
   * form is submitted with `fill(page)`'s fields. Returns the first URL off the provider.
   */
  async function walk(start: string, fill: (page: string) => Record<string, string>): Promise<URL> {
    const origin = new URL(start).origin;
    let url = new URL(start);
    let init: RequestInit = {};
    for (let hop = 0; hop < 20; hop++) {
      if (url.origin !== origin) return url;
      const res = await fetch(url, { ...init, redirect: "manual", headers: { ...(init.headers as Record<string, string>), cookie: cookieHeader() } });
      remember(res);
      init = {};
      const location = res.headers.get("location");
      if (location) {
        await res.arrayBuffer();
        url = new URL(location, url);
        continue;
      }
      const page = await res.text();
      const action = /<form[^>]*method="post"[^>]*action="([^"]+)"/.exec(page)?.[1];
      if (res.status !== 200 || !action) return url;
      url = new URL(action.replace(/&amp;/g, "&"), url);
      init = { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fill(page)).toString() };
    }
    throw new Error("too many redirects at the provider");
  }
  return {
    /**
     * Opens `authorizationUrl`, submits the login form and answers the first URL off the
     * provider (the relying party's redirect URI with code and state, or error).
     */
    async signIn(authorizationUrl: string, login: string, password = oidcTestPassword): Promise<URL> {
      return walk(authorizationUrl, (page) => {
        if (page.includes('role="alert"')) throw new Error(`the provider refused the login of ${login}`);
        return { login, password };
      });
    },
    /** Ends the provider's session (its end-session page, confirmed): it tells relying parties by back-channel logout. */
    async signOut(endSessionUrl: string): Promise<URL> {
      return walk(endSessionUrl, (page) => ({ xsrf: /name="xsrf" value="([^"]+)"/.exec(page)?.[1] ?? "", logout: "yes" }));
    },
  };
}

/** Signs in at the provider the way a browser would (providerBrowser's signIn, in a fresh jar). */
export const signInAtProvider = (authorizationUrl: string, login: string, password = oidcTestPassword): Promise<URL> =>
  providerBrowser().signIn(authorizationUrl, login, password);

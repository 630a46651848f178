// Single sign-on settings as an operator writes them (a bad one stops auth at start, naming
// what is wrong) and the role rules as people meet them (first match wins).
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "@adminkiosk/runtime";
import { authConfigShape } from "../src/config.js";
import { ssoProviders } from "../src/sso-config.js";
import { decideRole } from "../src/sso-roles.js";

const base = {
  DATABASE_URL: "postgres://localhost/auth",
  REDIS_URL: "redis://localhost",
  NATS_URL: "nats://localhost",
  AUTH_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString("base64"),
};
const keycloak = { id: "keycloak", displayName: "Acme", issuer: "https://sso.acme.com/realms/acme", clientId: "adminkiosk" };

function problem(provider: object): string {
  try {
    loadConfig(authConfigShape, { ...base, SSO_PROVIDERS: JSON.stringify([provider]) });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected the settings to be refused");
}

describe("SSO settings", () => {
  it("takes a provider with defaults: openid, email and profile, RS256, no rules", () => {
    const config = loadConfig(authConfigShape, { ...base, SSO_PROVIDERS: JSON.stringify([keycloak]), SSO_CLIENT_SECRETS: "keycloak=s3cret", SSO_REDIRECT_URI: "https://admin.acme.com/sso/callback" });
    const [p] = ssoProviders(config.SSO_PROVIDERS, config.SSO_CLIENT_SECRETS, config.SSO_REDIRECT_URI);
    expect(p).toMatchObject({ id: "keycloak", scopes: ["openid", "email", "profile"], idTokenAlg: "RS256", roles: [], clientSecret: "s3cret" });
    expect(config.SSO_RECHECK_INTERVAL).toBe(0);
    expect(config.SSO_LOGIN_TTL).toBe(600_000);
  });

  it("refuses what would be unsafe or a typo, naming the field", () => {
    expect(problem({ ...keycloak, issuer: "http://sso.acme.com" })).toMatch(/SSO_PROVIDERS: 0\.issuer: must be an https URL/);
    expect(problem({ ...keycloak, idTokenAlg: "HS256" })).toMatch(/0\.idTokenAlg/);
    expect(problem({ ...keycloak, scopes: ["email"] })).toMatch(/0\.scopes: must include openid/);
    expect(problem({ ...keycloak, roles: [{ claim: "groups", value: "x", role: "root" }] })).toMatch(/0\.roles\.0\.role/);
    expect(problem({ ...keycloak, clientSecret: "inline" })).toMatch(/clientSecret/);
    expect(problem({ ...keycloak, id: "Key Cloak" })).toMatch(/0\.id: must be lower-case/);
    expect(() => loadConfig(authConfigShape, { ...base, SSO_PROVIDERS: "[{" })).toThrow(/SSO_PROVIDERS: must be a JSON array/);
    expect(() => loadConfig(authConfigShape, { ...base, PASSWORD_LOGIN_DISABLED_DOMAINS: "acme.com,not a domain" })).toThrow(/PASSWORD_LOGIN_DISABLED_DOMAINS: "not a domain"/);
  });

  it("a provider needs its secret and the redirect URI; the secret is never shown", () => {
    const config = loadConfig(authConfigShape, { ...base, SSO_PROVIDERS: JSON.stringify([keycloak]), SSO_CLIENT_SECRETS: "other=x" });
    expect(() => ssoProviders(config.SSO_PROVIDERS, config.SSO_CLIENT_SECRETS, "https://admin.acme.com/sso/callback")).toThrow(/SSO_CLIENT_SECRETS: has no secret for provider keycloak/);
    expect(() => ssoProviders(config.SSO_PROVIDERS, new Map([["keycloak", "x"]]), undefined)).toThrow(/SSO_REDIRECT_URI: is required/);
    const message = (() => {
      try {
        loadConfig(authConfigShape, { ...base, SSO_CLIENT_SECRETS: "no-equals-sign-secret" });
      } catch (err) {
        return (err as Error).message;
      }
      return "accepted";
    })();
    expect(message).toMatch(/SSO_CLIENT_SECRETS: must be id=secret pairs/);
    expect(message).not.toMatch(/no-equals-sign-secret/);
  });
});

describe("role rules", () => {
  const rules = [
    { claim: "groups", value: "kiosk-admins", role: "admin" },
    { claim: "realm_access.roles", value: "kiosk-operator", role: "operator" },
    { claim: "hd", value: "acme.com", role: "viewer" },
  ] as const;

  it("the first matching rule gives the role, whatever order the groups come in", () => {
    expect(decideRole(rules, undefined, { groups: ["staff", "kiosk-admins"], hd: "acme.com" })).toEqual({ role: "admin", rule: 0, claim: "groups", value: "kiosk-admins" });
    expect(decideRole(rules, undefined, { realm_access: { roles: ["kiosk-operator"] }, hd: "acme.com" })).toMatchObject({ role: "operator", rule: 1 });
    expect(decideRole(rules, undefined, { hd: "acme.com" })).toMatchObject({ role: "viewer", rule: 2 });
  });

  it("no rule: the default role, or none (refused)", () => {
    expect(decideRole(rules, "viewer", { groups: ["contractors"] })).toEqual({ role: "viewer", rule: "default" });
    expect(decideRole(rules, undefined, { groups: ["contractors"], hd: "other.com" })).toEqual({ role: undefined, rule: "none" });
    // A value is matched exactly, not as a part.
    expect(decideRole(rules, undefined, { groups: ["kiosk-admins-old"] }).role).toBeUndefined();
  });
});

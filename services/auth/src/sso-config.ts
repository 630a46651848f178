// Single sign-on settings (docs/sso.md): the providers as JSON in SSO_PROVIDERS, their client
// secrets in SSO_CLIENT_SECRETS (`id=secret,...`, redacted like every *SECRETS variable), the
// web app's callback URL, and the email domains whose people may not use a password.
import { z } from "zod";
import { ConfigError, duration } from "@adminkiosk/runtime";

export const ssoRoleNames = ["admin", "operator", "viewer"] as const;
export type SsoRoleName = (typeof ssoRoleNames)[number];

/** ID token algorithms a provider may be pinned to: asymmetric only (no HS*, never none). */
export const idTokenAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const;

const loopback = new Set(["127.0.0.1", "localhost", "[::1]"]);

const roleRule = z
  .object({
    /** A claim of the ID token or userinfo, dotted for nested ones (Keycloak's `realm_access.roles`). */
    claim: z.string().min(1).max(200),
    /** Matches a string claim equal to it, or an array claim containing it. */
    value: z.string().min(1).max(500),
    role: z.enum(ssoRoleNames),
  })
  .strict();
export type RoleRule = z.infer<typeof roleRule>;

const provider = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, "must be lower-case letters, digits and dashes (up to 32), starting with a letter"),
    displayName: z.string().min(1).max(60),
    issuer: z.string().refine((v) => {
      try {
        const u = new URL(v);
        return u.protocol === "https:" || (u.protocol === "http:" && loopback.has(u.hostname));
      } catch {
        return false;
      }
    }, "must be an https URL (http only on 127.0.0.1 or localhost)"),
    clientId: z.string().min(1).max(500),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/))
      .default(["openid", "email", "profile"])
      .refine((s) => s.includes("openid"), "must include openid"),
    /** The one algorithm the provider signs ID tokens with; anything else is refused. */
    idTokenAlg: z.enum(idTokenAlgorithms).default("RS256"),
    /** Ordered: the first rule that matches gives the role. */
    roles: z.array(roleRule).max(100).default([]),
    /** The role when no rule matches; without it such a person is refused. */
    defaultRole: z.enum(ssoRoleNames).optional(),
    /** Only people whose email is in one of these domains may sign in through this provider. */
    emailDomains: z.array(z.string().min(1)).optional(),
    /** Extra authorization request parameters, e.g. Google's {"access_type": "offline", "prompt": "consent"}. */
    authorizationParams: z.record(z.string(), z.string()).default({}),
  })
  .strict();

export type SsoProviderConfig = z.infer<typeof provider> & { clientSecret: string };

const jsonProviders = z
  .string()
  .default("[]")
  .transform((v, ctx) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      ctx.addIssue({ code: "custom", message: "must be a JSON array of providers (docs/sso.md)" });
      return z.NEVER;
    }
    const result = z.array(provider).max(20).safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      ctx.addIssue({ code: "custom", message: `${issue.path.join(".") || "value"}: ${issue.message}` });
      return z.NEVER;
    }
    const ids = result.data.map((p) => p.id);
    const twice = ids.find((id, i) => ids.indexOf(id) !== i);
    if (twice) {
      ctx.addIssue({ code: "custom", message: `provider id ${twice} is used twice` });
      return z.NEVER;
    }
    return result.data;
  });

const secretList = z
  .string()
  .default("")
  .transform((v, ctx) => {
    const out = new Map<string, string>();
    for (const item of v.split(",").map((s) => s.trim()).filter(Boolean)) {
      const eq = item.indexOf("=");
      if (eq <= 0 || eq === item.length - 1) {
        ctx.addIssue({ code: "custom", message: "must be id=secret pairs separated by commas" });
        return z.NEVER;
      }
      out.set(item.slice(0, eq), item.slice(eq + 1));
    }
    return out;
  });

const domainList = z
  .string()
  .default("")
  .transform((v, ctx) => {
    const domains = v.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
    const bad = domains.find((d) => !/^[a-z0-9.-]+\.[a-z0-9-]+$/.test(d));
    if (bad) {
      ctx.addIssue({ code: "custom", message: `${JSON.stringify(bad)} is not an email domain` });
      return z.NEVER;
    }
    return domains;
  });

export const ssoConfigShape = {
  /** The providers people may sign in with (JSON array; docs/sso.md). Empty: no single sign-on. */
  SSO_PROVIDERS: jsonProviders,
  /** Each provider's client secret: `id=secret,...`. */
  SSO_CLIENT_SECRETS: secretList,
  /** The admin web's callback, registered at every provider as the redirect URI (…/sso/callback). */
  SSO_REDIRECT_URI: z.string().url().optional(),
  /** Where a provider sends the browser after RP-initiated logout (the web app's login page). */
  SSO_POST_LOGOUT_REDIRECT_URI: z.string().url().optional(),
  /** How long a begun sign-in may take at the provider before its state is refused. */
  SSO_LOGIN_TTL: duration("10m"),
  /**
   * At a refresh, ask the provider again (its refresh token, then userinfo) whether the person is
   * still enabled and which groups they are in, when the last check is older than this. 0s: every refresh.
   */
  SSO_RECHECK_INTERVAL: duration("0s"),
  /** Email domains whose people cannot sign in, or be given, a local password (comma-separated). */
  PASSWORD_LOGIN_DISABLED_DOMAINS: domainList,
};

/** The providers with their secrets; throws a ConfigError naming what is missing. */
export function ssoProviders(providers: z.infer<typeof provider>[], secrets: Map<string, string>, redirectUri: string | undefined): SsoProviderConfig[] {
  if (providers.length > 0 && !redirectUri) throw new ConfigError("invalid environment: SSO_REDIRECT_URI: is required when SSO_PROVIDERS names a provider (unset)");
  return providers.map((p) => {
    const clientSecret = secrets.get(p.id);
    if (!clientSecret) throw new ConfigError(`invalid environment: SSO_CLIENT_SECRETS: has no secret for provider ${p.id} (<redacted>)`);
    return { ...p, clientSecret };
  });
}

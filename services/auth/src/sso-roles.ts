// Which role a person signing in through a provider gets: the provider's ordered rules over
// the claims of their ID token and userinfo, first match wins, else the provider's default
// role, else none (refused). Pure, so the audit log can record exactly why.
import type { RoleRule, SsoRoleName } from "./sso-config.js";

export type RoleDecision =
  | { role: SsoRoleName; rule: number; claim: string; value: string }
  | { role: SsoRoleName; rule: "default" }
  | { role: undefined; rule: "none" };

/** The claim at a dotted path (`realm_access.roles`); a claim whose own name has dots wins. */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path];
  let here: unknown = claims;
  for (const part of path.split(".")) {
    if (typeof here !== "object" || here === null || Array.isArray(here)) return undefined;
    here = (here as Record<string, unknown>)[part];
  }
  return here;
}

function matches(claim: unknown, value: string): boolean {
  if (typeof claim === "string") return claim === value;
  if (typeof claim === "boolean" || typeof claim === "number") return String(claim) === value;
  return Array.isArray(claim) && claim.some((c) => c === value);
}

export function decideRole(rules: readonly RoleRule[], defaultRole: SsoRoleName | undefined, claims: Record<string, unknown>): RoleDecision {
  for (const [i, rule] of rules.entries()) {
    if (matches(claimAt(claims, rule.claim), rule.value)) return { role: rule.role, rule: i, claim: rule.claim, value: rule.value };
  }
  return defaultRole ? { role: defaultRole, rule: "default" } : { role: undefined, rule: "none" };
}

/** The claims the rules read, for the audit log (only those, not the whole token). */
export function claimsRead(rules: readonly RoleRule[], claims: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries([...new Set(rules.map((r) => r.claim))].map((c) => [c, claimAt(claims, c) ?? null]));
}

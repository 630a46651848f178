// Who is calling: a person with a role, an enrolled kiosk device, or one of the
// platform's own services acting as itself.
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { Role } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";
import { requestInfo } from "./request.js";
import { requireKioskId } from "./validate.js";

export { Role };

export type Principal =
  | { kind: "user"; userId: string; role: Role; sessionId: string }
  /** `expiresAt`: when the device credential stops being valid (a long-lived stream ends then). */
  | { kind: "device"; deviceId: string; kioskId: string; expiresAt?: Date }
  /** A service of the platform ("orders"), with a service token auth issued it. */
  | { kind: "service"; service: string };

export const roleNames: Record<Role, string> = {
  [Role.UNSPECIFIED]: "unspecified",
  [Role.VIEWER]: "viewer",
  [Role.OPERATOR]: "operator",
  [Role.ADMIN]: "admin",
};

export function roleFromName(name: unknown): Role | undefined {
  return [Role.VIEWER, Role.OPERATOR, Role.ADMIN].find((role) => roleNames[role] === name);
}

/** A short, stable description for logs and the audit log. */
export function describePrincipal(p: Principal | undefined): string {
  if (!p) return "";
  if (p.kind === "user") return p.userId;
  return p.kind === "device" ? `device:${p.kioskId}` : `service:${p.service}`;
}

/**
 * Whose idempotency keys and requests these are: `service:orders`, `kiosk:<id>` or
 * `user:<id>`. A key is only ever matched within its caller's scope.
 */
export function principalScope(p: Principal): string {
  if (p.kind === "service") return `service:${p.service}`;
  return p.kind === "device" ? `kiosk:${p.kioskId}` : `user:${p.userId}`;
}

/** The caller of an RPC whose access rule requires a credential. */
export function principalOf(ctx: Pick<HandlerContext, "values">): Principal {
  const p = requestInfo(ctx).principal;
  if (!p) throw new ConnectError("a credential is required", Code.Unauthenticated);
  return p;
}

/**
 * The kiosk a call acts for. A device acts for its own kiosk only (an empty field means
 * its own; another is PermissionDenied); people and services name the kiosk, or may
 * leave it empty (undefined: every kiosk) where `optionalForPeople`.
 */
export function kioskScope(ctx: Pick<HandlerContext, "values">, field: string, requested: string, optionalForPeople = false): string | undefined {
  const p = principalOf(ctx);
  if (p.kind === "device") {
    if (requested !== "" && requested !== p.kioskId) throw new ConnectError(`${field}: a kiosk may only act for itself (${p.kioskId})`, Code.PermissionDenied);
    return p.kioskId;
  }
  if (requested === "" && optionalForPeople) return undefined;
  return requireKioskId(field, requested);
}

// Who may call what, read from the contract itself: every RPC in proto/ carries an
// (adminkiosk.common.v1.access) option, and the services enforce exactly that rule. The
// app hides or disables what the signed-in role may not call; the server refuses it anyway.
import { getOption, type DescMethod } from "@bufbuild/protobuf";
import { access, Role } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";

export { Role };
export { humanRoles, roleLabel } from "./roles";

export function isPublic(method: DescMethod): boolean {
  return getOption(method, access).public;
}

/** Whether a person with `role` may call `method` (roles are ordered viewer < operator < admin). */
export function canCall(method: DescMethod, role: Role | undefined): boolean {
  const rule = getOption(method, access);
  if (rule.public) return true;
  if (role === undefined || role === Role.UNSPECIFIED || rule.minRole === Role.UNSPECIFIED) return false;
  return role >= rule.minRole;
}

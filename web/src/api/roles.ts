// The roles in words, for the shell (navigation, top bar, route guards). access.proto's Role
// values are copied here, because importing the generated enum would bring its file's
// descriptors and the protobuf runtime into the first load; test/e2e/page-access.test.ts
// checks the copy against the generated enum. The type is the generated one.
import type { Role as GeneratedRole } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";

export type Role = GeneratedRole;

export const Role = { UNSPECIFIED: 0, VIEWER: 1, OPERATOR: 2, ADMIN: 3 } as const satisfies Record<string, GeneratedRole>;

export const roleLabel: Record<Role, string> = {
  [Role.UNSPECIFIED]: "No role",
  [Role.VIEWER]: "Viewer",
  [Role.OPERATOR]: "Operator",
  [Role.ADMIN]: "Admin",
};

export const humanRoles = [Role.VIEWER, Role.OPERATOR, Role.ADMIN] as const;

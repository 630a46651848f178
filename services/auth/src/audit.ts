// Security events, written in the same transaction as the change they describe.
import type { HandlerContext } from "@connectrpc/connect";
import { recordAuditEvent, type Pool, type PoolClient } from "@adminkiosk/runtime";

export type AuditType =
  | "login.succeeded"
  | "login.failed"
  | "login.rate_limited"
  | "logout"
  | "token.reuse_detected"
  | "user.created"
  | "user.updated"
  | "user.role_changed"
  | "user.disabled"
  | "user.enabled"
  | "user.password_set"
  | "device.enrollment_code_created"
  | "device.enrolled"
  | "device.enrollment_failed"
  | "device.credential_renewed"
  | "device.revoked"
  | "key.rotated"
  | "sso.login_failed"
  | "sso.role_mapped"
  | "sso.session_refused";

/** Records a security event (see the runtime's recordAuditEvent). */
export const recordAudit = (
  db: Pool | PoolClient,
  ctx: HandlerContext | undefined,
  type: AuditType,
  subject: string,
  details: Record<string, unknown> = {},
  actor?: string,
) => recordAuditEvent(db, ctx, type, subject, details, actor);

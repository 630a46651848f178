// fleet's audit log: every registry change, command, configuration change and job,
// written in the same transaction as the change it describes.
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { AuditService } from "@adminkiosk/proto/adminkiosk/fleet/v1/audit_pb";
import { listAuditEvents, recordAuditEvent, type Pool, type PoolClient } from "@adminkiosk/runtime";

export type AuditType =
  | "kiosk.created"
  | "kiosk.updated"
  | "kiosk.deleted"
  | "command.sent"
  | "command.canceled"
  | "config.kiosk_set"
  | "config.group_set"
  | "job.created"
  | "job.paused"
  | "job.resumed"
  | "job.canceled"
  | "bulk.planned"
  | "bulk.approved"
  | "bulk.rejected"
  | "bulk.ran"
  | "release.created";

export const recordAudit = (db: Pool | PoolClient, ctx: HandlerContext, type: AuditType, subject: string, details: Record<string, unknown> = {}) =>
  recordAuditEvent(db, ctx, type, subject, details);

export function auditRoutes(pool: Pool) {
  return (router: ConnectRouter) => router.service(AuditService, { listAuditEvents: (req) => listAuditEvents(pool, req, { defaultSize: 100 }) });
}

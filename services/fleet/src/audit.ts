// fleet's audit log: every registry change, command, configuration change and job,
// written in the same transaction as the change it describes.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { AuditService } from "@adminkiosk/proto/adminkiosk/fleet/v1/audit_pb";
import { cursorPatterns, decodePageToken, describePrincipal, encodePageToken, pageSize, requestInfo, requireText, type Pool, type PoolClient } from "@adminkiosk/runtime";

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
  | "job.canceled";

export async function recordAudit(db: Pool | PoolClient, ctx: HandlerContext, type: AuditType, subject: string, details: Record<string, unknown> = {}) {
  const info = requestInfo(ctx);
  await db.query("INSERT INTO audit_events (type, actor, subject, ip, request_id, details) VALUES ($1, $2, $3, $4, $5, $6)", [
    type,
    describePrincipal(info.principal),
    subject,
    info.peer,
    info.id,
    details,
  ]);
}

interface AuditRow {
  event_id: string;
  at: Date;
  type: string;
  actor: string;
  subject: string;
  ip: string;
  request_id: string;
  details: unknown;
}

export function auditRoutes(pool: Pool) {
  return (router: ConnectRouter) =>
    router.service(AuditService, {
      async listAuditEvents(req) {
        const limit = pageSize("page_size", req.pageSize, 100, 500);
        const before = decodePageToken("page_token", req.pageToken, { before: cursorPatterns.integer })?.before;
        const params: unknown[] = [];
        const clauses: string[] = [];
        const add = (v: unknown) => `$${params.push(v)}`;
        if (req.type) {
          const type = requireText("type", req.type, { max: 64 });
          clauses.push(type.endsWith(".") ? `starts_with(type, ${add(type)})` : `type = ${add(type)}`);
        }
        if (req.actor) clauses.push(`actor = ${add(requireText("actor", req.actor, { max: 200 }))}`);
        if (req.subject) clauses.push(`subject = ${add(requireText("subject", req.subject, { max: 200 }))}`);
        if (before) clauses.push(`event_id < ${add(before)}`);
        const { rows } = await pool.query<AuditRow>(
          `SELECT * FROM audit_events ${clauses.length ? `WHERE ${clauses.join(" AND ")}` : ""} ORDER BY event_id DESC LIMIT ${add(limit + 1)}`,
          params,
        );
        const page = rows.slice(0, limit);
        return {
          events: page.map((r) => ({
            eventId: BigInt(r.event_id),
            time: timestampFromDate(r.at),
            type: r.type,
            actor: r.actor,
            subject: r.subject,
            ip: r.ip,
            requestId: r.request_id,
            detailsJson: JSON.stringify(r.details),
          })),
          nextPageToken: rows.length > limit ? encodePageToken({ before: page.at(-1)!.event_id }) : "",
        };
      },
    });
}

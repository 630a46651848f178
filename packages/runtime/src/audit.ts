// An audit log every service keeps the same way: a table `audit_events` in its own schema
// (event_id, at, type, actor, subject, ip, request_id, details), written in the transaction
// of the change it describes, read newest first with the filters of the contracts'
// ListAuditEvents (type exact or a prefix ending in '.', actor, subject).
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import type pg from "pg";
import { describePrincipal } from "./principal.js";
import { requestInfo } from "./request.js";
import { cursorPatterns, decodePageToken, encodePageToken, pageSize, requireText } from "./validate.js";

type Db = Pick<pg.Pool | pg.PoolClient, "query">;

/** Records an event; without a call (`ctx`), give the actor. */
export async function recordAuditEvent(
  db: Db,
  ctx: HandlerContext | undefined,
  type: string,
  subject: string,
  details: Record<string, unknown> = {},
  actor?: string,
): Promise<void> {
  const info = ctx ? requestInfo(ctx) : undefined;
  await db.query("INSERT INTO audit_events (type, actor, subject, ip, request_id, details) VALUES ($1, $2, $3, $4, $5, $6)", [
    type,
    actor ?? describePrincipal(info?.principal),
    subject,
    info?.peer ?? "",
    info?.id ?? "",
    details,
  ]);
}

export interface AuditEventShape {
  eventId: bigint;
  time: Timestamp;
  type: string;
  actor: string;
  subject: string;
  ip: string;
  requestId: string;
  detailsJson: string;
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

/** A ListAuditEvents answer: the request's fields checked, naming them when bad. */
export async function listAuditEvents(
  db: Db,
  req: { pageSize: number; pageToken: string; type: string; actor: string; subject: string },
  pages: { defaultSize?: number; maxSize?: number } = {},
): Promise<{ events: AuditEventShape[]; nextPageToken: string }> {
  const limit = pageSize("page_size", req.pageSize, pages.defaultSize ?? 50, pages.maxSize ?? 500);
  const before = decodePageToken("page_token", req.pageToken, { before: cursorPatterns.integer })?.before;
  const type = req.type === "" ? null : requireText("type", req.type, { max: 64 });
  const prefix = type?.endsWith(".") ? type : null;
  const { rows } = await db.query<AuditRow>(
    `SELECT * FROM audit_events
     WHERE ($1::bigint IS NULL OR event_id < $1)
       AND ($2::text IS NULL OR type = $2) AND ($3::text IS NULL OR starts_with(type, $3))
       AND ($4::text IS NULL OR actor = $4) AND ($5::text IS NULL OR subject = $5)
     ORDER BY event_id DESC LIMIT $6`,
    [
      before ?? null,
      prefix ? null : type,
      prefix,
      req.actor === "" ? null : requireText("actor", req.actor, { max: 200 }),
      req.subject === "" ? null : requireText("subject", req.subject, { max: 200 }),
      limit + 1,
    ],
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
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
    nextPageToken: rows.length > limit && last ? encodePageToken({ before: last.event_id }) : "",
  };
}

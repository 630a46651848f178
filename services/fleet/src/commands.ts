// Commands: queued here, delivered by the dispatcher, finished by the kiosk's ack and
// result (link's events, applied in events.ts). Lifecycle (defined in states.ts):
//   queued → sent → acked → succeeded | failed, or expired (TTL) / canceled.
import { randomUUID } from "node:crypto";
import { fromBinary, toBinary, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate, type Duration } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  CommandActionSchema,
  CommandOutcome,
  CommandService,
  CommandState,
  SendCommandRequestSchema,
  type CommandAction,
  type CommandSchema,
} from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import {
  currentTraceparent,
  aborted,
  cursorPatterns,
  decodePageToken,
  describePrincipal,
  encodePageToken,
  inTransaction,
  invalidArgument,
  pageSize,
  principalOf,
  requestHash,
  requireIdempotencyKey,
  requireKioskId,
  requireSameRequest,
  requireText,
  requireUuid,
  requestInfo,
  type Pool,
  type PoolClient,
} from "@adminkiosk/runtime";
import { recordAudit } from "./audit.js";
import type { ChangeFeed } from "./changes.js";
import { sqlReady, type Dispatcher } from "./dispatch.js";
import { getRelease, installAction } from "./releases/index.js";
import { cancelableCommandStates, sqlStates, type CommandStateName } from "./states.js";

type Db = Pool | PoolClient;

export type { CommandStateName };

export const commandStates: Record<CommandStateName, CommandState> = {
  queued: CommandState.QUEUED,
  sent: CommandState.SENT,
  acked: CommandState.ACKED,
  succeeded: CommandState.SUCCEEDED,
  failed: CommandState.FAILED,
  expired: CommandState.EXPIRED,
  canceled: CommandState.CANCELED,
};
const stateNames = new Map(Object.entries(commandStates).map(([name, state]) => [state, name as CommandStateName]));
const outcomes: Record<string, CommandOutcome> = {
  succeeded: CommandOutcome.SUCCEEDED,
  failed: CommandOutcome.FAILED,
  unsupported: CommandOutcome.UNSUPPORTED,
};

export interface CommandRow {
  command_id: string;
  seq: string;
  kiosk_id: string;
  action: Buffer;
  action_kind: string;
  state: CommandStateName;
  issued_by: string;
  job_id: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  created_at: Date;
  expire_at: Date;
  sent_at: Date | null;
  acked_at: Date | null;
  finished_at: Date | null;
  attempts: number;
  outcome: string;
  error_message: string;
  result: JsonObject | null;
}

export function toCommand(r: CommandRow): MessageInitShape<typeof CommandSchema> {
  const t = (d: Date | null) => (d ? timestampFromDate(d) : undefined);
  return {
    commandId: r.command_id,
    kioskId: r.kiosk_id,
    action: fromBinary(CommandActionSchema, r.action),
    state: commandStates[r.state],
    issuedBy: r.issued_by,
    jobId: r.job_id ?? "",
    createTime: timestampFromDate(r.created_at),
    expireTime: timestampFromDate(r.expire_at),
    sentTime: t(r.sent_at),
    ackTime: t(r.acked_at),
    finishTime: t(r.finished_at),
    deliveryAttempts: r.attempts,
    errorMessage: r.error_message,
    result: r.result ?? undefined,
    outcome: outcomes[r.outcome] ?? CommandOutcome.UNSPECIFIED,
  };
}

export async function commandById(db: Db, commandId: string): Promise<CommandRow | undefined> {
  const { rows } = await db.query<CommandRow>("SELECT * FROM commands WHERE command_id = $1", [commandId]);
  return rows[0];
}

const hour = 3_600_000;

/** A TTL in 10 s .. 7 days (default 1 hour), in ms. */
export function requireTtl(field: string, ttl: Duration | undefined): number {
  if (!ttl) return hour;
  const ms = Number(ttl.seconds) * 1000 + Math.floor(ttl.nanos / 1e6);
  if (!(ms >= 10_000 && ms <= 7 * 24 * hour)) throw invalidArgument(field, "must be between 10 seconds and 7 days");
  return ms;
}

/** Checks an action and returns its kind. */
export function requireAction(field: string, action: CommandAction | undefined, o: { installRelease?: boolean } = {}): string {
  const kind = action?.kind;
  if (!kind?.case) throw invalidArgument(field, "must name what to do (reboot, restart_app, display_message, apply_config, refresh_catalog, open_service_door, collect_diagnostics)");
  switch (kind.case) {
    case "displayMessage": {
      requireText(`${field}.display_message.text`, kind.value.text, { max: 500 });
      const d = kind.value.duration;
      if (d && (d.seconds < 0n || d.seconds > 86_400n)) throw invalidArgument(`${field}.display_message.duration`, "must be between 0 and 24 hours");
      break;
    }
    case "applyConfig":
      if (Buffer.byteLength(JSON.stringify(kind.value.config ?? {})) > 64 * 1024) throw invalidArgument(`${field}.apply_config.config`, "must be at most 65536 bytes as JSON");
      break;
    case "openServiceDoor":
      if (kind.value.technician) requireText(`${field}.open_service_door.technician`, kind.value.technician, { max: 100 });
      break;
    case "installRelease":
      // A job or bulk action would send the request's own (unsigned) fields: releases go to many kiosks as rollouts.
      if (!o.installRelease) throw invalidArgument(`${field}.install_release`, "a release goes to many kiosks as a rollout (RolloutService), to one kiosk with SendCommand");
      if (!cursorPatterns.uuid.test(kind.value.releaseId)) throw invalidArgument(`${field}.install_release.release_id`, "must be a release id (a UUID)");
      break;
  }
  return kind.case;
}

/** SendCommand's and CreateJob's key is optional (empty: none); a given key follows the runtime's rule (idempotency.ts). */
export const optionalIdempotencyKey = (value: string): string | null => (value === "" ? null : requireIdempotencyKey(value));

/** The key's record is the command or job row (request_hash as hex): another request under the key is the runtime's key-reuse refusal. */
export function requireSameRequestHex(stored: string | null | undefined, hash: string): void {
  if (stored == null) throw aborted("the request with this idempotency key is still being made; retry");
  requireSameRequest(Buffer.from(stored, "hex"), Buffer.from(hash, "hex"));
}

export interface CommandDeps {
  pool: Pool;
  changes: ChangeFeed;
  dispatcher: Dispatcher;
}

/**
 * SendCommand's one statement ($1 command id, $2 kiosk, $3 action bytes, $4 action kind, $5 issuer,
 * $6 idempotency key, $7 request hash, $8 TTL ms, $9 traceparent, $10 caller's address, $11 request id):
 * exported for bench/commands.ts, which runs it bare as the same run's baseline.
 */
export const sendCommandSql = `WITH k AS (SELECT session_id, connected, deleted_at FROM kiosks WHERE kiosk_id = $2 AND deleted_at IS NULL),
   ins AS (
     INSERT INTO commands (command_id, kiosk_id, action, action_kind, state, issued_by, idempotency_key, request_hash, expire_at, traceparent)
     SELECT $1, $2, $3, $4, 'queued', $5, $6, $7, now() + make_interval(secs => $8::float8 / 1000), $9 FROM k
     ON CONFLICT (issued_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING command_id, kiosk_id, action_kind, created_at, expire_at),
   audit AS (
     INSERT INTO audit_events (type, actor, subject, ip, request_id, details)
     SELECT 'command.sent', $5, $2, $10, $11, jsonb_build_object('commandId', command_id, 'action', action_kind, 'ttlMs', $8::bigint) FROM ins)
   SELECT c.command_id, c.created_at, c.expire_at, EXISTS (SELECT 1 FROM k) AS kiosk_found, ${sqlReady}
   FROM (SELECT 1) one LEFT JOIN ins c ON true LEFT JOIN k ON true`;

export function commandRoutes(deps: CommandDeps) {
  const { pool, changes, dispatcher } = deps;
  const notFound = (id: string) => new ConnectError(`command ${id} not found`, Code.NotFound);

  return (router: ConnectRouter) =>
    router.service(CommandService, {
      async sendCommand(req, ctx) {
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        const kind = requireAction("action", req.action, { installRelease: true });
        if (req.action?.kind.case === "installRelease") {
          // Sent by hand: the kiosk gets the release's signed manifest as fleet stored it, whatever else the request said.
          const release = await getRelease(pool, req.action.kind.value.releaseId);
          if (!release) throw invalidArgument("action.install_release.release_id", `no release ${req.action.kind.value.releaseId}`);
          req.action = installAction(release, "");
        }
        const ttlMs = requireTtl("ttl", req.ttl);
        const key = optionalIdempotencyKey(req.idempotencyKey);
        const issuedBy = describePrincipal(principalOf(ctx));
        // The request's hash is what a retry under the same key is compared with: none without a key.
        const hash = key === null ? null : requestHash("SendCommand", SendCommandRequestSchema, req).toString("hex");
        const action = Buffer.from(toBinary(CommandActionSchema, req.action!));
        // One statement, one round trip: the kiosk must exist (and not be deleted), the command
        // is inserted unless the caller's key was used before, and its audit row goes with it
        // (a single statement is atomic, as the transaction it replaces was).
        const info = requestInfo(ctx);
        const traceparent = currentTraceparent() ?? null;
        // It also reads the kiosk's stream, so the dispatcher can send the command at once (handOver).
        // It returns only what the database decided (id order, times, the kiosk's stream): the rest
        // of a new command is the request's, so it is not read back and parsed (issue 13).
        const { rows } = await pool.query<{ command_id: string | null; created_at: Date; expire_at: Date; session_id: string | null; ready: boolean; kiosk_found: boolean }>(
          sendCommandSql,
          // The call's trace goes down the kiosk stream with the command (tracing; NULL when off).
          [randomUUID(), kioskId, action, kind, issuedBy, key, hash, ttlMs, traceparent, info.peer ?? "", info.id ?? ""],
        );
        const made = rows[0]!;
        if (!made.kiosk_found) throw new ConnectError(`kiosk ${kioskId} not found`, Code.NotFound);
        if (made.command_id === null) {
          // The key was used before: the same request gets the command it made.
          const { rows: prior } = await pool.query<CommandRow>("SELECT * FROM commands WHERE issued_by = $1 AND idempotency_key = $2", [issuedBy, key]);
          requireSameRequestHex(prior[0]?.request_hash, hash!);
          return { command: toCommand(prior[0]!) };
        }
        changes.publish(kioskId, "command", made.command_id);
        dispatcher.handOver([{ command_id: made.command_id, kiosk_id: kioskId, action, expire_at: made.expire_at, traceparent, session_id: made.session_id, ready: made.ready }]);
        return {
          command: {
            commandId: made.command_id,
            kioskId,
            action: req.action,
            state: CommandState.QUEUED,
            issuedBy,
            createTime: timestampFromDate(made.created_at),
            expireTime: timestampFromDate(made.expire_at),
          },
        };
      },

      async getCommand(req) {
        const commandId = requireUuid("command_id", req.commandId);
        const row = await commandById(pool, commandId);
        if (!row) throw notFound(commandId);
        return { command: toCommand(row) };
      },

      async listCommands(req) {
        const limit = pageSize("page_size", req.pageSize, 100, 1000);
        const before = decodePageToken("page_token", req.pageToken, { before: cursorPatterns.integer })?.before;
        const params: unknown[] = [];
        const clauses: string[] = [];
        const add = (v: unknown) => `$${params.push(v)}`;
        if (req.kioskId) clauses.push(`kiosk_id = ${add(requireKioskId("kiosk_id", req.kioskId))}`);
        if (req.jobId) clauses.push(`job_id = ${add(requireUuid("job_id", req.jobId))}`);
        if (req.state !== CommandState.UNSPECIFIED) {
          const name = stateNames.get(req.state);
          if (!name) throw invalidArgument("state", "is not a command state");
          clauses.push(`state = ${add(name)}`);
        }
        if (before) clauses.push(`seq < ${add(before)}`);
        const { rows } = await pool.query<CommandRow>(
          `SELECT * FROM commands ${clauses.length ? `WHERE ${clauses.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ${add(limit + 1)}`,
          params,
        );
        const page = rows.slice(0, limit);
        return { commands: page.map(toCommand), nextPageToken: rows.length > limit ? encodePageToken({ before: page.at(-1)!.seq }) : "" };
      },

      async cancelCommand(req, ctx) {
        const commandId = requireUuid("command_id", req.commandId);
        const row = await inTransaction(pool, async (tx) => {
          const { rows } = await tx.query<CommandRow>(
            `UPDATE commands SET state = 'canceled', finished_at = now() WHERE command_id = $1 AND state IN (${sqlStates(cancelableCommandStates)}) RETURNING *`,
            [commandId],
          );
          if (!rows[0]) {
            const current = await commandById(tx, commandId);
            if (!current) throw notFound(commandId);
            throw new ConnectError(`command ${commandId} is ${current.state}: only a command the kiosk has not acknowledged can be canceled`, Code.FailedPrecondition);
          }
          await recordAudit(tx, ctx, "command.canceled", rows[0].kiosk_id, { commandId });
          return rows[0];
        });
        changes.publish(row.kiosk_id, "command", row.command_id);
        return { command: toCommand(row) };
      },
    });
}



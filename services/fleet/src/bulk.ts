// Bulk actions over a fleet query (bulk.proto). PlanBulkAction is the dry run: it resolves
// the query once and freezes that set of kiosks (bulk_action_targets), with a sample and what
// changes; nothing else changes. Running it — by its planner, or for a dangerous action by
// the second admin who approves it — touches exactly that set: kiosks deleted in between are
// skipped and counted, so touched + skipped = the dry run's count. Every step is audited.
import { randomUUID } from "node:crypto";
import { fromBinary, toBinary, toJson, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { BulkActionService, BulkActionState, BulkChangeSchema, type BulkActionSchema, type BulkChange } from "@adminkiosk/proto/adminkiosk/fleet/v1/bulk_pb";
import { CommandActionSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { callOptions, describePrincipal, inTransaction, invalidArgument, pageSize, principalOf, requireText, requireUuid, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { recordAudit } from "./audit.js";
import type { ChangeFeed } from "./changes.js";
import { requireAction } from "./commands.js";
import type { Dispatcher } from "./dispatch.js";
import { optionalGroupId, requireTags } from "./kiosk-rules.js";
import { requireQuery } from "./query/index.js";
import { recordRegistryEvent, recordRegistryEvents } from "./registry-events.js";
import type { KioskRow } from "./store.js";

type Db = Pool | PoolClient;
type StateName = "planned" | "awaiting_approval" | "running" | "done" | "rejected" | "expired";

const states: Record<StateName, BulkActionState> = {
  planned: BulkActionState.PLANNED,
  awaiting_approval: BulkActionState.AWAITING_APPROVAL,
  running: BulkActionState.RUNNING,
  done: BulkActionState.DONE,
  rejected: BulkActionState.REJECTED,
  expired: BulkActionState.EXPIRED,
};
const stateNames = new Map(Object.entries(states).map(([n, s]) => [s, n as StateName]));

const planValidMs = 24 * 3600_000;
const sampleSize = 20;
/** Revocations call auth once per kiosk. */
const maxRevoke = 1000;
/** Commands that need a second admin whatever the count. */
const dangerousCommands = new Set(["reboot"]);

interface BulkRow {
  bulk_action_id: string;
  query: string;
  change: Buffer;
  change_kind: Kind;
  description: string;
  rate_per_minute: number;
  state: StateName;
  dangerous: boolean;
  danger_reason: string;
  kiosk_count: number;
  sample: { kioskId: string; name: string; change: string }[];
  summary: string;
  requested_by: string;
  approved_by: string;
  rejected_by: string;
  touched: number;
  skipped: number;
  job_id: string | null;
  created_at: Date;
  expire_at: Date;
  run_at: Date | null;
}

type Kind = "command" | "configPatch" | "tags" | "group" | "revoke";

/** A plan not run within 24 hours: shown EXPIRED, refused by Run and Approve. */
const isExpired = (r: BulkRow) => (r.state === "planned" || r.state === "awaiting_approval") && r.expire_at.getTime() <= Date.now();

function toBulkAction(r: BulkRow): MessageInitShape<typeof BulkActionSchema> {
  return {
    bulkActionId: r.bulk_action_id,
    query: r.query,
    change: fromBinary(BulkChangeSchema, r.change),
    description: r.description,
    state: isExpired(r) ? BulkActionState.EXPIRED : states[r.state],
    dangerous: r.dangerous,
    dangerReason: r.danger_reason,
    kioskCount: r.kiosk_count,
    sample: r.sample,
    summary: r.summary,
    requestedBy: r.requested_by,
    approvedBy: r.approved_by,
    rejectedBy: r.rejected_by,
    touched: r.touched,
    skipped: r.skipped,
    jobId: r.job_id ?? "",
    createTime: timestampFromDate(r.created_at),
    expireTime: timestampFromDate(r.expire_at),
    runTime: r.run_at ? timestampFromDate(r.run_at) : undefined,
  };
}

interface CheckedChange {
  kind: Kind;
  /** What it does, in words. */
  summary: string;
  /** What it would change for one kiosk. */
  describe(k: KioskRow): string;
  /** Why it needs a second admin for `count` kiosks ("" when it does not). */
  danger(count: number): string;
  tags?: { add: string[]; remove: string[] };
  groupId?: string;
  patch?: { set: JsonObject; remove: string[] };
  commandKind?: string;
}

const list = (xs: string[]) => (xs.length ? xs.join(", ") : "none");

function requireChange(field: string, change: BulkChange | undefined, approvalOver: number): CheckedChange {
  const c = change?.change;
  if (!c?.case) throw invalidArgument(field, "must name what to do: command, config_patch, tags, group or revoke");
  const over = (count: number, what: string) => (count > approvalOver ? `${what} on ${count} kiosks, more than ${approvalOver}` : "");
  switch (c.case) {
    case "command": {
      const kind = requireAction(`${field}.command`, c.value);
      return {
        kind: "command",
        commandKind: kind,
        summary: `send the command ${kind}`,
        describe: () => `command ${kind}`,
        danger: (n) => (dangerousCommands.has(kind) ? `a ${kind} of ${n} kiosk${n === 1 ? "" : "s"}` : ""),
      };
    }
    case "configPatch": {
      const json = c.value as JsonObject;
      if (Buffer.byteLength(JSON.stringify(json)) > 64 * 1024) throw invalidArgument(`${field}.config_patch`, "must be at most 65536 bytes as JSON");
      const keys = Object.keys(json);
      if (keys.length === 0) throw invalidArgument(`${field}.config_patch`, "must set or remove at least one key");
      const remove = keys.filter((k) => json[k] === null);
      const set = Object.fromEntries(Object.entries(json).filter(([, v]) => v !== null)) as JsonObject;
      const words = [...Object.entries(set).map(([k, v]) => `${k} = ${JSON.stringify(v)}`), ...remove.map((k) => `${k} removed`)].join(", ");
      return {
        kind: "configPatch",
        patch: { set, remove },
        summary: `change each kiosk's own configuration: ${words} (a new desired version)`,
        describe: () => `config: ${words}`,
        danger: (n) => over(n, "a configuration change"),
      };
    }
    case "tags": {
      const add = requireTags(`${field}.tags.add`, c.value.add);
      const remove = requireTags(`${field}.tags.remove`, c.value.remove);
      if (add.length + remove.length === 0) throw invalidArgument(`${field}.tags`, "must add or remove at least one tag");
      const both = add.find((t) => remove.includes(t));
      if (both) throw invalidArgument(`${field}.tags`, `adds and removes ${both}`);
      return {
        kind: "tags",
        tags: { add, remove },
        summary: `tags: add ${list(add)}; remove ${list(remove)}`,
        describe: (k) => `tags: ${list(k.tags)} → ${list([...new Set([...k.tags, ...add])].filter((t) => !remove.includes(t)).sort())}`,
        danger: () => "",
      };
    }
    case "group": {
      const groupId = optionalGroupId(`${field}.group.group_id`, c.value.groupId);
      return {
        kind: "group",
        groupId,
        summary: groupId ? `move to group ${groupId} (its configuration applies)` : "take out of their group",
        describe: (k) => `group: ${k.group_id || "none"} → ${groupId || "none"}`,
        danger: (n) => over(n, "a group change"),
      };
    }
    case "revoke": {
      const reason = c.value.reason === "" ? "revoked by a bulk action" : requireText(`${field}.revoke.reason`, c.value.reason, { max: 200 });
      void reason;
      return {
        kind: "revoke",
        summary: "delete from the fleet and revoke the device credentials",
        describe: () => "deleted, credential revoked",
        danger: (n) => `a revocation of ${n} kiosk${n === 1 ? "" : "s"}`,
      };
    }
  }
}

export interface BulkDeps {
  pool: Pool;
  changes: ChangeFeed;
  dispatcher: Dispatcher;
  authDevices: Client<typeof DeviceService>;
  approvalOver: number;
}

export function bulkRoutes(deps: BulkDeps) {
  const { pool } = deps;
  const notFound = (id: string) => new ConnectError(`bulk action ${id} not found`, Code.NotFound);
  const load = async (db: Db, id: string, forUpdate = false) => {
    const { rows } = await db.query<BulkRow>(`SELECT * FROM bulk_actions WHERE bulk_action_id = $1${forUpdate ? " FOR UPDATE" : ""}`, [id]);
    return rows[0];
  };

  /** The row locked, or the reason it cannot run now. */
  async function lockRunnable(tx: PoolClient, id: string, allowed: StateName[]): Promise<BulkRow> {
    const row = await load(tx, id, true);
    if (!row) throw notFound(id);
    if (isExpired(row)) throw new ConnectError(`bulk action ${id} was planned more than 24 hours ago and has expired; plan it again`, Code.FailedPrecondition);
    if (row.state === "awaiting_approval" && !allowed.includes(row.state))
      throw new ConnectError(`bulk action ${id} is dangerous (${row.danger_reason}): it waits for a second admin's approval (ApproveBulkAction)`, Code.FailedPrecondition);
    if (!allowed.includes(row.state)) throw new ConnectError(`bulk action ${id} is ${row.state.replace("_", " ")}; this needs it ${allowed.join(" or ").replace("_", " ")}`, Code.FailedPrecondition);
    return row;
  }

  /**
   * Applies the change to the frozen set in `tx` (all but revocations). Returns what to
   * announce once committed.
   */
  async function apply(tx: PoolClient, ctx: HandlerContext, row: BulkRow, actor: string) {
    const change = requireChange("change", fromBinary(BulkChangeSchema, row.change), Infinity);
    const id = row.bulk_action_id;
    const targets = `SELECT k.kiosk_id FROM bulk_action_targets t JOIN kiosks k USING (kiosk_id) WHERE t.bulk_action_id = $1 AND k.deleted_at IS NULL`;
    let touched: string[] = [];
    let jobId: string | null = null;
    let configChanged: string[] = [];
    if (change.kind === "command") {
      const action = fromBinary(BulkChangeSchema, row.change).change.value as never;
      jobId = randomUUID();
      await tx.query(
        `INSERT INTO jobs (job_id, description, action, action_kind, target, rate_per_minute, max_failures, command_ttl_ms, state, total, created_by, allowance)
         VALUES ($1, $2, $3, $4, $5, $6, NULL, 3600000, 'running', 0, $7, 1)`,
        [jobId, `bulk action ${id}${row.description ? `: ${row.description}` : ""}`.slice(0, 200), toBinary(CommandActionSchema, action), change.commandKind, { bulkActionId: id }, row.rate_per_minute, row.requested_by],
      );
      const { rows } = await tx.query<{ kiosk_id: string }>(
        `INSERT INTO job_targets (job_id, position, kiosk_id)
         SELECT $2, (row_number() OVER (ORDER BY kiosk_id)) - 1, kiosk_id FROM (${targets}) s RETURNING kiosk_id`,
        [id, jobId],
      );
      touched = rows.map((r) => r.kiosk_id);
      await tx.query("UPDATE jobs SET total = $2 WHERE job_id = $1", [jobId, touched.length]);
      await recordAudit(tx, ctx, "job.created", jobId, { action: change.commandKind, bulkActionId: id, kiosks: touched.length, ratePerMinute: row.rate_per_minute });
    } else if (change.kind === "configPatch") {
      const { rows: v } = await tx.query<{ version: string }>("SELECT nextval('config_version_seq') AS version");
      const version = v[0]!.version;
      const { rows } = await tx.query<{ kiosk_id: string }>(
        `WITH target AS (SELECT k.kiosk_id FROM bulk_action_targets t JOIN kiosks k USING (kiosk_id)
                         WHERE t.bulk_action_id = $1 AND k.deleted_at IS NULL FOR UPDATE OF k),
              saved AS (INSERT INTO kiosk_config (kiosk_id, config, version, updated_by)
                        SELECT kiosk_id, $2::jsonb - $3::text[], $4, $5 FROM target
                        ON CONFLICT (kiosk_id) DO UPDATE SET config = (kiosk_config.config || $2::jsonb) - $3::text[],
                          version = EXCLUDED.version, updated_by = EXCLUDED.updated_by, updated_at = now()
                        RETURNING kiosk_id)
         UPDATE kiosks SET config_version = $4 WHERE kiosk_id IN (SELECT kiosk_id FROM saved) RETURNING kiosk_id`,
        [id, change.patch!.set, change.patch!.remove, version, actor],
      );
      touched = configChanged = rows.map((r) => r.kiosk_id);
    } else if (change.kind === "tags") {
      const { rows } = await tx.query<KioskRow>(
        `UPDATE kiosks k SET tags = (SELECT COALESCE(array_agg(DISTINCT x ORDER BY x), '{}') FROM unnest(k.tags || $2::text[]) AS x WHERE x <> ALL($3::text[])),
           updated_at = now()
         FROM bulk_action_targets t WHERE t.bulk_action_id = $1 AND t.kiosk_id = k.kiosk_id AND k.deleted_at IS NULL RETURNING k.*`,
        [id, change.tags!.add, change.tags!.remove],
      );
      await recordRegistryEvents(tx, "updated", rows);
      touched = rows.map((r) => r.kiosk_id);
    } else if (change.kind === "group") {
      const { rows } = await tx.query<KioskRow & { moved: boolean }>(
        `WITH target AS (SELECT k.kiosk_id, k.group_id <> $2 AS moved FROM bulk_action_targets t JOIN kiosks k USING (kiosk_id)
                         WHERE t.bulk_action_id = $1 AND k.deleted_at IS NULL FOR UPDATE OF k)
         UPDATE kiosks k SET group_id = $2, updated_at = now(),
           -- Another group means another desired configuration: a new version.
           config_version = CASE WHEN target.moved THEN nextval('config_version_seq') ELSE k.config_version END
         FROM target WHERE k.kiosk_id = target.kiosk_id RETURNING k.*, target.moved`,
        [id, change.groupId],
      );
      await recordRegistryEvents(tx, "updated", rows);
      touched = rows.map((r) => r.kiosk_id);
      configChanged = rows.filter((r) => r.moved).map((r) => r.kiosk_id);
    }
    await tx.query("UPDATE bulk_action_targets SET applied = true WHERE bulk_action_id = $1 AND kiosk_id = ANY($2)", [id, touched]);
    const { rows: done } = await tx.query<BulkRow>(
      "UPDATE bulk_actions SET state = 'done', touched = $2, skipped = kiosk_count - $2, job_id = $3, run_at = now() WHERE bulk_action_id = $1 RETURNING *",
      [id, touched.length, jobId],
    );
    await recordAudit(tx, ctx, "bulk.ran", id, { kind: change.kind, kiosks: row.kiosk_count, touched: touched.length, skipped: row.kiosk_count - touched.length, jobId, approvedBy: row.approved_by || null });
    return {
      row: done[0]!,
      announce: () => {
        if (change.kind === "tags" || change.kind === "group") touched.forEach((k) => deps.changes.publish(k, "kiosk"));
        configChanged.forEach((k) => deps.changes.publish(k, "config"));
        if (configChanged.length) deps.dispatcher.kick(configChanged);
      },
    };
  }

  /** Revokes and deletes the set's kiosks not yet done, one at a time (auth is called for each). */
  async function revokeAll(ctx: HandlerContext, row: BulkRow): Promise<BulkRow> {
    const id = row.bulk_action_id;
    const { rows: pending } = await pool.query<{ kiosk_id: string }>(
      "SELECT t.kiosk_id FROM bulk_action_targets t JOIN kiosks k USING (kiosk_id) WHERE t.bulk_action_id = $1 AND NOT t.applied AND k.deleted_at IS NULL ORDER BY t.kiosk_id",
      [id],
    );
    for (const { kiosk_id: kioskId } of pending) {
      try {
        await deps.authDevices.revokeDevice({ kioskId, reason: `bulk action ${id}` }, callOptions(ctx, { onBehalf: true }));
      } catch (err) {
        const e = ConnectError.from(err);
        throw new ConnectError(`could not revoke ${kioskId}'s device credential (${e.rawMessage}); the action stays running: run it again to carry on`, Code.Unavailable);
      }
      await inTransaction(pool, async (tx) => {
        const { rows } = await tx.query<KioskRow>("UPDATE kiosks SET deleted_at = now(), updated_at = now() WHERE kiosk_id = $1 AND deleted_at IS NULL RETURNING *", [kioskId]);
        await tx.query("UPDATE bulk_action_targets SET applied = true WHERE bulk_action_id = $1 AND kiosk_id = $2", [id, kioskId]);
        if (rows[0]) {
          await recordAudit(tx, ctx, "kiosk.deleted", kioskId, { bulkActionId: id });
          await recordRegistryEvent(tx, "deleted", rows[0]);
        }
      });
      deps.changes.publish(kioskId, "kiosk");
    }
    return inTransaction(pool, async (tx) => {
      const { rows } = await tx.query<BulkRow>(
        `UPDATE bulk_actions b SET state = 'done', run_at = now(),
           touched = (SELECT count(*) FROM bulk_action_targets t WHERE t.bulk_action_id = b.bulk_action_id AND t.applied),
           skipped = kiosk_count - (SELECT count(*) FROM bulk_action_targets t WHERE t.bulk_action_id = b.bulk_action_id AND t.applied)
         WHERE bulk_action_id = $1 AND state = 'running' RETURNING *`,
        [id],
      );
      const done = rows[0] ?? (await load(tx, id))!;
      if (rows[0]) await recordAudit(tx, ctx, "bulk.ran", id, { kind: "revoke", kiosks: done.kiosk_count, touched: done.touched, skipped: done.skipped, approvedBy: done.approved_by || null });
      return done;
    });
  }

  /** Runs `row` (locked in a transaction that moved it on): revocations step by step, the rest at once. */
  async function run(ctx: HandlerContext, id: string, allowed: StateName[], who: (row: BulkRow, actor: string) => void, approving: boolean) {
    const actor = describePrincipal(principalOf(ctx));
    const result = await inTransaction(pool, async (tx) => {
      const row = await lockRunnable(tx, id, allowed);
      who(row, actor);
      if (approving) {
        await tx.query("UPDATE bulk_actions SET approved_by = $2 WHERE bulk_action_id = $1", [id, actor]);
        row.approved_by = actor;
        await recordAudit(tx, ctx, "bulk.approved", id, { requestedBy: row.requested_by, kiosks: row.kiosk_count });
      }
      if (row.change_kind === "revoke") {
        if (row.state !== "running") await tx.query("UPDATE bulk_actions SET state = 'running' WHERE bulk_action_id = $1", [id]);
        return { revoke: { ...row, state: "running" as const } };
      }
      return { applied: await apply(tx, ctx, row, actor) };
    });
    if (result.revoke) return { bulkAction: toBulkAction(await revokeAll(ctx, result.revoke)) };
    result.applied!.announce();
    return { bulkAction: toBulkAction(result.applied!.row) };
  }

  return (router: ConnectRouter) =>
    router.service(BulkActionService, {
      async planBulkAction(req, ctx) {
        const { compiled } = requireQuery("query", req.query);
        const change = requireChange("change", req.change, deps.approvalOver);
        const description = req.description === "" ? "" : requireText("description", req.description, { max: 200 });
        const rate = req.ratePerMinute === 0 ? 600 : req.ratePerMinute;
        if (rate < 1 || rate > 6_000_000) throw invalidArgument("rate_per_minute", "must be between 1 and 6000000");
        const actor = describePrincipal(principalOf(ctx));
        const row = await inTransaction(pool, async (tx) => {
          const id = randomUUID();
          await tx.query(
            `INSERT INTO bulk_actions (bulk_action_id, query, change, change_kind, description, rate_per_minute, state, dangerous, kiosk_count, requested_by, expire_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'planned', false, 0, $7, now() + make_interval(secs => $8))`,
            [id, req.query, toBinary(BulkChangeSchema, req.change!), change.kind, description, rate, actor, planValidMs / 1000],
          );
          const params = [...compiled.params];
          const { rowCount } = await tx.query(
            `INSERT INTO bulk_action_targets (bulk_action_id, kiosk_id) SELECT $${params.push(id)}::uuid, k.kiosk_id FROM kiosks k WHERE ${compiled.where}`,
            params,
          );
          const count = rowCount ?? 0;
          if (count === 0) throw new ConnectError("the query matches no kiosk", Code.FailedPrecondition);
          if (change.kind === "revoke" && count > maxRevoke) throw new ConnectError(`a revocation takes at most ${maxRevoke} kiosks at once; the query matches ${count}`, Code.FailedPrecondition);
          const { rows: sampled } = await tx.query<KioskRow>(
            `SELECT k.* FROM bulk_action_targets t JOIN kiosks k USING (kiosk_id) WHERE t.bulk_action_id = $1 ORDER BY k.kiosk_id LIMIT ${sampleSize}`,
            [id],
          );
          const danger = change.danger(count);
          const { rows } = await tx.query<BulkRow>(
            `UPDATE bulk_actions SET kiosk_count = $2, dangerous = $3, danger_reason = $4, state = $5, sample = $6, summary = $7 WHERE bulk_action_id = $1 RETURNING *`,
            [id, count, danger !== "", danger, danger ? "awaiting_approval" : "planned", JSON.stringify(sampled.map((k) => ({ kioskId: k.kiosk_id, name: k.name, change: change.describe(k) }))), `${change.summary}: ${count} kiosk${count === 1 ? "" : "s"}`],
          );
          await recordAudit(tx, ctx, "bulk.planned", id, { query: req.query, change: toJson(BulkChangeSchema, req.change!), kiosks: count, dangerous: danger || null });
          return rows[0]!;
        });
        return { bulkAction: toBulkAction(row) };
      },

      async getBulkAction(req) {
        const id = requireUuid("bulk_action_id", req.bulkActionId);
        const row = await load(pool, id);
        if (!row) throw notFound(id);
        return { bulkAction: toBulkAction(row) };
      },

      async listBulkActions(req) {
        const limit = pageSize("page_size", req.pageSize, 50, 200);
        let state: StateName | undefined;
        if (req.state !== BulkActionState.UNSPECIFIED) {
          state = stateNames.get(req.state);
          if (!state) throw invalidArgument("state", "is not a bulk action state");
        }
        // A plan past its expiry is EXPIRED whatever its stored state (isExpired).
        const where =
          state === "expired"
            ? "WHERE state = 'expired' OR (state IN ('planned', 'awaiting_approval') AND expire_at <= now())"
            : state === "planned" || state === "awaiting_approval"
              ? "WHERE state = $2 AND expire_at > now()"
              : state
                ? "WHERE state = $2"
                : "";
        const { rows } = await pool.query<BulkRow>(
          `SELECT * FROM bulk_actions ${where} ORDER BY created_at DESC, bulk_action_id LIMIT $1`,
          state && state !== "expired" ? [limit, state] : [limit],
        );
        return { bulkActions: rows.map(toBulkAction) };
      },

      runBulkAction: (req, ctx) =>
        run(
          ctx,
          requireUuid("bulk_action_id", req.bulkActionId),
          ["planned", "running"],
          (row, actor) => {
            if (row.state === "running" ? actor !== row.requested_by && actor !== row.approved_by : actor !== row.requested_by)
              throw new ConnectError("only the admin who planned this bulk action runs it", Code.PermissionDenied);
          },
          false,
        ),

      approveBulkAction: (req, ctx) =>
        run(
          ctx,
          requireUuid("bulk_action_id", req.bulkActionId),
          ["awaiting_approval"],
          (row, actor) => {
            if (actor === row.requested_by) throw new ConnectError("a dangerous bulk action needs a second admin: its planner cannot approve it", Code.PermissionDenied);
          },
          true,
        ),

      async rejectBulkAction(req, ctx) {
        const id = requireUuid("bulk_action_id", req.bulkActionId);
        const reason = req.reason === "" ? "" : requireText("reason", req.reason, { max: 200 });
        const actor = describePrincipal(principalOf(ctx));
        const row = await inTransaction(pool, async (tx) => {
          await lockRunnable(tx, id, ["planned", "awaiting_approval"]);
          const { rows } = await tx.query<BulkRow>("UPDATE bulk_actions SET state = 'rejected', rejected_by = $2 WHERE bulk_action_id = $1 RETURNING *", [id, actor]);
          await recordAudit(tx, ctx, "bulk.rejected", id, { reason });
          return rows[0]!;
        });
        return { bulkAction: toBulkAction(row) };
      },
    });
}

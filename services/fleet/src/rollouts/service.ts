// RolloutService: validate, resolve the target, create or move a rollout; the engine
// (engine.ts) does the rest. Who may call what is declared in rollouts.proto.
import { randomUUID } from "node:crypto";
import type { Duration } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  RolloutService,
  RolloutState,
  WindowPolicy,
  type CreateRolloutRequest,
  type GateConfig as GateConfigMessage,
} from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import {
  cursorPatterns,
  decodePageToken,
  describePrincipal,
  encodePageToken,
  inTransaction,
  invalidArgument,
  pageSize,
  principalOf,
  requireText,
  requireUuid,
  type Pool,
  type PoolClient,
} from "@adminkiosk/runtime";
import type { ChangeFeed } from "../changes.js";
import type { Dispatcher } from "../dispatch.js";
import { optionalGroupId, requireTags } from "../kiosk-rules.js";
import { requireQuery } from "../query/index.js";
import { getRelease } from "../releases/index.js";
import { cancelUnacked, rollback, type Effects } from "./engine.js";
import { defaultGate, type GateConfig } from "./gates.js";
import { defaultWaves, defaultWindow, localHour, inWindow, windowSql, type WavePlan } from "./plan.js";
import type { AutoWindows } from "./windows.js";
import { blockedByEventsSql, eventStatus, type BlackoutSettings } from "./blackouts.js";
import {
  insertRollout,
  loadRollout,
  unwrittenSql,
  rolloutAudit,
  rolloutEvent,
  rolloutStateNames,
  toRollout,
  type NewRollout,
  type RolloutRow,
  type RolloutStateName,
  type StoredTarget,
  type WindowPolicyName,
} from "./store.js";

const week = 7 * 24 * 3_600_000;
const durationMs = (d: Duration) => Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);

function requireDuration(field: string, d: Duration | undefined, max: number, fallback: number): number {
  if (!d) return fallback;
  const ms = durationMs(d);
  if (!(ms >= 0 && ms <= max)) throw invalidArgument(field, `must be between 0 and ${max / 3_600_000} hours`);
  return ms;
}

export function requireWaves(field: string, waves: CreateRolloutRequest["waves"]): WavePlan[] {
  if (waves.length === 0) return defaultWaves;
  if (waves.length > 20) throw invalidArgument(field, "must hold at most 20 waves");
  let prev = 0;
  return waves.map((w, i) => {
    if (!(w.percent > prev && w.percent <= 100)) throw invalidArgument(`${field}[${i}].percent`, `must be more than the previous wave's (${prev}) and at most 100`);
    if (i === waves.length - 1 && w.percent !== 100) throw invalidArgument(`${field}[${i}].percent`, "the last wave must reach 100");
    prev = w.percent;
    return { percent: w.percent, bakeMs: requireDuration(`${field}[${i}].bake`, w.bake, week, 3_600_000) };
  });
}

function requireGate(field: string, g: GateConfigMessage | undefined): GateConfig {
  const out: GateConfig = { ...defaultGate };
  if (!g) return out;
  const share = (name: keyof GateConfig & string, proto: string, v: number, max: number) => {
    if (v === 0) return;
    if (!(v > 0 && v <= max)) throw invalidArgument(`${field}.${proto}`, `must be more than 0 and at most ${max}`);
    (out as unknown as Record<string, number>)[name] = v;
  };
  share("maxInstallFailureShare", "max_install_failure_share", g.maxInstallFailureShare, 1);
  share("maxFaultRatio", "max_fault_ratio", g.maxFaultRatio, 100);
  share("minSalesRatio", "min_sales_ratio", g.minSalesRatio, 1);
  share("maxPaymentFailureRatio", "max_payment_failure_ratio", g.maxPaymentFailureRatio, 100);
  share("minConversionRatio", "min_conversion_ratio", g.minConversionRatio, 1);
  if (g.minSamples !== 0) {
    if (!(g.minSamples >= 1 && g.minSamples <= 1_000_000)) throw invalidArgument(`${field}.min_samples`, "must be between 1 and 1000000");
    out.minSamples = g.minSamples;
  }
  if (g.maxWait) out.maxWaitMs = requireDuration(`${field}.max_wait`, g.maxWait, week, 0);
  // Sales are kept 48 hours (sales.ts): a baseline reaches at most 47 hours back.
  if (g.baseline) out.baselineMs = requireDuration(`${field}.baseline`, g.baseline, 47 * 3_600_000, defaultGate.baselineMs);
  return out;
}

function requireHour(field: string, h: number) {
  if (!(Number.isInteger(h) && h >= 0 && h <= 23)) throw invalidArgument(field, "must be an hour 0..23");
  return h;
}

interface Resolved {
  rollout: NewRollout;
  where: { sql: string; params: unknown[] };
  window: { start: number; end: number };
  /** AUTO: each kiosk's window from ai's forecast (windows.ts). */
  perKioskWindow?: Map<string, { start: number; end: number }>;
}

/** Validates a CreateRolloutRequest (field names as `prefix`…) and resolves its release and target. */
async function resolve(pool: Pool, req: CreateRolloutRequest, prefix: string, createdBy: string, auto?: AutoWindows): Promise<Resolved> {
  const f = (name: string) => `${prefix}${name}`;
  const releaseId = requireText(f("release_id"), req.releaseId, { max: 64 });
  const release = await getRelease(pool, releaseId);
  if (!release) throw new ConnectError(`release ${releaseId} not found`, Code.NotFound);
  const t = req.target;
  if (!t) throw invalidArgument(f("target"), "is required");
  const stored: StoredTarget = {};
  const params: unknown[] = [];
  const clauses: string[] = [];
  if (t.query) {
    const { compiled } = requireQuery(f("target.query"), t.query);
    params.push(...compiled.params);
    clauses.push(`(${compiled.where})`);
    stored.query = t.query;
  }
  const add = (v: unknown) => `$${params.push(v)}`;
  clauses.push("k.deleted_at IS NULL");
  if (t.groupId) clauses.push(`k.group_id = ${add((stored.groupId = optionalGroupId(f("target.group_id"), t.groupId)))}`);
  if (t.tags.length) clauses.push(`k.tags @> ${add((stored.tags = requireTags(f("target.tags"), t.tags)))}::text[]`);
  if (t.hardwareModel) clauses.push(`k.hardware_model = ${add((stored.hardwareModel = requireText(f("target.hardware_model"), t.hardwareModel, { max: 64 })))}`);
  const versionCol = release.kind === "app" ? "app_version" : "firmware_version";
  if (t.currentVersion) clauses.push(`k.${versionCol} = ${add((stored.currentVersion = requireText(f("target.current_version"), t.currentVersion, { max: 64 })))}`);
  if (Object.keys(stored).length === 0) throw invalidArgument(f("target"), "must name a group, tags, a hardware model, a current version or a query");
  // A release made for some hardware models goes only to those.
  if (release.hardware_models.length) clauses.push(`k.hardware_model = ANY(${add(release.hardware_models)}::text[])`);
  // Kiosks already running the version are not targeted.
  clauses.push(`k.${versionCol} IS DISTINCT FROM ${add(release.version)}`);

  const waves = requireWaves(f("waves"), req.waves);
  const maxConcurrent = req.maxConcurrent === 0 ? 50 : req.maxConcurrent;
  if (!(maxConcurrent >= 1 && maxConcurrent <= 100_000)) throw invalidArgument(f("max_concurrent"), "must be between 1 and 100000");
  let policy: WindowPolicyName;
  let window: { start: number; end: number };
  let note: string;
  let perKioskWindow: Map<string, { start: number; end: number }> | undefined;
  switch (req.windowPolicy) {
    case WindowPolicy.UNSPECIFIED:
    case WindowPolicy.AUTO:
      policy = "auto";
      window = defaultWindow;
      if (auto) {
        // Each targeted kiosk's quietest hours from ai's forecast (windows.ts), a spread sample first.
        const { rows } = await pool.query<{ kiosk_id: string; group_id: string | null; timezone: string }>(
          `SELECT k.kiosk_id, k.group_id, k.timezone FROM kiosks k WHERE ${clauses.join(" AND ")} ORDER BY hashtext(k.kiosk_id), k.kiosk_id`,
          params,
        );
        const plan = await auto.plan(rows.map((r) => ({ kioskId: r.kiosk_id, groupId: r.group_id, timezone: r.timezone })));
        perKioskWindow = plan.windows;
        note = plan.note;
      } else {
        note = "AUTO: fleet has no ai connection; the default window 02:00-05:00 in each kiosk's time zone applies";
      }
      break;
    case WindowPolicy.EXPLICIT:
      policy = "explicit";
      window = { start: requireHour(f("window_start_hour"), req.windowStartHour), end: requireHour(f("window_end_hour"), req.windowEndHour) };
      note = window.start === window.end ? "EXPLICIT: the whole day" : `EXPLICIT: ${String(window.start).padStart(2, "0")}:00-${String(window.end).padStart(2, "0")}:00 in each kiosk's time zone`;
      break;
    case WindowPolicy.ANY:
      policy = "any";
      window = { start: 0, end: 0 };
      note = "ANY: any hour (emergencies and tests)";
      break;
    default:
      throw invalidArgument(f("window_policy"), "is not a window policy");
  }
  return {
    rollout: {
      releaseId,
      kind: release.kind === "app" ? "APP" : "FIRMWARE",
      version: release.version,
      target: stored,
      waves,
      maxConcurrent,
      windowPolicy: policy,
      windowStartHour: window.start,
      windowEndHour: window.end,
      windowNote: note,
      gate: requireGate(f("gate"), req.gate),
      autoRollback: req.autoRollback,
      description: req.description === "" ? "" : requireText(f("description"), req.description, { max: 200 }),
      createdBy,
    },
    where: { sql: clauses.join(" AND "), params },
    window,
    perKioskWindow,
  };
}

export interface RolloutDeps {
  pool: Pool;
  dispatcher: Dispatcher;
  changes: ChangeFeed;
  /** AUTO windows from ai's forecast; absent: the fallback for every kiosk. */
  autoWindows?: AutoWindows;
  /** Ticketed events as blackouts (blackouts.ts); absent: not checked. */
  events?: BlackoutSettings;
}

export function rolloutRoutes(deps: RolloutDeps) {
  const { pool } = deps;
  const notFound = (id: string) => new ConnectError(`rollout ${id} not found`, Code.NotFound);
  const answer = async (row: RolloutRow) => {
    const [rollout, events] = await Promise.all([toRollout(pool, row), eventStatus(pool, deps.events, row)]);
    for (const w of rollout.waveStatus ?? []) w.blockedByEvents = events.blocked.get(w.index ?? 0) ?? 0;
    return { rollout: { ...rollout, eventNote: events.note } };
  };
  const announce = (fx: Effects) => {
    fx.commands.forEach((c) => deps.changes.publish(c.kiosk_id, "command", c.command_id));
    if (fx.kicked.length) deps.dispatcher.kick(fx.kicked);
  };

  async function move(ctx: HandlerContext, idField: string, from: RolloutStateName[], verb: string, apply: (tx: PoolClient, row: RolloutRow, actor: string, fx: Effects) => Promise<void>) {
    const id = requireUuid("rollout_id", idField);
    const actor = describePrincipal(principalOf(ctx));
    const fx: Effects = { kicked: [], commands: [] };
    const row = await inTransaction(pool, async (tx) => {
      const row = await loadRollout(tx, id, true);
      if (!row) throw notFound(id);
      if (!from.includes(row.state)) throw new ConnectError(`rollout ${id} is ${row.state.replace("_", " ")}; it can be ${verb} only when ${from.join(" or ")}`, Code.FailedPrecondition);
      await apply(tx, row, actor, fx);
      return row;
    });
    announce(fx);
    return answer(row);
  }

  return (router: ConnectRouter) =>
    router.service(RolloutService, {
      async createRollout(req, ctx) {
        const createdBy = describePrincipal(principalOf(ctx));
        const r = await resolve(pool, req, "", createdBy, deps.autoWindows);
        const row = await inTransaction(pool, async (tx) => {
          const id = randomUUID();
          const { row, sizes } = await insertRollout(tx, id, r.rollout, r.where, undefined, r.perKioskWindow);
          if (row.total === 0) throw new ConnectError("the target matches no kiosk that does not already run this version", Code.FailedPrecondition);
          await rolloutEvent(tx, row, "created");
          await rolloutAudit(tx, ctx, "rollout.created", id, { releaseId: row.release_id, version: row.version, target: row.target, kiosks: row.total, waveSizes: sizes, window: row.window_note, autoRollback: row.auto_rollback });
          return row;
        });
        return answer(row);
      },

      async previewRollout(req, ctx) {
        if (!req.rollout) throw invalidArgument("rollout", "is required");
        const r = await resolve(pool, req.rollout, "rollout.", describePrincipal(principalOf(ctx)), deps.autoWindows);
        // The same statements as CreateRollout, in a transaction that is rolled back.
        const client = await pool.connect();
        try {
          await client.query("BEGIN");
          const { row, sizes } = await insertRollout(client, randomUUID(), r.rollout, r.where, undefined, r.perKioskWindow);
          // The kiosks as the new rollout's plan holds them (no wave has started: none has its rows yet).
          const planned = unwrittenSql("$1");
          const versionCol = row.kind === "APP" ? "app_version" : "firmware_version";
          type Sample = { kiosk_id: string; name: string; wave: number; timezone: string; from_version: string; window_start: number; window_end: number };
          const { rows: sample } = await client.query<Sample>(
            `WITH t AS (${planned})
             SELECT s.kiosk_id, k.name, s.wave, s.timezone, k.${versionCol} AS from_version, s.window_start, s.window_end FROM (
               (SELECT DISTINCT ON (t.wave) 0 AS part, t.* FROM t ORDER BY t.wave, t.kiosk_id)
               UNION ALL
               (SELECT 1 AS part, t.* FROM t ORDER BY t.kiosk_id LIMIT 20)
             ) s JOIN kiosks k USING (kiosk_id) ORDER BY s.part, CASE WHEN s.part = 0 THEN s.wave ELSE 0 END, s.kiosk_id`,
            [row.rollout_id],
          );
          const { rows: tz } = await client.query<{ timezone: string; window_start: number; window_end: number; n: number }>(
            `SELECT timezone, window_start, window_end, count(*)::int AS n FROM (${planned}) t GROUP BY timezone, window_start, window_end`,
            [row.rollout_id],
          );
          // Kiosks inside their window now that a ticketed event nearby (or unread events) keeps from installing.
          const blocked =
            deps.events && row.window_policy !== "any"
              ? (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${planned}) t JOIN kiosks k USING (kiosk_id) WHERE ${windowSql("t")} AND ${blockedByEventsSql(deps.events)}`, [row.rollout_id])).rows[0]!.n
              : 0;
          const now = new Date();
          const inNow = (s: { timezone: string; window_start: number; window_end: number }) => inWindow(localHour(now, s.timezone), s.window_start, s.window_end);
          const seen = new Set<string>();
          return {
            total: row.total,
            waveSizes: sizes,
            sample: sample
              .filter((s) => !seen.has(s.kiosk_id) && seen.add(s.kiosk_id))
              .slice(0, 20)
              .map((s) => ({
                kioskId: s.kiosk_id,
                name: s.name,
                wave: s.wave,
                timezone: s.timezone,
                currentVersion: s.from_version,
                inWindowNow: inNow(s),
                windowStartHour: s.window_start,
                windowEndHour: s.window_end,
              })),
            inWindowNow: tz.filter((z) => inNow(z)).reduce((a, z) => a + z.n, 0),
            blockedByEvents: blocked,
            windowNote: row.window_note,
          };
        } finally {
          await client.query("ROLLBACK").catch(() => undefined);
          client.release();
        }
      },

      async getRollout(req) {
        const id = requireUuid("rollout_id", req.rolloutId);
        const row = await loadRollout(pool, id);
        if (!row) throw notFound(id);
        return answer(row);
      },

      async listRollouts(req) {
        const limit = pageSize("page_size", req.pageSize, 50, 200);
        const cursor = decodePageToken("page_token", req.pageToken, { at: cursorPatterns.timestamp, id: cursorPatterns.uuid });
        const params: unknown[] = [];
        const clauses: string[] = [];
        const add = (v: unknown) => `$${params.push(v)}`;
        if (req.state !== RolloutState.UNSPECIFIED) {
          const name = rolloutStateNames.get(req.state);
          if (!name) throw invalidArgument("state", "is not a rollout state");
          clauses.push(`state = ${add(name)}`);
        }
        if (req.releaseId) clauses.push(`release_id = ${add(requireText("release_id", req.releaseId, { max: 64 }))}`);
        if (cursor) clauses.push(`(created_at, rollout_id) < (${add(cursor.at)}::timestamptz, ${add(cursor.id)}::uuid)`);
        const { rows } = await pool.query<RolloutRow>(
          `SELECT * FROM rollouts ${clauses.length ? `WHERE ${clauses.join(" AND ")}` : ""} ORDER BY created_at DESC, rollout_id DESC LIMIT ${add(limit + 1)}`,
          params,
        );
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          rollouts: await Promise.all(page.map((r) => toRollout(pool, r))),
          nextPageToken: rows.length > limit && last ? encodePageToken({ at: last.created_at.toISOString(), id: last.rollout_id }) : "",
        };
      },

      async *watchRollout(req, ctx) {
        const id = requireUuid("rollout_id", req.rolloutId);
        // Read about once a second; sent only when something changed.
        let last = "";
        while (!ctx.signal.aborted) {
          const row = await loadRollout(pool, id);
          if (!row) throw notFound(id);
          const message = await answer(row);
          const key = JSON.stringify(message, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
          if (key !== last) {
            last = key;
            yield message;
          }
          await pause(1_000, ctx.signal);
        }
      },

      pauseRollout: (req, ctx) =>
        move(ctx, req.rolloutId, ["running"], "paused", async (tx, row, actor) => {
          const { rows } = await tx.query<RolloutRow>("UPDATE rollouts SET state = 'paused', stop_reason = $2, updated_at = now() WHERE rollout_id = $1 RETURNING *", [row.rollout_id, `paused by ${actor}`]);
          Object.assign(row, rows[0]);
          await rolloutEvent(tx, row, "paused");
          await rolloutAudit(tx, ctx, "rollout.paused", row.rollout_id, { wave: row.current_wave });
        }),

      resumeRollout: (req, ctx) =>
        move(ctx, req.rolloutId, ["paused"], "resumed", async (tx, row) => {
          // A wave its gate stopped: resuming overrides the gate and goes on to the next wave.
          const { rowCount } = await tx.query("UPDATE rollout_waves SET state = 'gate_passed' WHERE rollout_id = $1 AND wave = $2 AND state = 'gate_failed'", [row.rollout_id, row.current_wave]);
          const { rows } = await tx.query<RolloutRow>(
            "UPDATE rollouts SET state = 'running', stop_reason = '', current_wave = current_wave + $2, updated_at = now() WHERE rollout_id = $1 RETURNING *",
            [row.rollout_id, rowCount ? 1 : 0],
          );
          Object.assign(row, rows[0]);
          await rolloutEvent(tx, row, "resumed", { reason: rowCount ? "the failed gate overridden" : "" });
          await rolloutAudit(tx, ctx, "rollout.resumed", row.rollout_id, { wave: row.current_wave, gateOverridden: Boolean(rowCount) });
        }),

      cancelRollout: (req, ctx) =>
        move(ctx, req.rolloutId, ["running", "paused"], "canceled", async (tx, row, actor, fx) => {
          await cancelUnacked(tx, row.rollout_id, fx);
          const { rows } = await tx.query<RolloutRow>(
            "UPDATE rollouts SET state = 'canceled', stop_reason = CASE WHEN stop_reason = '' OR stop_reason LIKE 'paused by %' THEN $2 ELSE stop_reason || '; ' || $2 END, finished_at = now(), updated_at = now() WHERE rollout_id = $1 RETURNING *",
            [row.rollout_id, `canceled by ${actor}`],
          );
          Object.assign(row, rows[0]);
          await rolloutEvent(tx, row, "canceled");
          await rolloutAudit(tx, ctx, "rollout.canceled", row.rollout_id, { commandsCanceled: fx.commands.length });
        }),

      rollbackRollout: (req, ctx) =>
        // A canceled rollout's updated kiosks stay updated: it can be rolled back too.
        move(ctx, req.rolloutId, ["running", "paused", "completed", "canceled"], "rolled back", async (tx, row, actor, fx) => {
          if (row.rollback_of) throw new ConnectError("a rollback is not rolled back; roll out the version you want instead", Code.FailedPrecondition);
          await rollback(tx, ctx, row, `by ${actor}`, fx);
        }),
    });
}

/** Resolves after `ms`, or at once when the call is aborted. */
const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

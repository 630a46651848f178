// The rollout engine: every ROLLOUT_TICK_MS each fleet replica claims running rollouts
// (FOR UPDATE SKIP LOCKED, so one replica moves a rollout at a time and any carries on
// after another stopped) and moves each along, all its state in PostgreSQL:
//   1. kiosks' install reports (kiosk_updates, releases/) and their commands' ends move
//      targets from sent to installed, failed, reverted or rejected;
//   2. the current wave sends InstallRelease commands (the commands table and the
//      dispatcher, as jobs do) to its pending kiosks that are connected, inside their
//      maintenance window now, up to max_concurrent installs in flight for the rollout;
//      kiosks of earlier waves still waiting for their window go too when it opens;
//   3. a wave whose kiosks are done (none in flight, none of it sendable now, at least one
//      finished) bakes; after its bake its gate compares the updated kiosks with the
//      control cohort (gates.ts). A gate that passes starts the next wave (or completes the
//      rollout once every kiosk is done); one that fails pauses the rollout with the
//      reason, and with auto_rollback starts a rollback. Install failures are also checked
//      while a wave installs or bakes: once more of the wave failed than the gate allows
//      whatever the rest does, it stops at once.
import { randomUUID } from "node:crypto";
import { inTransaction, type Logger, type Pool, type PoolClient } from "@adminkiosk/runtime";
import type { ChangeFeed } from "../changes.js";
import type { Dispatcher } from "../dispatch.js";
import { getRelease, installActionBytes } from "../releases/index.js";
import { defaultGate, describeMetric, judge, measure, type GateMetric, type GateReader } from "./gates.js";
import { blockedByEventsSql, type BlackoutSettings } from "./blackouts.js";
import { windowSql } from "./plan.js";
import { insertRollout, materialise, rolloutAudit, rolloutEvent, waveColumns, type RolloutRow, type WaveRow } from "./store.js";

export interface EngineOptions {
  pool: Pool;
  dispatcher: Dispatcher;
  changes: ChangeFeed;
  log: Logger;
  /** Where gates read their counts (kiosk_facts' bucket) and ai's forecast. */
  gates: GateReader;
  tickMs: number;
  /** An install command's TTL: a kiosk that has not finished by then counts as failed. */
  installTtlMs: number;
  /** Ticketed events keep installs of AUTO and EXPLICIT rollouts away from kiosks nearby (blackouts.ts); absent: not checked. */
  events?: BlackoutSettings;
  /** Most rollout_targets rows a tick writes for a rollout (store.ts materialise); materialiseChunk by default. */
  materialiseChunk?: number;
}

/** SQL: target t of `row` (kiosk k) may be sent its install now — inside its window and, unless ANY, not in an event's blackout. */
export const installableNowSql = (row: Pick<RolloutRow, "window_policy">, events: BlackoutSettings | undefined) =>
  row.window_policy === "any" || !events ? windowSql("t") : `(${windowSql("t")} AND NOT ${blockedByEventsSql(events)})`;

interface Effects {
  kicked: string[];
  commands: { kiosk_id: string; command_id: string }[];
}

/** Moves `row` (locked by the caller's transaction) one step along. */
export async function advance(tx: PoolClient, row: RolloutRow, o: Pick<EngineOptions, "installTtlMs" | "log" | "pool" | "gates" | "events" | "materialiseChunk">, fx: Effects, now = new Date()): Promise<void> {
  const id = row.rollout_id;
  await syncTargets(tx, id);
  const w = row.current_wave;
  if (w >= row.waves.length) {
    // Every wave passed: kiosks still waiting for their window get theirs, then it completes.
    const unwritten = await materialise(tx, row, row.waves.length - 1, o.materialiseChunk);
    await send(tx, row, row.waves.length - 1, o, fx);
    const { rows } = await tx.query<{ open: number }>("SELECT count(*)::int AS open FROM rollout_targets WHERE rollout_id = $1 AND state IN ('pending', 'sent')", [id]);
    if (rows[0]!.open === 0 && unwritten === 0) await finish(tx, row, "completed", "");
    return;
  }
  const { rows: waveRows } = await tx.query<WaveRow>(`SELECT ${waveColumns} FROM rollout_waves WHERE rollout_id = $1 AND wave = $2`, [id, w]);
  const wave = waveRows[0]!;
  const plan = row.waves[w]!;
  if (wave.state === "pending") {
    await tx.query("UPDATE rollout_waves SET state = 'installing', started_at = now() WHERE rollout_id = $1 AND wave = $2", [id, w]);
    await rolloutEvent(tx, row, "wave_started", { wave: w });
    await rolloutAudit(tx, undefined, "rollout.wave_started", id, { wave: w, percent: plan.percent });
    wave.state = "installing";
  }
  // The wave's kiosks get their rows as it starts (a large wave a chunk a tick), and those of
  // earlier waves whose rows a failed gate left unwritten before it was overridden.
  let unwritten = 0;
  if (wave.state === "installing") unwritten = await materialise(tx, row, w, o.materialiseChunk);
  if (wave.state === "installing" || wave.state === "baking") {
    // Install failures decide early: more failed than the share allows of the whole wave (its
    // planned size, rows written or not).
    const { rows: c } = await tx.query<{ skipped: number; failed: number }>(
      `SELECT count(*) FILTER (WHERE state = 'skipped')::int AS skipped, count(*) FILTER (WHERE state IN ('failed', 'reverted', 'rejected'))::int AS failed
       FROM rollout_targets WHERE rollout_id = $1 AND wave = $2`,
      [id, w],
    );
    const size = wave.kiosks - c[0]!.skipped;
    const { failed } = c[0]!;
    if (size > 0 && failed / size > row.gate.maxInstallFailureShare) {
      const m = await measure(tx, o.gates, id, w, wave.started_at ?? now, { started: row.created_at, baselineMs: row.gate.baselineMs ?? defaultGate.baselineMs }, now);
      await gateFailed(tx, row, w, judge(m, row.gate), m, o, fx);
      return;
    }
  }
  if (wave.state === "installing") {
    await send(tx, row, w, o, fx);
    const { rows } = await tx.query<{ in_flight: number; sendable: number; finished: number; left: number }>(
      `SELECT count(*) FILTER (WHERE t.state = 'sent')::int AS in_flight,
              count(*) FILTER (WHERE t.state = 'pending' AND t.wave = $2 AND k.connected AND ${installableNowSql(row, o.events)})::int AS sendable,
              count(*) FILTER (WHERE t.wave = $2 AND t.state IN ('installed', 'failed', 'reverted', 'rejected'))::int AS finished,
              count(*) FILTER (WHERE t.wave = $2 AND t.state IN ('pending', 'sent'))::int AS left
       FROM rollout_targets t JOIN kiosks k USING (kiosk_id) WHERE t.rollout_id = $1 AND t.wave <= $2`,
      [id, w],
    );
    const s = rows[0]!;
    // Baking starts once every row of the wave is written, nothing of it is in flight or sendable
    // and something finished (a wave whose kiosks are all outside their window waits for them);
    // an empty wave bakes at once.
    if (unwritten === 0 && s.in_flight === 0 && s.sendable === 0 && (s.finished > 0 || s.left === 0)) {
      await tx.query("UPDATE rollout_waves SET state = 'baking', bake_started_at = now() WHERE rollout_id = $1 AND wave = $2", [id, w]);
    }
    return;
  }
  if (wave.state === "baking") {
    const bakeStart = wave.bake_started_at!;
    const baked = now.getTime() - bakeStart.getTime();
    if (baked < plan.bakeMs) return;
    // Read through the pool, its statements side by side (the targets were synced and
    // committed before this transaction: startRolloutEngine's tick).
    const m = await measure(o.pool, o.gates, id, w, bakeStart, { started: row.created_at, baselineMs: row.gate.baselineMs ?? defaultGate.baselineMs }, now);
    const metrics = judge(m, row.gate);
    // A rollback is not gated (its install failures still stop it, above).
    if (!row.rollback_of && metrics.some((x) => x.judged && !x.passed)) {
      await gateFailed(tx, row, w, metrics, m, o, fx);
      return;
    }
    const maxWait = row.gate.maxWaitMs ?? 3 * plan.bakeMs;
    const unjudged = metrics.filter((x) => !x.judged && x.name !== "install_failure_share");
    // A rollback (no control cohort of its own) is not gated.
    if (unjudged.length > 0 && baked < plan.bakeMs + maxWait && !row.rollback_of) return;
    await tx.query(
      "UPDATE rollout_waves SET state = 'gate_passed', gate_at = now(), metrics = $3, updated_kiosks = $4, control_kiosks = $5 WHERE rollout_id = $1 AND wave = $2",
      [id, w, JSON.stringify(metrics), m.updated.kiosks, m.control.kiosks],
    );
    const note = unjudged.length ? `not judged (too few samples): ${unjudged.map((x) => x.name).join(", ")}` : "";
    await rolloutEvent(tx, row, "gate_passed", { wave: w, metrics, reason: note });
    await rolloutAudit(tx, undefined, "rollout.gate_passed", id, { wave: w, metrics, note });
    const { rows: next } = await tx.query<RolloutRow>("UPDATE rollouts SET current_wave = current_wave + 1, updated_at = now() WHERE rollout_id = $1 RETURNING *", [id]);
    Object.assign(row, next[0]);
  }
}

/**
 * Kiosks' reports and their commands' ends, onto the rollout's targets. Only the reports that
 * changed since the rollout's last read (reports_synced_at, less a minute for batches that
 * were still committing then) are joined, so a tick's cost follows what kiosks reported, not
 * how many kiosks the rollout has.
 */
export async function syncTargets(tx: Pool | PoolClient, id: string) {
  const { rows: mark } = await tx.query<{ since: Date | null; at: Date }>("SELECT reports_synced_at AS since, clock_timestamp() AS at FROM rollouts WHERE rollout_id = $1", [id]);
  const since = mark[0]?.since ? new Date(mark[0].since.getTime() - 60_000) : null;
  await tx.query(
    `UPDATE rollout_targets t SET state = u.state, finished_at = u.reported_at, error = u.error,
       from_version = CASE WHEN u.from_version <> '' THEN u.from_version ELSE t.from_version END
     FROM kiosk_updates u
     WHERE t.rollout_id = $1 AND t.state IN ('sent', 'installed') AND u.kiosk_id = t.kiosk_id AND u.release_id = t.release_id
       AND u.rollout_id = $1::text AND ($2::timestamptz IS NULL OR u.updated_at >= $2) AND u.state IN ('installed', 'failed', 'reverted', 'rejected') AND u.state <> t.state`,
    [id, since],
  );
  await tx.query("UPDATE rollouts SET reports_synced_at = $2 WHERE rollout_id = $1", [id, mark[0]?.at ?? new Date()]);
  // A kiosk deleted from the fleet before its install was sent is skipped (it would wait for
  // good); the waves not started yet are looked at when they start.
  await tx.query(
    `UPDATE rollout_targets t SET state = 'skipped', error = 'the kiosk was deleted'
     FROM kiosks k WHERE t.rollout_id = $1 AND t.state = 'pending' AND t.wave <= (SELECT current_wave FROM rollouts WHERE rollout_id = $1)
       AND k.kiosk_id = t.kiosk_id AND k.deleted_at IS NOT NULL`,
    [id],
  );
  // A command that ended without an install report: failed, expired or canceled.
  await tx.query(
    `UPDATE rollout_targets t SET state = 'failed', finished_at = COALESCE(c.finished_at, now()),
       error = 'the install command ' || c.state || CASE WHEN c.error_message <> '' THEN ': ' || c.error_message ELSE '' END
     FROM commands c
     WHERE t.rollout_id = $1 AND t.state = 'sent' AND c.command_id = t.command_id AND c.state IN ('failed', 'expired', 'canceled')`,
    [id],
  );
}

/** Sends installs to pending kiosks of waves up to `w` that may get one now, within max_concurrent. */
async function send(tx: PoolClient, row: RolloutRow, w: number, o: Pick<EngineOptions, "installTtlMs" | "events">, fx: Effects) {
  const id = row.rollout_id;
  const { rows: flight } = await tx.query<{ n: number }>("SELECT count(*)::int AS n FROM rollout_targets WHERE rollout_id = $1 AND state = 'sent'", [id]);
  const room = row.max_concurrent - flight[0]!.n;
  if (room <= 0) return;
  const { rows: releases } = await tx.query<{ release_id: string }>(
    "SELECT DISTINCT release_id FROM rollout_targets WHERE rollout_id = $1 AND state = 'pending' AND wave <= $2",
    [id, w],
  );
  if (releases.length === 0) return;
  const ids: string[] = [];
  const actions: Buffer[] = [];
  for (const { release_id } of releases) {
    const release = await getRelease(tx, release_id);
    if (!release) {
      await tx.query("UPDATE rollout_targets SET state = 'skipped', error = 'the release no longer exists' WHERE rollout_id = $1 AND release_id = $2 AND state = 'pending'", [id, release_id]);
      continue;
    }
    ids.push(release_id);
    actions.push(Buffer.from(installActionBytes(release, id)));
  }
  const { rows } = await tx.query<{ kiosk_id: string; command_id: string }>(
    `WITH pick AS (
       SELECT t.kiosk_id, t.release_id FROM rollout_targets t JOIN kiosks k USING (kiosk_id)
       WHERE t.rollout_id = $1 AND t.state = 'pending' AND t.wave <= $2 AND k.deleted_at IS NULL AND k.connected AND ${installableNowSql(row, o.events)}
       ORDER BY t.wave, t.kiosk_id LIMIT $3
     ), cmd AS (
       INSERT INTO commands (command_id, kiosk_id, action, action_kind, state, issued_by, expire_at)
       SELECT gen_random_uuid(), p.kiosk_id, a.action, 'installRelease', 'queued', $4, now() + make_interval(secs => $5::float8 / 1000)
       FROM pick p JOIN unnest($6::text[], $7::bytea[]) AS a(release_id, action) USING (release_id)
       RETURNING command_id, kiosk_id
     )
     UPDATE rollout_targets t SET state = 'sent', command_id = cmd.command_id, sent_at = now()
     FROM cmd WHERE t.rollout_id = $1 AND t.kiosk_id = cmd.kiosk_id RETURNING t.kiosk_id, cmd.command_id`,
    [id, w, room, `rollout:${id}`, o.installTtlMs, ids, actions],
  );
  fx.commands.push(...rows);
  fx.kicked.push(...rows.map((r) => r.kiosk_id));
}

async function gateFailed(tx: PoolClient, row: RolloutRow, w: number, metrics: GateMetric[], m: Awaited<ReturnType<typeof measure>>, o: Pick<EngineOptions, "installTtlMs" | "log">, fx: Effects) {
  const id = row.rollout_id;
  const failing = metrics.filter((x) => x.judged && !x.passed);
  const reason = `gate failed at wave ${w + 1}${w === 0 ? " (canary)" : ""}: ${failing.map((x) => describeMetric(x, m)).join("; ")}`;
  await tx.query(
    "UPDATE rollout_waves SET state = 'gate_failed', gate_at = now(), metrics = $3, updated_kiosks = $4, control_kiosks = $5 WHERE rollout_id = $1 AND wave = $2",
    [id, w, JSON.stringify(metrics), m.updated.kiosks, m.control.kiosks],
  );
  const { rows } = await tx.query<RolloutRow>("UPDATE rollouts SET state = 'paused', stop_reason = $2, updated_at = now() WHERE rollout_id = $1 RETURNING *", [id, reason]);
  Object.assign(row, rows[0]);
  await rolloutEvent(tx, row, "gate_failed", { wave: w, metrics, reason });
  await rolloutEvent(tx, row, "paused", { wave: w, reason });
  await rolloutAudit(tx, undefined, "rollout.gate_failed", id, { wave: w, reason, metrics });
  o.log.warn({ rollout: id, wave: w, reason }, "rollout stopped by its gate");
  if (row.auto_rollback) await rollback(tx, undefined, row, "auto_rollback after the failed gate", fx);
}

/** Cancels the rollout's installs no kiosk acknowledged yet; their targets are skipped. */
export async function cancelUnacked(tx: PoolClient, id: string, fx: Effects) {
  const { rows } = await tx.query<{ kiosk_id: string; command_id: string }>(
    `UPDATE commands c SET state = 'canceled', finished_at = now() FROM rollout_targets t
     WHERE t.rollout_id = $1 AND t.state = 'sent' AND c.command_id = t.command_id AND c.state IN ('queued', 'sent')
     RETURNING c.kiosk_id, c.command_id`,
    [id],
  );
  await tx.query("UPDATE rollout_targets SET state = 'skipped', error = 'canceled before the kiosk took it' WHERE rollout_id = $1 AND command_id = ANY($2::uuid[])", [
    id,
    rows.map((r) => r.command_id),
  ]);
  await tx.query("UPDATE rollout_targets SET state = 'skipped' WHERE rollout_id = $1 AND state = 'pending'", [id]);
  fx.commands.push(...rows);
}

/** Ends the rollout as `state` (completed, canceled, rolled_back). */
export async function finish(tx: PoolClient, row: RolloutRow, state: "completed" | "canceled" | "rolled_back", reason: string) {
  const { rows } = await tx.query<RolloutRow>(
    "UPDATE rollouts SET state = $2, stop_reason = CASE WHEN $3 = '' THEN stop_reason ELSE $3 END, finished_at = now(), updated_at = now() WHERE rollout_id = $1 RETURNING *",
    [row.rollout_id, state, reason],
  );
  Object.assign(row, rows[0]);
  if (state === "completed") {
    await rolloutEvent(tx, row, "completed");
    await rolloutAudit(tx, undefined, "rollout.completed", row.rollout_id, { total: row.total });
  }
}

/**
 * Ends `row` and creates its rollback: every kiosk it updated (or is updating) goes back to
 * the version it ran before (the release of that version; a kiosk without one is skipped,
 * saying so), in one wave, at any hour, not gated.
 */
export async function rollback(tx: PoolClient, ctx: Parameters<typeof rolloutAudit>[1], row: RolloutRow, why: string, fx: Effects): Promise<string> {
  const id = row.rollout_id;
  await syncTargets(tx, id);
  await cancelUnacked(tx, id, fx);
  const versionCol = row.kind === "APP" ? "app" : "firmware";
  const { rows: back } = await tx.query<{ kiosk_id: string; from_version: string; release_id: string | null }>(
    `SELECT t.kiosk_id, t.from_version, r.release_id FROM rollout_targets t
     LEFT JOIN releases r ON r.kind = $2 AND r.version = t.from_version
     WHERE t.rollout_id = $1 AND t.state IN ('installed', 'sent')`,
    [id, versionCol],
  );
  const perKiosk = new Map(back.filter((b) => b.release_id).map((b) => [b.kiosk_id, { releaseId: b.release_id!, fromVersion: row.version }]));
  const missing = back.filter((b) => !b.release_id);
  const newId = randomUUID();
  const { row: created } = await insertRollout(
    tx,
    newId,
    {
      releaseId: row.release_id,
      kind: row.kind,
      version: "",
      target: { rollbackOf: id },
      waves: [{ percent: 100, bakeMs: 0 }],
      maxConcurrent: row.max_concurrent,
      windowPolicy: "any",
      windowStartHour: 0,
      windowEndHour: 0,
      windowNote: "a rollback goes at any hour",
      gate: row.gate,
      autoRollback: false,
      description: `rollback of ${id}`,
      createdBy: `rollback:${id}`,
      rollbackOf: id,
    },
    { sql: "k.kiosk_id = ANY($1::text[])", params: [[...perKiosk.keys()]] },
    perKiosk,
  );
  const note = missing.length ? `; ${missing.length} kiosk(s) skipped: no release of their previous version (${[...new Set(missing.map((m) => m.from_version || "unknown"))].join(", ")})` : "";
  const { rows } = await tx.query<RolloutRow>(
    `UPDATE rollouts SET state = 'rolled_back', rollback_rollout_id = $2, finished_at = COALESCE(finished_at, now()), updated_at = now(),
       stop_reason = CASE WHEN stop_reason = '' THEN $3 ELSE stop_reason || '; ' || $3 END
     WHERE rollout_id = $1 RETURNING *`,
    [id, newId, `rolled back (${why})${note}`],
  );
  Object.assign(row, rows[0]);
  await rolloutEvent(tx, row, "rolled_back", { reason: `${why}${note}` });
  await rolloutAudit(tx, ctx, "rollout.rolled_back", id, { rollbackRolloutId: newId, kiosks: perKiosk.size, skipped: missing.length, why });
  await rolloutEvent(tx, created, "created");
  await rolloutAudit(tx, ctx, "rollout.created", newId, { rollbackOf: id, kiosks: perKiosk.size });
  return newId;
}

/** Runs the engine until stop(). */
export function startRolloutEngine(o: EngineOptions) {
  const tick = async () => {
    const fx: Effects = { kicked: [], commands: [] };
    // Reports first, committed (idempotent, any replica): a gate read through the pool sees them.
    const { rows: running } = await o.pool.query<{ rollout_id: string }>("SELECT rollout_id FROM rollouts WHERE state = 'running' ORDER BY created_at LIMIT 20");
    for (const r of running) await syncTargets(o.pool, r.rollout_id);
    await inTransaction(o.pool, async (tx) => {
      const { rows } = await tx.query<RolloutRow>("SELECT * FROM rollouts WHERE state = 'running' ORDER BY created_at LIMIT 20 FOR UPDATE SKIP LOCKED");
      for (const row of rows) await advance(tx, row, o, fx);
    });
    fx.commands.forEach((c) => o.changes.publish(c.kiosk_id, "command", c.command_id));
    if (fx.kicked.length) o.dispatcher.kick(fx.kicked);
  };
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    tick()
      .catch((err: unknown) => o.log.warn({ err }, "rollout engine tick failed"))
      .finally(() => (running = false));
  }, o.tickMs);
  timer.unref();
  return { stop: () => clearInterval(timer), tick };
}

export type { Effects };

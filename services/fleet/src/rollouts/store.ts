// Rollouts in fleet's PostgreSQL (migration 1798100000000_rollouts.sql): creating one
// (target resolved once, each kiosk's wave from a hash of kiosk and rollout ids, its own
// maintenance window), reading one with its waves' counts, and its events and audit.
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import {
  GateMetricSchema,
  RolloutEventSchema,
  RolloutState,
  WindowPolicy,
  type GateMetric as GateMetricMessage,
  type RolloutSchema,
} from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { enqueueEvent, recordAuditEvent, type Pool, type PoolClient } from "@adminkiosk/runtime";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { defaultGate, type GateConfig, type GateMetric } from "./gates.js";
import { unwrittenSql, waveEnds, waveSizes, windowSql, type WavePlan } from "./plan.js";

export { unwrittenSql };

export type Db = Pool | PoolClient;
export type RolloutStateName = "running" | "paused" | "completed" | "canceled" | "rolled_back";
export type WindowPolicyName = "auto" | "explicit" | "any";
export type WaveStateName = "pending" | "installing" | "baking" | "gate_passed" | "gate_failed";
export type TargetState = "pending" | "sent" | "installed" | "failed" | "reverted" | "rejected" | "skipped";

export const rolloutStates: Record<RolloutStateName, RolloutState> = {
  running: RolloutState.RUNNING,
  paused: RolloutState.PAUSED,
  completed: RolloutState.COMPLETED,
  canceled: RolloutState.CANCELED,
  rolled_back: RolloutState.ROLLED_BACK,
};
export const rolloutStateNames = new Map(Object.entries(rolloutStates).map(([n, s]) => [s, n as RolloutStateName]));
export const windowPolicies: Record<WindowPolicyName, WindowPolicy> = { auto: WindowPolicy.AUTO, explicit: WindowPolicy.EXPLICIT, any: WindowPolicy.ANY };

export interface StoredTarget {
  groupId?: string;
  tags?: string[];
  hardwareModel?: string;
  currentVersion?: string;
  query?: string;
  /** A rollback: the rollout it undoes (its updated kiosks). */
  rollbackOf?: string;
}

export interface RolloutRow {
  rollout_id: string;
  release_id: string;
  kind: "APP" | "FIRMWARE";
  version: string;
  target: StoredTarget;
  waves: WavePlan[];
  max_concurrent: number;
  window_policy: WindowPolicyName;
  window_start_hour: number;
  window_end_hour: number;
  window_note: string;
  gate: GateConfig;
  auto_rollback: boolean;
  state: RolloutStateName;
  current_wave: number;
  total: number;
  stop_reason: string;
  rollback_rollout_id: string | null;
  rollback_of: string | null;
  description: string;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

export interface WaveRow {
  rollout_id: string;
  wave: number;
  /** The wave's size as planned, and how many of its kiosks have their rollout_targets row (in plan order). */
  kiosks: number;
  materialised: number;
  state: WaveStateName;
  started_at: Date | null;
  bake_started_at: Date | null;
  gate_at: Date | null;
  metrics: GateMetric[];
  updated_kiosks: number;
  control_kiosks: number;
}

export const waveColumns = "rollout_id, wave, state, started_at, bake_started_at, gate_at, metrics, updated_kiosks, control_kiosks, kiosks, materialised";

export type RolloutEventKind = "created" | "wave_started" | "gate_passed" | "gate_failed" | "paused" | "resumed" | "canceled" | "rolled_back" | "completed";

/** Subject of a rollout event in stream FLEET. */
export const rolloutSubject = (rolloutId: string, kind: RolloutEventKind) => `fleet.rollout.${rolloutId}.${kind}`;

export const toGateMetric = (m: GateMetric): GateMetricMessage =>
  create(GateMetricSchema, {
    name: m.name,
    updated: m.updated,
    control: m.control,
    threshold: m.threshold,
    updatedSamples: BigInt(m.updatedSamples),
    controlSamples: BigInt(m.controlSamples),
    passed: m.passed,
    judged: m.judged,
    signal: m.signal,
  });

/** Adds a fleet.rollout.<id>.<kind> event to the outbox in `tx`. */
export async function rolloutEvent(tx: PoolClient, row: RolloutRow, kind: RolloutEventKind, extra: { wave?: number; reason?: string; metrics?: GateMetric[] } = {}) {
  await enqueueEvent(
    tx,
    rolloutSubject(row.rollout_id, kind),
    RolloutEventSchema,
    create(RolloutEventSchema, {
      rolloutId: row.rollout_id,
      kind,
      releaseId: row.release_id,
      version: row.version,
      wave: extra.wave ?? row.current_wave,
      state: rolloutStates[row.state],
      reason: extra.reason ?? row.stop_reason,
      gateMetrics: (extra.metrics ?? []).map(toGateMetric),
      time: timestampFromDate(new Date()),
    }),
  );
}

/** An audit entry: by the caller when there is one, else by fleet's rollout engine. */
export async function rolloutAudit(tx: PoolClient, ctx: HandlerContext | undefined, type: string, subject: string, details: Record<string, unknown>) {
  if (ctx) return recordAuditEvent(tx, ctx, type, subject, details);
  await tx.query("INSERT INTO audit_events (type, actor, subject, details) VALUES ($1, 'fleet:rollout-engine', $2, $3)", [type, subject, JSON.stringify(details)]);
}

export interface TargetCounts {
  wave: number;
  state: TargetState;
  waiting: boolean;
  n: number;
}

export async function loadRollout(db: Db, rolloutId: string, forUpdate = false): Promise<RolloutRow | undefined> {
  const { rows } = await db.query<RolloutRow>(`SELECT * FROM rollouts WHERE rollout_id = $1 ${forUpdate ? "FOR UPDATE" : ""}`, [rolloutId]);
  return rows[0];
}

/** The rollout as the contract has it, with per-wave counts (waiting_for_window: pending kiosks outside their window now). */
export async function toRollout(db: Db, row: RolloutRow): Promise<MessageInitShape<typeof RolloutSchema>> {
  const [{ rows: waves }, { rows: counts }] = await Promise.all([
    db.query<WaveRow>(`SELECT ${waveColumns} FROM rollout_waves WHERE rollout_id = $1 ORDER BY wave`, [row.rollout_id]),
    db.query<TargetCounts>(
      `SELECT t.wave, t.state, (t.state = 'pending' AND NOT ${windowSql("t")}) AS waiting, count(*)::int AS n
       FROM rollout_targets t WHERE t.rollout_id = $1 GROUP BY 1, 2, 3
       UNION ALL
       -- Kiosks of waves not written yet (plans): pending, or skipped once the rollout ended.
       SELECT t.wave, $2, $2 = 'pending' AND NOT ${windowSql("t")}, sum(t.n)::int FROM (
         SELECT u.wave, u.timezone, u.window_start, u.window_end, count(*) AS n FROM (${unwrittenSql("$1")}) u GROUP BY 1, 2, 3, 4
       ) t GROUP BY 1, 2, 3`,
      [row.rollout_id, ["running", "paused"].includes(row.state) ? "pending" : "skipped"],
    ),
  ]);
  const waveStatus = row.waves.map((w, i) => {
    const wr = waves.find((x) => x.wave === i);
    const of = (s: TargetState, waiting?: boolean) => counts.filter((c) => c.wave === i && c.state === s && (waiting === undefined || c.waiting === waiting)).reduce((a, c) => a + c.n, 0);
    const kiosks = counts.filter((c) => c.wave === i).reduce((a, c) => a + c.n, 0);
    return {
      index: i,
      percent: w.percent,
      bake: durationFromMs(w.bakeMs),
      kiosks,
      pending: of("pending", false),
      waitingForWindow: of("pending", true),
      installing: of("sent"),
      installed: of("installed"),
      failed: of("failed") + of("rejected"),
      reverted: of("reverted"),
      skipped: of("skipped"),
      state: wr?.state ?? "pending",
      startTime: wr?.started_at ? timestampFromDate(wr.started_at) : undefined,
      bakeStartTime: wr?.bake_started_at ? timestampFromDate(wr.bake_started_at) : undefined,
      gateTime: wr?.gate_at ? timestampFromDate(wr.gate_at) : undefined,
      gateMetrics: (wr?.metrics ?? []).map(toGateMetric),
      updatedKiosks: wr?.updated_kiosks ?? 0,
      controlKiosks: wr?.control_kiosks ?? 0,
    };
  });
  return {
    rolloutId: row.rollout_id,
    releaseId: row.release_id,
    kind: row.kind,
    version: row.version,
    target: {
      groupId: row.target.groupId ?? "",
      tags: row.target.tags ?? [],
      hardwareModel: row.target.hardwareModel ?? "",
      currentVersion: row.target.currentVersion ?? "",
      query: row.target.query ?? "",
    },
    waves: row.waves.map((w) => ({ percent: w.percent, bake: durationFromMs(w.bakeMs) })),
    maxConcurrent: row.max_concurrent,
    windowPolicy: windowPolicies[row.window_policy],
    windowStartHour: row.window_start_hour,
    windowEndHour: row.window_end_hour,
    windowNote: row.window_note,
    gate: {
      maxInstallFailureShare: row.gate.maxInstallFailureShare,
      maxFaultRatio: row.gate.maxFaultRatio,
      minSalesRatio: row.gate.minSalesRatio,
      maxPaymentFailureRatio: row.gate.maxPaymentFailureRatio,
      minConversionRatio: row.gate.minConversionRatio,
      minSamples: row.gate.minSamples,
      maxWait: row.gate.maxWaitMs === null ? undefined : durationFromMs(row.gate.maxWaitMs),
      baseline: durationFromMs(row.gate.baselineMs ?? defaultGate.baselineMs),
    },
    autoRollback: row.auto_rollback,
    state: rolloutStates[row.state],
    currentWave: row.current_wave,
    waveStatus,
    total: row.total,
    stopReason: row.stop_reason,
    rollbackRolloutId: row.rollback_rollout_id ?? "",
    rollbackOf: row.rollback_of ?? "",
    description: row.description,
    createdBy: row.created_by,
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
    finishTime: row.finished_at ? timestampFromDate(row.finished_at) : undefined,
  };
}

export interface NewRollout {
  releaseId: string;
  kind: "APP" | "FIRMWARE";
  version: string;
  target: StoredTarget;
  waves: WavePlan[];
  maxConcurrent: number;
  windowPolicy: WindowPolicyName;
  windowStartHour: number;
  windowEndHour: number;
  windowNote: string;
  gate: GateConfig;
  autoRollback: boolean;
  description: string;
  createdBy: string;
  rollbackOf?: string;
}

/**
 * The statement that selects the target's kiosks, ordered by the rollout's hash (the
 * canary is a spread sample). `where` is over kiosks k with its own parameters.
 */
export const orderedTargetSql = (where: string, rolloutIdParam: string) =>
  `SELECT k.kiosk_id, k.timezone, k.app_version, k.firmware_version,
          row_number() OVER (ORDER BY hashtextextended(k.kiosk_id, hashtext(${rolloutIdParam}::text)::bigint), k.kiosk_id) - 1 AS position
   FROM kiosks k WHERE ${where}`;

/**
 * Inserts the rollout, its waves and each wave's plan: its kiosks in the rollout's hash order,
 * with their time zones (and, when given, each one's window or release), as arrays in
 * rollout_wave_plans — no row per kiosk yet: a wave's rows are written when it starts
 * (materialise). Every kiosk gets the rollout's window hours unless `perKioskWindow` has its
 * own. Answers the row and the wave sizes.
 */
export async function insertRollout(
  tx: PoolClient,
  rolloutId: string,
  r: NewRollout,
  where: { sql: string; params: unknown[] },
  perKioskRelease?: Map<string, { releaseId: string; fromVersion: string }>,
  /** AUTO: each kiosk's own window (windows.ts); kiosks not in it get the rollout's hours. */
  perKioskWindow?: Map<string, { start: number; end: number }>,
): Promise<{ row: RolloutRow; sizes: number[] }> {
  const params = [...where.params];
  const idParam = `$${params.push(rolloutId)}`;
  const { rows: count } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM kiosks k WHERE ${where.sql}`, where.params);
  const ends = waveEnds(count[0]!.n, r.waves);
  const sizes = waveSizes(ends);
  await tx.query(
    `INSERT INTO rollouts (rollout_id, release_id, kind, version, target, waves, max_concurrent, window_policy, window_start_hour, window_end_hour,
       window_note, gate, auto_rollback, state, total, description, created_by, rollback_of)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'running', $14, $15, $16, $17)`,
    [rolloutId, r.releaseId, r.kind, r.version, r.target, JSON.stringify(r.waves), r.maxConcurrent, r.windowPolicy, r.windowStartHour, r.windowEndHour,
      r.windowNote, r.gate, r.autoRollback, count[0]!.n, r.description, r.createdBy, r.rollbackOf ?? null],
  );
  await tx.query("INSERT INTO rollout_waves (rollout_id, wave, kiosks) SELECT $1, g - 1, s FROM unnest($2::int[]) WITH ORDINALITY AS x(s, g)", [rolloutId, sizes]);
  const pEnds = `$${params.push(ends.slice(0, -1))}::int[]`;
  // Parallel arrays only when some kiosk differs from the rollout's own values.
  const perKiosk = (ids: string[] | undefined, values: unknown[], type: string, pick: string) => {
    if (!ids) return { join: "", agg: "NULL" };
    const pIds = `$${params.push(ids)}::text[]`;
    const pValues = `$${params.push(values)}::${type}[]`;
    return { join: `LEFT JOIN unnest(${pIds}, ${pValues}) AS ${pick}(kiosk_id, v) USING (kiosk_id)`, pick: `${pick}.v` };
  };
  const releases = perKioskRelease ? [...perKioskRelease.entries()] : undefined;
  const windows = perKioskWindow ? [...perKioskWindow.entries()] : undefined;
  const rel = perKiosk(releases?.map(([k]) => k), releases?.map(([, v]) => v.releaseId) ?? [], "text", "pr");
  const from = perKiosk(releases?.map(([k]) => k), releases?.map(([, v]) => v.fromVersion) ?? [], "text", "pf");
  const ws = perKiosk(windows?.map(([k]) => k), windows?.map(([, v]) => v.start) ?? [], "smallint", "pws");
  const we = perKiosk(windows?.map(([k]) => k), windows?.map(([, v]) => v.end) ?? [], "smallint", "pwe");
  // The rollout's own hours (validated integers 0..23) for kiosks the map leaves out.
  const pStart = `${Number(r.windowStartHour)}::smallint`;
  const pEnd = `${Number(r.windowEndHour)}::smallint`;
  const agg = (x: { pick?: string }, fallback: string) => (x.pick ? `array_agg(COALESCE(${x.pick}, ${fallback}) ORDER BY o.position)` : "NULL");
  // The statement sorts the target twice (hash order, then by wave): in memory, not spilled to
  // disk at the default work_mem (100,000 kiosks: ~5 MB a sort); as it was after it.
  const { rows: mem } = await tx.query<{ was: string }>("SELECT current_setting('work_mem') AS was, set_config('work_mem', '64MB', true)");
  const { rows: planned } = await tx.query<{ wave: number; n: number }>(
    `INSERT INTO rollout_wave_plans (rollout_id, wave, kiosk_ids, timezones, window_starts, window_ends, release_ids, from_versions)
     SELECT ${idParam}::uuid, width_bucket(o.position, ${pEnds}), array_agg(o.kiosk_id ORDER BY o.position), array_agg(o.timezone ORDER BY o.position),
            ${agg(ws, pStart)}, ${agg(we, pEnd)}, ${agg(rel, "NULL::text")}, ${agg(from, "NULL::text")}
     FROM (${orderedTargetSql(where.sql, idParam)}) o ${rel.join} ${from.join} ${ws.join} ${we.join}
     GROUP BY 2
     RETURNING wave, cardinality(kiosk_ids) AS n`,
    params,
  );
  await tx.query("SELECT set_config('work_mem', $1, true)", [mem[0]!.was]);
  // Kiosks that changed between the count and the plan (read committed): the waves as planned.
  const got = sizes.map((_, i) => planned.find((p) => p.wave === i)?.n ?? 0);
  if (got.some((n, i) => n !== sizes[i])) {
    await tx.query("UPDATE rollout_waves w SET kiosks = x.n FROM unnest($2::int[]) WITH ORDINALITY AS x(n, g) WHERE w.rollout_id = $1 AND w.wave = x.g - 1", [rolloutId, got]);
    await tx.query("UPDATE rollouts SET total = $2 WHERE rollout_id = $1", [rolloutId, got.reduce((a, b) => a + b, 0)]);
  }
  const { rows } = await tx.query<RolloutRow>("SELECT * FROM rollouts WHERE rollout_id = $1", [rolloutId]);
  return { row: rows[0]!, sizes: got };
}

/** Most rows a tick writes for a rollout: a wave's rows go in chunks of this many, one per tick. */
export const materialiseChunk = 10_000;

/**
 * Writes the rollout_targets rows of the kiosks of waves 0..`upTo` not written yet, in plan
 * order, at most `limit` (materialiseChunk) — a wave's start, or the next chunk of a large
 * wave. A kiosk deleted since the rollout was created is written as skipped; each row's
 * from_version is the version the kiosk runs now (a rollback's: the one it is rolled back
 * from). Answers how many kiosks of those waves are left to write.
 */
export async function materialise(tx: PoolClient, row: RolloutRow, upTo: number, limit = materialiseChunk): Promise<number> {
  const { rows: open } = await tx.query<{ wave: number; left: number }>(
    "SELECT wave, kiosks - materialised AS left FROM rollout_waves WHERE rollout_id = $1 AND wave <= $2 AND materialised < kiosks ORDER BY wave",
    [row.rollout_id, upTo],
  );
  let budget = limit;
  let left = open.reduce((a, w) => a + w.left, 0);
  const versionCol = row.kind === "APP" ? "app_version" : "firmware_version";
  for (const w of open) {
    if (budget <= 0) break;
    const take = Math.min(budget, w.left);
    const { rows } = await tx.query<{ n: number }>(
      `WITH u AS (
         SELECT p.wave, x.* FROM rollout_waves w JOIN rollout_wave_plans p USING (rollout_id, wave),
           unnest(p.kiosk_ids[w.materialised + 1:w.materialised + $3], p.timezones[w.materialised + 1:w.materialised + $3],
                  p.window_starts[w.materialised + 1:w.materialised + $3], p.window_ends[w.materialised + 1:w.materialised + $3],
                  p.release_ids[w.materialised + 1:w.materialised + $3], p.from_versions[w.materialised + 1:w.materialised + $3])
             AS x(kiosk_id, timezone, ws, we, release_id, from_version)
         WHERE w.rollout_id = $1 AND w.wave = $2
       ), ins AS (
         INSERT INTO rollout_targets (rollout_id, kiosk_id, wave, state, error, release_id, from_version, window_start, window_end, timezone)
         SELECT $1, u.kiosk_id, u.wave,
                CASE WHEN k.kiosk_id IS NULL OR k.deleted_at IS NOT NULL THEN 'skipped' ELSE 'pending' END,
                CASE WHEN k.kiosk_id IS NULL OR k.deleted_at IS NOT NULL THEN 'the kiosk was deleted' ELSE '' END,
                COALESCE(u.release_id, r.release_id), COALESCE(u.from_version, k.${versionCol}, ''),
                COALESCE(u.ws, r.window_start_hour), COALESCE(u.we, r.window_end_hour), u.timezone
         FROM u CROSS JOIN rollouts r LEFT JOIN kiosks k ON k.kiosk_id = u.kiosk_id
         WHERE r.rollout_id = $1
         -- In key order: the primary key's index grows at its end instead of splitting pages all over.
         ORDER BY u.kiosk_id
         RETURNING 1
       )
       UPDATE rollout_waves SET materialised = materialised + (SELECT count(*) FROM ins) WHERE rollout_id = $1 AND wave = $2 RETURNING (SELECT count(*) FROM ins)::int AS n`,
      [row.rollout_id, w.wave, take],
    );
    const n = rows[0]?.n ?? 0;
    budget -= take;
    left -= n;
    // A plan shorter than its count (cannot happen unless edited by hand): do not loop on it.
    if (n < take) {
      await tx.query("UPDATE rollout_waves SET kiosks = materialised WHERE rollout_id = $1 AND wave = $2", [row.rollout_id, w.wave]);
      left -= w.left - n;
    }
  }
  return left;
}

export const normalizeGate = (g: Partial<GateConfig>): GateConfig => ({ ...defaultGate, ...g });

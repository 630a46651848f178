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
import { waveEnds, windowSql, type WavePlan } from "./plan.js";

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
  state: WaveStateName;
  started_at: Date | null;
  bake_started_at: Date | null;
  gate_at: Date | null;
  metrics: GateMetric[];
  updated_kiosks: number;
  control_kiosks: number;
}

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
    db.query<WaveRow>("SELECT * FROM rollout_waves WHERE rollout_id = $1 ORDER BY wave", [row.rollout_id]),
    db.query<TargetCounts>(
      `SELECT t.wave, t.state, (t.state = 'pending' AND NOT ${windowSql("t")}) AS waiting, count(*)::int AS n
       FROM rollout_targets t WHERE t.rollout_id = $1 GROUP BY 1, 2, 3`,
      [row.rollout_id],
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
 * Inserts the rollout, its waves and its targets (each in its wave, with its window; for
 * every kiosk the same local hours, `window`). Answers the row and the wave sizes.
 */
export async function insertRollout(
  tx: PoolClient,
  rolloutId: string,
  r: NewRollout,
  where: { sql: string; params: unknown[] },
  window: { start: number; end: number },
  perKioskRelease?: Map<string, { releaseId: string; fromVersion: string }>,
  /** AUTO: each kiosk's own window (windows.ts); kiosks not in it get `window`. */
  perKioskWindow?: Map<string, { start: number; end: number }>,
): Promise<{ row: RolloutRow; sizes: number[] }> {
  const params = [...where.params];
  const idParam = `$${params.push(rolloutId)}`;
  const { rows: count } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM kiosks k WHERE ${where.sql}`, where.params);
  const total = count[0]!.n;
  const ends = waveEnds(total, r.waves);
  await tx.query(
    `INSERT INTO rollouts (rollout_id, release_id, kind, version, target, waves, max_concurrent, window_policy, window_start_hour, window_end_hour,
       window_note, gate, auto_rollback, state, total, description, created_by, rollback_of)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'running', $14, $15, $16, $17)`,
    [rolloutId, r.releaseId, r.kind, r.version, r.target, JSON.stringify(r.waves), r.maxConcurrent, r.windowPolicy, r.windowStartHour, r.windowEndHour,
      r.windowNote, r.gate, r.autoRollback, total, r.description, r.createdBy, r.rollbackOf ?? null],
  );
  await tx.query("INSERT INTO rollout_waves (rollout_id, wave) SELECT $1, g FROM generate_series(0, $2::int - 1) g", [rolloutId, r.waves.length]);
  const versionCol = r.kind === "APP" ? "app_version" : "firmware_version";
  const pIds = `$${params.push(perKioskRelease ? [...perKioskRelease.keys()] : [])}::text[]`;
  const pRel = `$${params.push(perKioskRelease ? [...perKioskRelease.values()].map((v) => v.releaseId) : [])}::text[]`;
  const pFrom = `$${params.push(perKioskRelease ? [...perKioskRelease.values()].map((v) => v.fromVersion) : [])}::text[]`;
  const pEnds = `$${params.push(ends.slice(0, -1))}::int[]`;
  const pRelease = `$${params.push(r.releaseId)}`;
  const pStart = `$${params.push(window.start)}::smallint`;
  const pEnd = `$${params.push(window.end)}::smallint`;
  const pwIds = `$${params.push(perKioskWindow ? [...perKioskWindow.keys()] : [])}::text[]`;
  const pwStart = `$${params.push(perKioskWindow ? [...perKioskWindow.values()].map((w) => w.start) : [])}::smallint[]`;
  const pwEnd = `$${params.push(perKioskWindow ? [...perKioskWindow.values()].map((w) => w.end) : [])}::smallint[]`;
  await tx.query(
    `INSERT INTO rollout_targets (rollout_id, kiosk_id, wave, release_id, from_version, window_start, window_end, timezone)
     SELECT ${idParam}::uuid, o.kiosk_id, width_bucket(o.position, ${pEnds}), COALESCE(pk.release_id, ${pRelease}), COALESCE(pk.from_version, o.${versionCol}),
            COALESCE(pw.window_start, ${pStart}), COALESCE(pw.window_end, ${pEnd}), o.timezone
     FROM (${orderedTargetSql(where.sql, idParam)}) o
     LEFT JOIN unnest(${pIds}, ${pRel}, ${pFrom}) AS pk(kiosk_id, release_id, from_version) USING (kiosk_id)
     LEFT JOIN unnest(${pwIds}, ${pwStart}, ${pwEnd}) AS pw(kiosk_id, window_start, window_end) USING (kiosk_id)
     -- In key order: the primary key's index grows at its end instead of splitting pages all over.
     ORDER BY o.kiosk_id`,
    params,
  );
  const { rows } = await tx.query<RolloutRow>("SELECT * FROM rollouts WHERE rollout_id = $1", [rolloutId]);
  return { row: rows[0]!, sizes: ends.map((e, i) => e - (i === 0 ? 0 : ends[i - 1]!)) };
}

export const normalizeGate = (g: Partial<GateConfig>): GateConfig => ({ ...defaultGate, ...g });

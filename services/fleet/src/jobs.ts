// Bulk jobs: one command for many kiosks. The target is resolved to a list of kiosks
// once (job_targets, in rollout order); a runner creates the commands at the job's
// rate (a token bucket kept in the job row, so any fleet replica can carry on where
// another stopped: jobs are claimed with FOR UPDATE SKIP LOCKED) and aborts the job
// when its failures pass the threshold, canceling what no kiosk has acknowledged.
import { randomUUID } from "node:crypto";
import { fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { CommandActionSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { CreateJobRequestSchema, JobService, JobState, type JobSchema, type JobTarget } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import {
  cursorPatterns,
  decodePageToken,
  describePrincipal,
  encodePageToken,
  inTransaction,
  invalidArgument,
  pageSize,
  principalOf,
  requestHash,
  requireKioskId,
  requireText,
  requireUuid,
  type Logger,
  type Pool,
  type PoolClient,
} from "@adminkiosk/runtime";
import { recordAudit, type AuditType } from "./audit.js";
import type { ChangeFeed } from "./changes.js";
import { optionalIdempotencyKey, requireAction, requireSameRequestHex, requireTtl } from "./commands.js";
import { sqlReady, type Dispatcher, type ReadyCommand } from "./dispatch.js";
import { optionalGroupId, requireTags } from "./kiosk-rules.js";
import { allowanceNow, maxCommandsPerTick, takeFromBucket } from "./rollout.js";
import { cancelableCommandStates, jobTransitions, progressBucket, sqlStates, type CommandStateName, type JobStateName, type JobTransition } from "./states.js";
import { kioskWhere, presenceFilter, type KioskFilter } from "./store.js";

type Db = Pool | PoolClient;

const jobStates: Record<JobStateName, JobState> = {
  running: JobState.RUNNING,
  paused: JobState.PAUSED,
  completed: JobState.COMPLETED,
  aborted: JobState.ABORTED,
  canceled: JobState.CANCELED,
};
const jobStateNames = new Map(Object.entries(jobStates).map(([n, s]) => [s, n as JobStateName]));

interface JobRow {
  job_id: string;
  description: string;
  action: Buffer;
  action_kind: string;
  target: StoredTarget;
  rate_per_minute: number;
  max_failures: number | null;
  command_ttl_ms: string;
  state: JobStateName;
  total: number;
  dispatched: number;
  created_by: string;
  request_hash: string | null;
  end_reason: string;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

interface StoredTarget {
  groupId?: string;
  tag?: string;
  kioskIds?: string[];
  status?: number;
  query?: string;
}

interface Progress {
  dispatched: number;
  succeeded: number;
  failed: number;
  inFlight: number;
  canceled: number;
}

async function progressOf(db: Db, jobIds: string[]): Promise<Map<string, Progress>> {
  const { rows } = await db.query<{ job_id: string; state: CommandStateName; n: string }>(
    "SELECT job_id, state, count(*) AS n FROM commands WHERE job_id = ANY($1) GROUP BY job_id, state",
    [jobIds],
  );
  const out = new Map<string, Progress>();
  for (const id of jobIds) out.set(id, { dispatched: 0, succeeded: 0, failed: 0, inFlight: 0, canceled: 0 });
  for (const r of rows) {
    const p = out.get(r.job_id)!;
    const n = Number(r.n);
    p.dispatched += n;
    p[progressBucket(r.state)] += n;
  }
  return out;
}

function toJob(r: JobRow, p: Progress): MessageInitShape<typeof JobSchema> {
  return {
    jobId: r.job_id,
    description: r.description,
    action: fromBinary(CommandActionSchema, r.action),
    target: { groupId: r.target.groupId ?? "", tag: r.target.tag ?? "", kioskIds: r.target.kioskIds ?? [], status: r.target.status ?? 0, query: r.target.query ?? "" },
    ratePerMinute: r.rate_per_minute,
    maxFailures: r.max_failures ?? undefined,
    commandTtl: durationFromMs(Number(r.command_ttl_ms)),
    state: jobStates[r.state],
    progress: { total: r.total, dispatched: p.dispatched, succeeded: p.succeeded, failed: p.failed, inFlight: p.inFlight, canceled: p.canceled },
    createdBy: r.created_by,
    createTime: timestampFromDate(r.created_at),
    updateTime: timestampFromDate(r.updated_at),
    finishTime: r.finished_at ? timestampFromDate(r.finished_at) : undefined,
    endReason: r.end_reason,
  };
}

function requireTarget(field: string, t: JobTarget | undefined): { stored: StoredTarget; filter: KioskFilter; kioskIds?: string[] } {
  if (!t) throw invalidArgument(field, "is required");
  const stored: StoredTarget = {};
  const filter: KioskFilter = {};
  if (t.groupId) filter.groupId = stored.groupId = optionalGroupId(`${field}.group_id`, t.groupId);
  if (t.tag) filter.tag = stored.tag = requireTags(`${field}.tag`, [t.tag])[0];
  if (t.query) filter.query = stored.query = requireText(`${field}.query`, t.query, { max: 100 });
  if (t.status !== KioskStatus.UNSPECIFIED) {
    if (!(t.status in presenceFilter)) throw invalidArgument(`${field}.status`, "is not a kiosk status");
    filter.presence = presenceFilter[t.status];
    stored.status = t.status;
  }
  let kioskIds: string[] | undefined;
  if (t.kioskIds.length > 0) {
    if (t.kioskIds.length > 100_000) throw invalidArgument(`${field}.kiosk_ids`, "must hold at most 100000 ids");
    kioskIds = [...new Set(t.kioskIds.map((id, i) => requireKioskId(`${field}.kiosk_ids[${i}]`, id)))];
    stored.kioskIds = kioskIds;
  }
  if (Object.keys(stored).length === 0) throw invalidArgument(field, "must name a group, a tag, kiosk ids, a status or a query");
  return { stored, filter, kioskIds };
}

export interface JobDeps {
  pool: Pool;
  dispatcher: Dispatcher;
  changes: ChangeFeed;
}

export function jobRoutes(deps: JobDeps) {
  const { pool } = deps;
  const notFound = (id: string) => new ConnectError(`job ${id} not found`, Code.NotFound);
  const load = async (db: Db, jobId: string) => {
    const { rows } = await db.query<JobRow>("SELECT * FROM jobs WHERE job_id = $1", [jobId]);
    return rows[0];
  };
  const withProgress = async (row: JobRow) => ({ job: toJob(row, (await progressOf(pool, [row.job_id])).get(row.job_id)!) });

  /** Moves a job along `t` (from one of its states to its target); anything else is FAILED_PRECONDITION. */
  async function transition(ctx: HandlerContext, jobIdField: string, t: JobTransition, audit: AuditType) {
    const jobId = requireUuid("job_id", jobIdField);
    const { from, to } = t;
    const { row, canceled } = await inTransaction(pool, async (tx) => {
      const { rows } = await tx.query<JobRow>(
        `UPDATE jobs SET state = $2, updated_at = now(), allowance_at = now(),
           finished_at = CASE WHEN $2 IN ('canceled') THEN now() ELSE finished_at END,
           end_reason = CASE WHEN $2 = 'canceled' THEN 'canceled by ' || $4 ELSE end_reason END
         WHERE job_id = $1 AND state = ANY($3) RETURNING *`,
        [jobId, to, [...from], describePrincipal(principalOf(ctx))],
      );
      if (!rows[0]) {
        const current = await load(tx, jobId);
        if (!current) throw notFound(jobId);
        throw new ConnectError(`job ${jobId} is ${current.state}; it can be ${t.verb} only when ${from.join(" or ")}`, Code.FailedPrecondition);
      }
      let canceled: { command_id: string; kiosk_id: string }[] = [];
      if (to === "canceled") canceled = await cancelUnacked(tx, jobId);
      await recordAudit(tx, ctx, audit, jobId, canceled.length ? { commandsCanceled: canceled.length } : {});
      return { row: rows[0], canceled };
    });
    // Notices only once the change is committed: a watcher reading on a notice must see it,
    // and a transaction that failed announces nothing.
    canceled.forEach((c) => deps.changes.publish(c.kiosk_id, "command", c.command_id));
    return withProgress(row);
  }

  return (router: ConnectRouter) =>
    router.service(JobService, {
      async createJob(req, ctx) {
        const kind = requireAction("action", req.action);
        const target = requireTarget("target", req.target);
        const rate = req.ratePerMinute === 0 ? 60 : req.ratePerMinute;
        if (rate < 1 || rate > 6_000_000) throw invalidArgument("rate_per_minute", "must be between 1 and 6000000 (100000 a second)");
        if (req.maxFailures !== undefined && req.maxFailures < 0) throw invalidArgument("max_failures", "must not be negative");
        const ttlMs = requireTtl("command_ttl", req.commandTtl);
        const description = req.description === "" ? "" : requireText("description", req.description, { max: 200 });
        const key = optionalIdempotencyKey(req.idempotencyKey);
        const createdBy = describePrincipal(principalOf(ctx));
        const hash = requestHash("CreateJob", CreateJobRequestSchema, req).toString("hex");
        const row = await inTransaction(pool, async (tx) => {
          if (key) {
            // Serializes retries with the same key; the loser finds the winner's job.
            await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`job:${createdBy}:${key}`]);
            const { rows } = await tx.query<JobRow>("SELECT * FROM jobs WHERE created_by = $1 AND idempotency_key = $2", [createdBy, key]);
            if (rows[0]) {
              requireSameRequestHex(rows[0].request_hash, hash);
              return rows[0];
            }
          }
          const params: unknown[] = [];
          let where = kioskWhere(target.filter, params);
          if (target.kioskIds) where += ` AND kiosk_id = ANY($${params.push(target.kioskIds)})`;
          const jobId = randomUUID();
          const { rows: inserted } = await tx.query<JobRow>(
            `INSERT INTO jobs (job_id, description, action, action_kind, target, rate_per_minute, max_failures, command_ttl_ms, state, total,
               created_by, idempotency_key, request_hash, allowance)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running', 0, $9, $10, $11, 1) RETURNING *`,
            [jobId, description, toBinary(CommandActionSchema, req.action!), kind, target.stored, rate, req.maxFailures ?? null, ttlMs, createdBy, key, hash],
          );
          const { rowCount } = await tx.query(
            `INSERT INTO job_targets (job_id, position, kiosk_id)
             SELECT $${params.push(jobId)}, (row_number() OVER (ORDER BY kiosk_id)) - 1, kiosk_id FROM kiosks WHERE ${where}`,
            params,
          );
          if (!rowCount) throw new ConnectError("the target matches no kiosk", Code.FailedPrecondition);
          const { rows } = await tx.query<JobRow>("UPDATE jobs SET total = $2 WHERE job_id = $1 RETURNING *", [jobId, rowCount]);
          await recordAudit(tx, ctx, "job.created", jobId, { action: kind, target: target.stored, kiosks: rowCount, ratePerMinute: rate, maxFailures: req.maxFailures ?? null });
          return rows[0] ?? inserted[0]!;
        });
        return withProgress(row);
      },

      async getJob(req) {
        const jobId = requireUuid("job_id", req.jobId);
        const row = await load(pool, jobId);
        if (!row) throw notFound(jobId);
        return withProgress(row);
      },

      async listJobs(req) {
        const limit = pageSize("page_size", req.pageSize, 50, 500);
        const cursor = decodePageToken("page_token", req.pageToken, { at: cursorPatterns.timestamp, id: cursorPatterns.uuid });
        const params: unknown[] = [];
        const clauses: string[] = [];
        const add = (v: unknown) => `$${params.push(v)}`;
        if (req.state !== JobState.UNSPECIFIED) {
          const name = jobStateNames.get(req.state);
          if (!name) throw invalidArgument("state", "is not a job state");
          clauses.push(`state = ${add(name)}`);
        }
        if (cursor) clauses.push(`(created_at, job_id) < (${add(cursor.at)}::timestamptz, ${add(cursor.id)}::uuid)`);
        const { rows } = await pool.query<JobRow>(
          `SELECT * FROM jobs ${clauses.length ? `WHERE ${clauses.join(" AND ")}` : ""} ORDER BY created_at DESC, job_id DESC LIMIT ${add(limit + 1)}`,
          params,
        );
        const page = rows.slice(0, limit);
        const progress = await progressOf(pool, page.map((r) => r.job_id));
        const last = page.at(-1);
        return {
          jobs: page.map((r) => toJob(r, progress.get(r.job_id)!)),
          nextPageToken: rows.length > limit && last ? encodePageToken({ at: last.created_at.toISOString(), id: last.job_id }) : "",
        };
      },

      async *watchJob(req, ctx) {
        const jobId = requireUuid("job_id", req.jobId);
        // Command notices (any kiosk's) say "look again"; the job is read at most once a
        // second, and every 2 s anyway (the runner completes a job without a notice).
        let dirty = false;
        let wake: (() => void) | undefined;
        const off = deps.changes.onAny((c) => {
          if (c.kind !== "command") return;
          dirty = true;
          wake?.();
        });
        try {
          let last = "";
          while (!ctx.signal.aborted) {
            const row = await load(pool, jobId);
            if (!row) throw notFound(jobId);
            const message = await withProgress(row);
            const key = JSON.stringify([row.state, row.end_reason, message.job.progress]);
            if (key !== last) {
              last = key;
              yield message;
            }
            const started = Date.now();
            if (!dirty) {
              await Promise.race([new Promise<void>((r) => (wake = r)), pause(2_000, ctx.signal)]);
              wake = undefined;
            }
            dirty = false;
            await pause(Math.max(0, 1_000 - (Date.now() - started)), ctx.signal);
          }
        } finally {
          off();
        }
      },

      pauseJob: (req, ctx) => transition(ctx, req.jobId, jobTransitions.pause, "job.paused"),
      resumeJob: (req, ctx) => transition(ctx, req.jobId, jobTransitions.resume, "job.resumed"),
      cancelJob: (req, ctx) => transition(ctx, req.jobId, jobTransitions.cancel, "job.canceled"),
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

async function cancelUnacked(tx: PoolClient, jobId: string) {
  const { rows } = await tx.query<{ command_id: string; kiosk_id: string }>(
    `UPDATE commands SET state = 'canceled', finished_at = now() WHERE job_id = $1 AND state IN (${sqlStates(cancelableCommandStates)}) RETURNING command_id, kiosk_id`,
    [jobId],
  );
  return rows;
}

/**
 * Rolls running jobs forward every `tickMs`: checks the failure threshold, completes
 * finished jobs, and creates as many commands as the rate allows (a token bucket
 * holding at most one second's worth, at least one: rollout.ts).
 *
 * A broadcast is ticks of up to maxCommandsPerTick, one after the other. Handing a tick's
 * commands over (building 10,000 deliveries, the change notices) is ~0.2 s of fleet's event
 * loop under load, and the next tick's transaction waited behind it: between two ticks of a
 * 100k broadcast PostgreSQL sat idle for 0.25–0.35 s. So when a tick leaves more to create, its
 * commands (committed) are handed over just after the next tick has sent its INSERT (or at the
 * latest `handOverWithinMs` later): PostgreSQL inserts the next 10,000 while fleet builds the
 * deliveries of the last.
 */
export function startJobRunner(o: { pool: Pool; dispatcher: Dispatcher; changes: ChangeFeed; tickMs: number; log: Logger }) {
  /** A committed tick's commands not handed over yet (see above): `handOver` runs them once. */
  let pending: (() => void) | undefined;
  const handOverPending = () => {
    const f = pending;
    pending = undefined;
    f?.();
  };
  /** Whether a job took its most for one tick and has more to create now; its commands are in `pending`. */
  const tick = async (): Promise<boolean> => {
    let more = false;
    const ready: ReadyCommand[] = [];
    const changed: { kiosk_id: string; command_id: string }[] = [];
    await inTransaction(o.pool, async (tx) => {
      const { rows: jobs } = await tx.query<JobRow & { allowance: number; elapsed_seconds: number }>(
        `SELECT *, extract(epoch FROM now() - allowance_at)::float8 AS elapsed_seconds
         FROM jobs WHERE state = 'running' ORDER BY created_at LIMIT 20 FOR UPDATE SKIP LOCKED`,
      );
      if (jobs.length === 0) return;
      // Counting a job's commands (a scan of up to all its kiosks' rows) only where a tick needs
      // it: a failure threshold to check, or every command created (complete?). A broadcast
      // without a threshold creates its 100,000 commands without counting them ten times.
      const counted = jobs.filter((j) => j.max_failures !== null || j.dispatched >= j.total).map((j) => j.job_id);
      const progress = counted.length ? await progressOf(tx, counted) : new Map<string, Progress>();
      for (const job of jobs) {
        const p = progress.get(job.job_id) ?? { dispatched: 0, succeeded: 0, failed: 0, inFlight: 0, canceled: 0 };
        if (job.max_failures !== null && p.failed > job.max_failures) {
          const canceled = await cancelUnacked(tx, job.job_id);
          changed.push(...canceled);
          await tx.query(
            "UPDATE jobs SET state = 'aborted', finished_at = now(), updated_at = now(), end_reason = $2 WHERE job_id = $1",
            [job.job_id, `${p.failed} kiosks failed, more than the ${job.max_failures} allowed; ${canceled.length} unacknowledged commands canceled`],
          );
          o.log.warn({ job: job.job_id, failed: p.failed, maxFailures: job.max_failures }, "job aborted: too many failures");
          continue;
        }
        if (job.dispatched >= job.total) {
          if (p.inFlight === 0) await tx.query("UPDATE jobs SET state = 'completed', finished_at = now(), updated_at = now() WHERE job_id = $1", [job.job_id]);
          continue;
        }
        const { take: n, left } = takeFromBucket(allowanceNow(job.allowance, job.elapsed_seconds, job.rate_per_minute), job.total - job.dispatched);
        if (n <= 0) continue;
        if (n === maxCommandsPerTick && job.dispatched + n < job.total) more = true;
        // With each command, its kiosk's stream: the dispatcher sends them without reading them back (handOver).
        const inserting = tx.query<ReadyCommand>(
          `WITH c AS (
             INSERT INTO commands (command_id, kiosk_id, action, action_kind, state, issued_by, job_id, expire_at)
             SELECT gen_random_uuid(), t.kiosk_id, $2, $3, 'queued', $4, $1, now() + make_interval(secs => $5::float8 / 1000)
             FROM job_targets t JOIN kiosks k USING (kiosk_id)
             WHERE t.job_id = $1 AND t.position >= $6 AND t.position < $6 + $7 AND k.deleted_at IS NULL
             ORDER BY t.position
             RETURNING command_id, kiosk_id, action, expire_at, traceparent)
           SELECT c.*, ${sqlReady} FROM c JOIN kiosks k USING (kiosk_id)`,
          [job.job_id, job.action, job.action_kind, job.created_by, job.command_ttl_ms, job.dispatched, n],
        );
        // The INSERT is on its way to PostgreSQL (pg writes it at once): the tick before's hand-over now.
        handOverPending();
        const { rows } = await inserting;
        await tx.query("UPDATE jobs SET dispatched = dispatched + $2, allowance = $3::float8, allowance_at = now(), updated_at = now() WHERE job_id = $1", [
          job.job_id,
          n,
          left,
        ]);
        ready.push(...rows);
        changed.push(...rows);
      }
    });
    // Reached only once the transaction committed (a failed one throws past this). The tick
    // before's, if this one sent no INSERT, first: a kiosk's commands are handed over in order.
    handOverPending();
    pending = () => {
      changed.forEach((c) => o.changes.publish(c.kiosk_id, "command", c.command_id));
      if (ready.length) o.dispatcher.handOver(ready);
    };
    return more;
  };
  const handOverWithinMs = 50;
  let running = false;
  let stopped = false;
  const run = () => {
    if (running || stopped) return;
    running = true;
    tick()
      .catch((err: unknown) => {
        o.log.warn({ err }, "job runner tick failed");
        return false;
      })
      .then((more) => {
        running = false;
        if (!more || stopped) return handOverPending();
        // The next tick at once; this one's commands go when it has sent its INSERT, or soon anyway.
        const latest = setTimeout(handOverPending, handOverWithinMs);
        const next = pending;
        pending = () => {
          clearTimeout(latest);
          next?.();
        };
        run();
      });
  };
  const timer = setInterval(run, o.tickMs);
  timer.unref();
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
      handOverPending();
    },
  };
}

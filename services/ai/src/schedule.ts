// Scheduled retraining, in process, with exactly one run per due time across replicas.
//
// AI_RETRAIN_SCHEDULE: "off", "daily@HH:MM" (UTC) or "every <n>m|h" (aligned to the epoch:
// "every 6h" is due at 00:00, 06:00, 12:00, 18:00 UTC). Every replica runs the scheduler;
// at each due time each one tries to claim the run: a row (job, due_at) in scheduled_runs,
// inserted by exactly one of them (the primary key decides). The claimant trains
// (lifecycle.retrain("scheduler"), the same gate as Retrain) and records when it finished and
// the outcome; the others do nothing. The claim is a lease: a run claimed but not finished
// within AI_RETRAIN_LEASE_MINUTES (its replica died mid-training) may be claimed again by
// another replica. Nothing runs at start for due times that passed before the process started,
// except the latest if it is less than an hour old and unclaimed (a rollout across the due time
// does not skip a night). The CronJob in istio/ calls Retrain through the API instead, for
// clusters that prefer Kubernetes to own the schedule (then set AI_RETRAIN_SCHEDULE=off).
import { hostname } from "node:os";
import { z } from "zod";
import type { Logger, Pool } from "@adminkiosk/runtime";

const minuteMs = 60_000;
const hourMs = 3_600_000;
const dayMs = 86_400_000;

export type Schedule = { kind: "off" } | { kind: "daily"; minuteOfDay: number } | { kind: "every"; ms: number };

/** Parses AI_RETRAIN_SCHEDULE; throws a message naming what is wrong. */
export function parseSchedule(text: string): Schedule {
  const s = text.trim();
  if (s === "off") return { kind: "off" };
  const daily = /^daily@([01]\d|2[0-3]):([0-5]\d)$/.exec(s);
  if (daily) return { kind: "daily", minuteOfDay: Number(daily[1]) * 60 + Number(daily[2]) };
  const every = /^every (\d+)(m|h)$/.exec(s);
  if (every) {
    const ms = Number(every[1]) * (every[2] === "h" ? hourMs : minuteMs);
    if (ms < 5 * minuteMs || ms > 7 * dayMs) throw new Error("the interval must be 5m..168h");
    return { kind: "every", ms };
  }
  throw new Error('must be "off", "daily@HH:MM" (UTC) or "every <n>m" / "every <n>h"');
}

/** The zod shape config.ts uses (validated at start). */
export const scheduleSetting = z
  .string()
  .default("off")
  .transform((v, ctx) => {
    try {
      return parseSchedule(v);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
  });

/** The latest due time at or before `nowMs` (undefined when off). */
export function dueAt(schedule: Schedule, nowMs: number): number | undefined {
  if (schedule.kind === "off") return undefined;
  if (schedule.kind === "every") return Math.floor(nowMs / schedule.ms) * schedule.ms;
  const today = Math.floor(nowMs / dayMs) * dayMs + schedule.minuteOfDay * minuteMs;
  return today <= nowMs ? today : today - dayMs;
}

/** The first due time after `nowMs`. */
export function nextDue(schedule: Schedule, nowMs: number): number | undefined {
  if (schedule.kind === "off") return undefined;
  if (schedule.kind === "every") return (Math.floor(nowMs / schedule.ms) + 1) * schedule.ms;
  return dueAt(schedule, nowMs)! + dayMs;
}

/** Claims (job, due) for `owner`: inserted now, or taken over from a claimant whose lease ran out unfinished. */
export async function claimRun(pool: Pool, job: string, due: Date, owner: string, leaseMs: number): Promise<boolean> {
  const { rows } = await pool.query(
    `INSERT INTO scheduled_runs (job, due_at, claimed_by) VALUES ($1, $2, $3)
     ON CONFLICT (job, due_at) DO UPDATE SET claimed_by = EXCLUDED.claimed_by, claimed_at = now()
       WHERE scheduled_runs.finished_at IS NULL AND scheduled_runs.claimed_at < now() - make_interval(secs => $4)
     RETURNING 1`,
    [job, due, owner, leaseMs / 1000],
  );
  return rows.length > 0;
}

export interface Scheduler {
  /** Checks now whether a run is due and unclaimed, and runs it if this replica claims it. */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

export interface SchedulerOptions {
  pool: Pool;
  log: Logger;
  schedule: Schedule;
  job: string;
  run: () => Promise<string>;
  leaseMs: number;
  /** This replica's name in scheduled_runs.claimed_by. */
  owner?: string;
  now?: () => number;
  /** false: only tick() runs it (tests). */
  timers?: boolean;
}

export function startScheduler(o: SchedulerOptions): Scheduler {
  const now = o.now ?? Date.now;
  const owner = o.owner ?? `${hostname()}/${process.pid}`;
  const started = now();
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function tickNow() {
    const t = now();
    const due = dueAt(o.schedule, t);
    // Not for due times before this process started, except a recent one (see above).
    if (due === undefined || (due < started && started - due > hourMs)) return;
    if (!(await claimRun(o.pool, o.job, new Date(due), owner, o.leaseMs))) return;
    o.log.info({ job: o.job, due: new Date(due).toISOString() }, "scheduled run claimed; running");
    let outcome: string;
    try {
      outcome = await o.run();
    } catch (err) {
      outcome = `failed: ${err instanceof Error ? err.message : String(err)}`;
      o.log.warn({ err, job: o.job }, "scheduled run failed");
    }
    await o.pool.query("UPDATE scheduled_runs SET finished_at = now(), outcome = $3 WHERE job = $1 AND due_at = $2", [o.job, new Date(due), outcome.slice(0, 2000)]);
    o.log.info({ job: o.job, outcome }, "scheduled run finished");
  }

  const tick = () => {
    const run = running.then(tickNow);
    running = run.catch((err: unknown) => o.log.warn({ err, job: o.job }, "the scheduler could not check for due runs; trying again at the next tick"));
    return run;
  };

  const arm = () => {
    if (stopped || o.timers === false || o.schedule.kind === "off") return;
    // Wake at the next due time, or within a minute (a clock change, a lease to take over).
    const wait = Math.max(1_000, Math.min(minuteMs, nextDue(o.schedule, now())! - now()));
    timer = setTimeout(() => void tick().finally(arm), wait);
    timer.unref();
  };
  if (o.schedule.kind !== "off" && o.timers !== false) void tick().finally(arm);

  return {
    tick,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running.catch(() => {});
    },
  };
}

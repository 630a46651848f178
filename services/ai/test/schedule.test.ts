// Scheduled retraining's leader election on a real PostgreSQL: two scheduler instances (two
// replicas) on the same database, both checking at every due time, run the job exactly once
// per due time; a run whose claimant died unfinished is taken over once its lease ran out;
// the schedule setting is validated.
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase } from "@adminkiosk/devstack";
import { createLogger, createPool, migrate, type Pool } from "@adminkiosk/runtime";
import { aiConfigShape } from "../src/config.js";
import { dueAt, parseSchedule, startScheduler } from "../src/schedule.js";

const log = createLogger("ai-schedule-test", "warn");
let pool: Pool;

beforeAll(async () => {
  const url = await createDatabase(inject("infra").databaseUrl, "ai");
  await migrate(url, "ai", fileURLToPath(new URL("../migrations", import.meta.url)), log, { consumerTables: true });
  pool = createPool(url, "ai", log, 4);
});
afterAll(async () => {
  await pool?.end();
});

describe("scheduled retraining", () => {
  it("runs once per due time with two replicas checking at once", async () => {
    const schedule = parseSchedule("every 6h");
    let clock = Date.UTC(2026, 5, 1, 5, 59);
    const runs: string[] = [];
    const replica = (owner: string) =>
      startScheduler({
        pool,
        log,
        schedule,
        job: "retrain-test",
        leaseMs: 3_600_000,
        owner,
        timers: false,
        now: () => clock,
        run: async () => {
          runs.push(`${owner}@${new Date(clock).toISOString()}`);
          return "promoted";
        },
      });
    const a = replica("a");
    const b = replica("b");
    try {
      // Three due times (06:00, 12:00, 18:00), each checked several times by both replicas.
      for (const at of [Date.UTC(2026, 5, 1, 6, 0), Date.UTC(2026, 5, 1, 12, 0, 30), Date.UTC(2026, 5, 1, 18, 1)]) {
        clock = at;
        await Promise.all([a.tick(), b.tick(), a.tick(), b.tick()]);
        clock = at + 60_000;
        await Promise.all([a.tick(), b.tick()]);
      }
      expect(runs).toHaveLength(3);
      const { rows } = await pool.query<{ due_at: Date; outcome: string; finished_at: Date | null }>("SELECT due_at, outcome, finished_at FROM scheduled_runs WHERE job = 'retrain-test' ORDER BY due_at");
      expect(rows.map((r) => r.due_at.toISOString())).toEqual(["2026-06-01T06:00:00.000Z", "2026-06-01T12:00:00.000Z", "2026-06-01T18:00:00.000Z"]);
      expect(rows.every((r) => r.outcome === "promoted" && r.finished_at !== null)).toBe(true);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("takes over a run whose claimant died before finishing, once its lease ran out", async () => {
    const schedule = parseSchedule("daily@03:00");
    const clock = Date.UTC(2026, 5, 2, 3, 0, 10);
    const due = new Date(dueAt(schedule, clock)!);
    // A replica claimed it two hours ago and never finished (crashed mid-training).
    await pool.query("INSERT INTO scheduled_runs (job, due_at, claimed_by, claimed_at) VALUES ('retrain-lease', $1, 'dead', now() - interval '2 hours')", [due]);
    let runs = 0;
    const make = (leaseMs: number) =>
      startScheduler({ pool, log, schedule, job: "retrain-lease", leaseMs, owner: "alive", timers: false, now: () => clock, run: async () => (runs++, "rejected") });
    const patient = make(3 * 3_600_000);
    await patient.tick();
    expect(runs).toBe(0);
    await patient.stop();
    const impatient = make(3_600_000);
    await impatient.tick();
    await impatient.tick();
    expect(runs).toBe(1);
    await impatient.stop();
    const { rows } = await pool.query("SELECT claimed_by, outcome FROM scheduled_runs WHERE job = 'retrain-lease'");
    expect(rows).toEqual([{ claimed_by: "alive", outcome: "rejected" }]);
  });

  it("validates AI_RETRAIN_SCHEDULE", () => {
    const shape = aiConfigShape.AI_RETRAIN_SCHEDULE;
    expect(shape.parse(undefined)).toEqual({ kind: "off" });
    expect(shape.parse("daily@02:30")).toEqual({ kind: "daily", minuteOfDay: 150 });
    expect(shape.parse("every 6h")).toEqual({ kind: "every", ms: 6 * 3_600_000 });
    for (const bad of ["daily@25:00", "every 1m", "weekly", "every 6 h"]) expect(shape.safeParse(bad).success, bad).toBe(false);
    expect(dueAt(parseSchedule("daily@03:00"), Date.UTC(2026, 5, 2, 2, 0))).toBe(Date.UTC(2026, 5, 1, 3, 0));
  });
});

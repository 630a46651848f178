// Benchmark: a rollout's bookkeeping at 100,000 kiosks, beside hand-written SQL in the same run.
//   wave assignment: fleet's insertRollout (services/fleet/src/rollouts/store.ts) — the
//     target counted, the rollout and its waves inserted, every kiosk given its place in
//     the rollout's hash order and its wave, kept as each wave's plan (arrays of kiosk ids
//     and time zones; a wave's rows are written when it starts) — in a transaction rolled
//     back after each run; baseline: the straightforward SQL, one hand-written INSERT …
//     SELECT of a rollout_targets row per targeted kiosk with its wave (the same hash
//     order), rolled back too.
//   wave start: what a tick writes when a wave starts — materialise (store.ts), the next
//     10,000 kiosks of the plan (its chunk per tick) as rollout_targets rows, each checked
//     against kiosks (deleted: skipped; its version now); baseline: a hand-written INSERT …
//     SELECT of the same 10,000 rows from kiosks in the rollout's hash order. Rolled back.
//   gate evaluation: fleet's measure + judge (gates.ts) for a 10 % wave updated against a
//     90 % control over the last hour and the hour before the rollout, read from the per-kiosk
//     hourly counts (kiosk_facts, as the consumers keep them) for a spread sample of at most
//     2,000 kiosks per cohort; baseline: the straightforward SQL, the same counts over the raw
//     rows of every kiosk as three hand-written aggregate statements.
//   engine tick: what a running rollout's tick reads every second while a wave bakes — the
//     install reports joined onto its targets (syncTargets, only reports changed since the
//     last tick) and the deleted-kiosk check; baseline: the same UPDATE joining all of the
//     rollout's reports every tick (fleet's statement before kiosk_updates' change index).
// The variants are interleaved run by run, so the machine's load falls on both alike.
// Data: 100,000 kiosks in 12 time zones, ~300,000 sales over the last two hours, ~15,000
// failed orders and 200,000 telemetry samples in the last hour, their hourly kiosk_facts
// rows (what the projection adds as it stores them), and an install report per kiosk, inserted
// straight into fleet's tables after fleet migrated them (fleet is then stopped, so its own
// engine does not touch the bench's rows).
// Run: npm run bench:rollouts (BENCH_KIOSKS=100000 BENCH_RUNS=20).
import { randomUUID } from "node:crypto";
import pg from "pg";
import { syncTargets } from "../services/fleet/src/rollouts/engine.js";
import { judge, measure, defaultGate } from "../services/fleet/src/rollouts/gates.js";
import { unwrittenIdsSql } from "../services/fleet/src/rollouts/plan.js";
import { insertRollout, materialise, type NewRollout, type RolloutRow } from "../services/fleet/src/rollouts/store.js";
import { loadAverage, machine, percentile } from "./kiosk-fleet.js";
import { withStack } from "./stack.js";

const kioskCount = Number(process.env["BENCH_KIOSKS"] ?? 100_000);
const runs = Number(process.env["BENCH_RUNS"] ?? 20);
const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

await withStack({ PASSWORD_SCRYPT_LOG_N: "10" }, async ({ databaseUrl, auth, redisUrl, natsUrl, start }) => {
  const fleet = await start("fleet", {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    NATS_URL: natsUrl,
    AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json`,
    AUTH_URL: auth.url,
  });
  await fleet.stop();
  const db = new pg.Pool({ connectionString: databaseUrl, max: 4, options: "-c search_path=fleet" });
  db.on("error", () => {});
  db.on("connect", (c) => c.on("error", () => {}));
  let t = performance.now();
  await db.query(
    `INSERT INTO kiosks (kiosk_id, name, timezone, tags, group_id, hardware_model, app_version, connected, last_seen_at)
     SELECT 'k-' || lpad(i::text, 6, '0'), 'Kiosk ' || i,
       (ARRAY['UTC', 'Europe/Prague', 'Europe/London', 'America/New_York', 'America/Chicago', 'America/Los_Angeles', 'Asia/Tokyo',
              'Asia/Kolkata', 'Australia/Sydney', 'Europe/Madrid', 'America/Sao_Paulo', 'Africa/Nairobi'])[1 + i % 12],
       CASE WHEN i % 3 = 0 THEN ARRAY['airport'] ELSE ARRAY['street'] END, 'g-' || (i % 100), 'AK-2', '1.0.0', true, now()
     FROM generate_series(1, $1) AS i`,
    [kioskCount],
  );
  await db.query(
    `INSERT INTO kiosk_sales (order_id, kiosk_id, completed_at, total_minor, currency)
     SELECT 'o-' || i, 'k-' || lpad((1 + (i::bigint * 7919) % $1)::text, 6, '0'), now() - make_interval(secs => (i * 13) % 7200), 1000, 'EUR'
     FROM generate_series(1, $1 * 3) AS i`,
    [kioskCount],
  );
  await db.query(
    `INSERT INTO kiosk_order_failures (order_id, kiosk_id, failed_at, failure_code)
     SELECT 'f-' || i, 'k-' || lpad((1 + (i * 104729) % $1)::text, 6, '0'), now() - make_interval(secs => (i * 17) % 3600),
       CASE WHEN i % 3 = 0 THEN 'HOLD_EXPIRED' ELSE 'PAYMENT_DECLINED' END
     FROM generate_series(1, $1 / 7) AS i`,
    [kioskCount],
  );
  // Today's partition (fleet makes them ahead, but it was stopped at once).
  const day = new Date().toISOString().slice(0, 10);
  await db.query(
    `CREATE TABLE IF NOT EXISTS telemetry_samples_p${day.replaceAll("-", "")} PARTITION OF telemetry_samples
     FOR VALUES FROM ('${day}T00:00:00Z') TO ('${day}T00:00:00Z'::timestamptz + interval '1 day')`,
  );
  await db.query(
    `INSERT INTO telemetry_samples (kiosk_id, sampled_at, sample_id, received_at, cpu_percent, temperature_celsius, paper_level_percent, cash_level_minor, printer, scanner, errors)
     SELECT 'k-' || lpad((1 + i % $1)::text, 6, '0'), now() - make_interval(secs => (i * 11) % 3000), 's-' || i, now(), 10, 30, 80, 0,
       CASE WHEN i % 97 = 0 THEN 3 ELSE 1 END, 1, '{}'
     FROM generate_series(1, $1 * 2) AS i`,
    [kioskCount],
  );
  // The hourly counts the sales projection and the link consumer keep as they store these rows.
  await db.query(
    `INSERT INTO kiosk_facts (kiosk_id, bucket, sales, failed_orders, payment_failures, samples, faulty_samples, reconnects)
     SELECT kiosk_id, bucket, sum(sales), sum(failed), sum(pay), sum(samples), sum(bad), sum(re) FROM (
       SELECT kiosk_id, date_trunc('hour', completed_at) AS bucket, 1 AS sales, 0 AS failed, 0 AS pay, 0 AS samples, 0 AS bad, 0 AS re FROM kiosk_sales
       UNION ALL SELECT kiosk_id, date_trunc('hour', failed_at), 0, 1, (failure_code <> 'HOLD_EXPIRED')::int, 0, 0, 0 FROM kiosk_order_failures
       UNION ALL SELECT kiosk_id, date_trunc('hour', sampled_at), 0, 0, 0, 1, (printer = 3 OR scanner = 3 OR cardinality(errors) > 0)::int, 0 FROM telemetry_samples
       UNION ALL SELECT kiosk_id, date_trunc('hour', now()), 0, 0, 0, 0, 0, 1 FROM kiosks WHERE hashtext(kiosk_id) % 20 = 0
     ) x GROUP BY 1, 2`,
  );
  await db.query("ANALYZE kiosks; ANALYZE kiosk_sales; ANALYZE kiosk_order_failures; ANALYZE telemetry_samples; ANALYZE kiosk_facts");
  log(`inserted ${kioskCount} kiosks and their last hour in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const plan: NewRollout = {
    releaseId: "bench-release",
    kind: "APP",
    version: "2.0.0",
    target: { tags: [] },
    waves: [1, 10, 50, 100].map((percent) => ({ percent, bakeMs: 3_600_000 })),
    maxConcurrent: 500,
    windowPolicy: "explicit",
    windowStartHour: 2,
    windowEndHour: 5,
    windowNote: "",
    gate: defaultGate,
    autoRollback: true,
    description: "bench",
    createdBy: "bench",
  };
  const where = { sql: "k.deleted_at IS NULL AND k.app_version IS DISTINCT FROM $1", params: ["2.0.0"] };

  async function rolledBack<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await db.connect();
    try {
      await c.query("BEGIN");
      return await fn(c);
    } finally {
      await c.query("ROLLBACK");
      c.release();
    }
  }
  const assignment: Record<string, () => Promise<number>> = {
    fleet: () => rolledBack(async (c) => (await insertRollout(c as never, randomUUID(), plan, where)).row.total),
    baseline: () =>
      rolledBack(async (c) => {
        const id = randomUUID();
        await c.query(
          `INSERT INTO rollouts (rollout_id, release_id, kind, version, target, waves, max_concurrent, window_policy, gate, state, created_by)
           VALUES ($1, 'bench-release', 'APP', '2.0.0', '{}', '[]', 500, 'explicit', '{}', 'running', 'bench')`,
          [id],
        );
        const { rowCount } = await c.query(
          `INSERT INTO rollout_targets (rollout_id, kiosk_id, wave, release_id, window_start, window_end, timezone)
           SELECT $1::uuid, kiosk_id, CASE WHEN p < n * 0.01 THEN 0 WHEN p < n * 0.1 THEN 1 WHEN p < n * 0.5 THEN 2 ELSE 3 END, 'bench-release', 2, 5, timezone
           FROM (SELECT kiosk_id, timezone, row_number() OVER (ORDER BY hashtextextended(kiosk_id, hashtext($1::text)::bigint)) - 1 AS p, count(*) OVER () AS n
                 FROM kiosks WHERE deleted_at IS NULL AND app_version IS DISTINCT FROM '2.0.0') o`,
          [id],
        );
        return rowCount ?? 0;
      }),
  };

  // A standing rollout whose waves have not started, for the wave start (each run rolled back).
  const startRollout = randomUUID();
  await (async () => {
    const c = await db.connect();
    await c.query("BEGIN");
    await insertRollout(c as never, startRollout, { ...plan, description: "start" }, where);
    await c.query("COMMIT");
    c.release();
  })();
  const startRow = (await db.query<RolloutRow>("SELECT * FROM rollouts WHERE rollout_id = $1", [startRollout])).rows[0]!;
  const waveStart: Record<string, () => Promise<number>> = {
    fleet: () => rolledBack(async (c) => {
      const left = await materialise(c as never, startRow, 3, 10_000);
      return kioskCount - left;
    }),
    baseline: () =>
      rolledBack(async (c) => {
        const { rowCount } = await c.query(
          `INSERT INTO rollout_targets (rollout_id, kiosk_id, wave, release_id, from_version, window_start, window_end, timezone)
           SELECT $1::uuid, kiosk_id, CASE WHEN p < $2::int THEN 0 ELSE 1 END, 'bench-release', app_version, 2, 5, timezone
           FROM (SELECT kiosk_id, timezone, app_version, row_number() OVER (ORDER BY hashtextextended(kiosk_id, hashtext($1::text)::bigint), kiosk_id) - 1 AS p
                 FROM kiosks WHERE deleted_at IS NULL AND app_version IS DISTINCT FROM '2.0.0') o
           WHERE p < 10000 ORDER BY kiosk_id`,
          [startRollout, Math.round(kioskCount / 100)],
        );
        return rowCount ?? 0;
      }),
  };

  // A standing rollout for the gate: wave 0 and 1 (10 %) installed, the rest pending (control: their waves' plans).
  const gateRollout = randomUUID();
  await (async () => {
    const c = await db.connect();
    try {
      await c.query("BEGIN");
      const { row } = await insertRollout(c as never, gateRollout, { ...plan, description: "gate" }, where);
      await materialise(c as never, row, 1, kioskCount);
      await c.query("UPDATE rollout_targets SET state = 'installed' WHERE rollout_id = $1 AND wave <= 1", [gateRollout]);
      await c.query("UPDATE rollouts SET state = 'paused', current_wave = 1 WHERE rollout_id = $1", [gateRollout]);
      await c.query("COMMIT");
    } finally {
      c.release();
    }
    // Every kiosk's install report for it, last changed two hours ago (kiosk_updates' foreign key to a release is not checked here).
    const c2 = await db.connect();
    await c2.query("SET session_replication_role = replica");
    await c2.query(
      `INSERT INTO kiosk_updates (kiosk_id, release_id, rollout_id, state, version, reported_at, updated_at)
       SELECT kiosk_id, 'bench-release', $1::text, 'installed', '2.0.0', now() - interval '2 hours', now() - interval '2 hours' FROM kiosks`,
      [gateRollout],
    );
    await c2.query("RESET session_replication_role");
    c2.release();
    await db.query("ANALYZE rollout_targets; ANALYZE kiosk_updates");
    // The first sync reads every report (no mark yet); the ticks timed below read what changed since.
    await syncTargets(db as never, gateRollout);
  })();
  const since = new Date(Date.now() - 3_600_000);
  const gate: Record<string, () => Promise<number>> = {
    fleet: async () => {
      const m = await measure(db as never, { bucketMs: 3_600_000 }, gateRollout, 1, since, { started: since, baselineMs: 3_600_000 });
      judge(m, defaultGate);
      // Sampled cohorts: their sales per kiosk times the cohorts' sizes (the check below allows 10 %).
      return Math.round((m.updated.sales / m.updated.measuredKiosks) * m.updated.kiosks + (m.control.sales / m.control.measuredKiosks) * m.control.kiosks);
    },
    baseline: async () => {
      // The cohorts: installed rows (updated), pending rows and the waves' plans not written yet (control).
      const t = `(SELECT kiosk_id, state FROM rollout_targets WHERE rollout_id = $1 AND state IN ('installed', 'pending')
                  UNION ALL SELECT kiosk_id, 'pending' FROM (${unwrittenIdsSql("$1")}) u)`;
      const [s] = await Promise.all([
        db.query<{ n: string }>(
          `SELECT count(*) AS n FROM kiosk_sales s JOIN ${t} t ON t.kiosk_id = s.kiosk_id
           WHERE s.completed_at >= $2 GROUP BY t.state = 'installed'`,
          [gateRollout, since],
        ),
        db.query(
          `SELECT t.state = 'installed', count(*), count(*) FILTER (WHERE f.failure_code <> 'HOLD_EXPIRED') FROM kiosk_order_failures f
           JOIN ${t} t ON t.kiosk_id = f.kiosk_id WHERE f.failed_at >= $2 GROUP BY 1`,
          [gateRollout, since],
        ),
        db.query(
          `SELECT t.state = 'installed', count(*), count(*) FILTER (WHERE ts.printer = 3 OR ts.scanner = 3 OR cardinality(ts.errors) > 0) FROM telemetry_samples ts
           JOIN ${t} t ON t.kiosk_id = ts.kiosk_id WHERE ts.sampled_at >= $2 GROUP BY 1`,
          [gateRollout, since],
        ),
      ]);
      return s.rows.reduce((a, r) => a + Number(r.n), 0);
    },
  };

  const tick: Record<string, () => Promise<number>> = {
    fleet: async () => {
      await syncTargets(db as never, gateRollout);
      return 1;
    },
    baseline: async () => {
      await db.query(
        `UPDATE rollout_targets t SET state = u.state, finished_at = u.reported_at, error = u.error,
           from_version = CASE WHEN u.from_version <> '' THEN u.from_version ELSE t.from_version END
         FROM kiosk_updates u
         WHERE t.rollout_id = $1 AND t.state IN ('sent', 'installed') AND u.kiosk_id = t.kiosk_id AND u.release_id = t.release_id
           AND u.rollout_id = $1::text AND u.state IN ('installed', 'failed', 'reverted', 'rejected') AND u.state <> t.state`,
        [gateRollout],
      );
      await db.query(
        `UPDATE rollout_targets t SET state = 'skipped', error = 'the kiosk was deleted'
         FROM kiosks k WHERE t.rollout_id = $1 AND t.state = 'pending' AND k.kiosk_id = t.kiosk_id AND k.deleted_at IS NOT NULL`,
        [gateRollout],
      );
      return 1;
    },
  };

  const out: string[] = [];
  try {
  const steps = [
    ["wave assignment (100 % of the fleet targeted)", assignment],
    ["wave start (a tick writes the next 10,000 kiosks' rows)", waveStart],
    ["gate evaluation (10 % updated vs 90 % control, last hour)", gate],
    ["engine tick while a wave bakes (10 % installed, 100,000 install reports)", tick],
  ] as const;
  for (const [name, variants] of steps) {
    // One after the other: the wave start's variants write the same rows.
    const answers: number[] = [];
    for (const v of Object.values(variants)) answers.push(await v());
    if (Math.max(...answers) > Math.min(...answers) * 1.1) throw new Error(`${name}: the variants disagree: ${answers.join(", ")}`);
    for (let i = 0; i < 2; i++) for (const v of Object.values(variants)) await v();
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
    const loadBefore = loadAverage();
    t = performance.now();
    for (let i = 0; i < runs; i++) {
      for (const [k, v] of Object.entries(variants)) {
        const t0 = performance.now();
        await v();
        times[k]!.push(performance.now() - t0);
      }
    }
    const what = name.startsWith("wave start") ? `${answers[1]} rows` : name.startsWith("wave") ? `${answers[0]} kiosks` : name.startsWith("gate") ? `${answers.join(" / ")} sales (fleet's estimated from its samples / counted)` : "no report changed";
    out.push(`${name}: ${what}; ${runs} runs each, interleaved; load average ${loadBefore} -> ${loadAverage()}`);
    for (const [k, ms] of Object.entries(times)) out.push(`  ${k.padEnd(9)} p50 ${percentile(ms, 50).toFixed(0).padStart(6)} ms   p95 ${percentile(ms, 95).toFixed(0).padStart(6)} ms`);
    const ratio = (p: number) => (percentile(times["fleet"]!, p) / percentile(times["baseline"]!, p)).toFixed(2);
    out.push(`  fleet / baseline: p50 ${ratio(50)}, p95 ${ratio(95)}`);
  }
  } catch (err) {
    console.error(err);
    throw err;
  }
  await db.end();
  console.log(`bench:rollouts — ${machine()}\n${kioskCount} kiosks\n${out.join("\n")}`);
});

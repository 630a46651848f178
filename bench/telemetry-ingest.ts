// Benchmark: telemetry ingest into PostgreSQL, beside baselines in the same run.
//   fleet, backlog drain: M KioskTelemetryEvents (S samples each) are published to
//     JetStream stream LINK exactly as link publishes them (link's own createLinkEvents
//     from services/link/src/events.ts: subject link.kiosk.<id>.telemetry, msgID
//     <kiosk>/<batch>) while fleet is stopped; then fleet starts and its consumer
//     (services/fleet/src/events.ts: batches of up to 2,000 messages, one transaction
//     each — telemetry claims no inbox row —, the samples in one binary COPY into telemetry_samples (a staging
//     table and INSERT … SELECT … ON CONFLICT DO NOTHING when any was there already), the
//     kiosks' latest state once per kiosk, kiosk_facts' counts; the next batch decoded while
//     one commits, two batches in their transactions at once) drains them. Timed until kiosk_facts counts M × S samples (committed with
//     them; polled every 200 ms, a sum over a few thousand rows where count(*) of
//     telemetry_samples would scan up to 500,000 each time), then count(telemetry_samples)
//     checked; then how many of the kiosks' and kiosk_facts' row updates were HOT (pg_stat_user_tables).
//   For each timed part also PostgreSQL's CPU (the postmaster and all its processes, from
//     /proc): seconds of a busy box stretch the wall times, far less the CPU each part costs.
//   fleet, live through link: light kiosks (bench/light-kiosk.ts) send batches on their
//     streams → link (validation, JetStream publish, TelemetryAck) → fleet, timed from
//     the first batch sent until every sample is stored.
//   baselines: the same rows straight into a fresh table of the same shape (partitioned,
//     same primary key): COPY FROM STDIN (pg-copy-streams) in one stream — text, and binary
//     (the rows fleet's decoder writes, made before the clock starts) — and multi-row
//     INSERT … SELECT FROM unnest … ON CONFLICT DO NOTHING in chunks of 500 × S rows (what
//     fleet's insert was before it used COPY).
// Prints fleet's drain rate as a ratio of the COPY baselines' (same rows, same run).
// PostgreSQL runs with fsync=off (packages/devstack infra) for all of them.
// Run: npm run bench:telemetry (BENCH_MESSAGES=50000 BENCH_SAMPLES_PER_BATCH=10
// BENCH_KIOSKS=1000 BENCH_LIVE_BATCHES=10; loopback only; stops by itself).
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus, type TelemetrySample } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { TelemetrySampleSchema } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { closeNats, connectNats, createLogger } from "@adminkiosk/runtime";
import { CopyRowWriter, copyHeader, copyTrailer, decodeTelemetryMessage } from "../services/fleet/src/telemetry.js";
import { createLinkEvents } from "../services/link/src/events.js";
import { cpuSeconds, loadAverage, machine, startKioskFleet } from "./kiosk-fleet.js";
import { mintDevices } from "./mint-devices.js";
import { benchAdmin, withStack } from "./stack.js";

const messages = Number(process.env["BENCH_MESSAGES"] ?? 50_000);
const perBatch = Number(process.env["BENCH_SAMPLES_PER_BATCH"] ?? 10);
const kioskCount = Number(process.env["BENCH_KIOSKS"] ?? 1_000);
const liveBatches = Number(process.env["BENCH_LIVE_BATCHES"] ?? 10);
/** Which parts run (default all): drain, copy, copybin, insert, live. The ratios need drain and copy (copybin). */
const parts = new Set((process.env["BENCH_PARTS"] ?? "drain,copy,copybin,insert,live").split(",").map((p) => p.trim()));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

interface Row {
  kioskId: string;
  sample: TelemetrySample;
  received: Date;
}

await withStack({ PASSWORD_SCRYPT_LOG_N: "10" }, async ({ databaseUrl, keyEncryptionKey, auth, redisUrl, natsUrl, start }) => {
  const shared = { REDIS_URL: redisUrl, NATS_URL: natsUrl, AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json` };
  const fleetEnv = { ...shared, DATABASE_URL: databaseUrl, AUTH_URL: auth.url };
  let fleet = await start("fleet", fleetEnv);
  const db = new pg.Pool({ connectionString: databaseUrl, max: 4, options: "-c search_path=fleet" });
  const { tokens } = await createClient(AuthService, createGrpcTransport({ baseUrl: auth.url })).login(benchAdmin);
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${tokens!.accessToken}`);
    return next(req);
  };
  const kiosksApi = createClient(KioskService, createGrpcTransport({ baseUrl: fleet.url, interceptors: [bearer] }));
  const ids = Array.from({ length: kioskCount }, (_, i) => `tel-${i}`);
  for (let i = 0; i < ids.length; i += 32) await Promise.all(ids.slice(i, i + 32).map((kioskId) => kiosksApi.createKiosk({ kiosk: { kioskId, name: kioskId } })));
  const count = async (table: string) => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);
  const postmaster = postmasterOf((await db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid);
  const pgCpu = () => processTreeCpu(postmaster);
  const out: string[] = [];
  const rates: Record<string, number> = {};
  const row = (cells: (string | number)[]) => {
    out.push(`| ${cells.join(" | ")} |`);
    log(out.at(-1)!);
  };

  // The rows: M batches round-robin over the kiosks, sample times within the last hour.
  const now = Date.now();
  const batches = Array.from({ length: messages }, (_, m) => {
    const kioskId = ids[m % ids.length]!;
    const samples = Array.from({ length: perBatch }, (_, s) =>
      create(TelemetrySampleSchema, {
        sampleId: `${m}-${s}`,
        time: timestampFromMs(now - 3_600_000 + ((m * perBatch + s) % 3_500_000)),
        cpuPercent: (m % 100) + 0.5,
        temperatureCelsius: 40 + (s % 10),
        paperLevelPercent: 80,
        cashLevelMinor: BigInt(100_000 + m),
        printer: DeviceStatus.OK,
        scanner: s % 50 === 0 ? DeviceStatus.WARNING : DeviceStatus.OK,
        errors: s % 100 === 0 ? ["paper low"] : [],
      }),
    );
    return { kioskId, batchId: randomUUID(), samples };
  });
  const total = messages * perBatch;

  // 1. fleet draining a backlog that link published.
  if (parts.has("drain")) {
    await fleet.stop();
    const nlog = createLogger("bench", "warn");
    const nc = await connectNats(natsUrl, "bench-link-publisher", nlog);
    const events = await createLinkEvents(nc, nlog, "bench-telemetry");
    const received = timestampFromMs(Date.now());
    let next = 0;
    const tp = performance.now();
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        while (next < batches.length) {
          const b = batches[next++]!;
          await events.publish(`link.kiosk.${b.kioskId}.telemetry`, KioskTelemetryEventSchema, create(KioskTelemetryEventSchema, { kioskId: b.kioskId, batch: { batchId: b.batchId, samples: b.samples }, receiveTime: received }), `${b.kioskId}/${b.batchId}`);
        }
      }),
    );
    const publishSeconds = (performance.now() - tp) / 1000;
    log(`published ${messages} telemetry events to JetStream in ${publishSeconds.toFixed(1)} s (${Math.round(messages / publishSeconds)}/s, 256 in flight)`);
    await events.close();
    await closeNats(nc);
    const load = loadAverage();
    const t0 = performance.now();
    fleet = await start("fleet", fleetEnv);
    const listening = performance.now();
    const cpu0 = cpuSeconds(fleet.child.pid!);
    const pg0 = pgCpu();
    const counted = async () => Number((await db.query<{ n: string }>("SELECT COALESCE(sum(samples), 0) AS n FROM kiosk_facts")).rows[0]!.n);
    let firstSeen: number | undefined;
    let n = 0;
    while ((n = await counted()) < total && performance.now() - t0 < 300_000) {
      if (n > 0) firstSeen ??= performance.now();
      await sleep(200);
    }
    const seconds = (performance.now() - listening) / 1000;
    const cpu = cpuSeconds(fleet.child.pid!) - cpu0;
    const pg = pgCpu() - pg0;
    const stored = await count("telemetry_samples");
    rates["fleet"] = stored / seconds;
    // Row updates done in place (HOT) during the drain: the kiosks' latest state, kiosk_facts' counts.
    await sleep(1_000); // the statistics reach pg_stat_user_tables within a second
    const hot = await db.query<{ relname: string; upd: string; hot: string }>(
      "SELECT relname, n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE schemaname = 'fleet' AND relname IN ('kiosks', 'kiosk_facts') ORDER BY relname",
    );
    const hotNote = hot.rows.map((r) => `${r.relname} ${r.hot}/${r.upd} updates HOT`).join(", ");
    row([
      `fleet: drain ${messages} messages × ${perBatch} samples from JetStream (published as link does)`,
      `${stored} / ${total}`,
      seconds.toFixed(1),
      Math.round(messages / seconds),
      Math.round(stored / seconds),
      `fleet ${cpu.toFixed(1)} CPU-s, PostgreSQL ${pg.toFixed(1)} CPU-s; first samples stored ${(((firstSeen ?? performance.now()) - listening) / 1000).toFixed(1)} s after fleet listened; ${hotNote}`,
      load,
    ]);
  }

  // 2. Baselines: the same rows into a fresh table of the same shape.
  const rows: Row[] = batches.flatMap((b) => b.samples.map((sample) => ({ kioskId: b.kioskId, sample, received: new Date(now) })));
  const at = (s: TelemetrySample) => new Date(Number(s.time!.seconds) * 1000 + Math.floor(s.time!.nanos / 1e6)).toISOString();
  const fresh = async (name: string) => {
    await db.query(`DROP TABLE IF EXISTS ${name}`);
    await db.query(`CREATE TABLE ${name} (LIKE telemetry_samples INCLUDING DEFAULTS) PARTITION BY RANGE (sampled_at)`);
    await db.query(`ALTER TABLE ${name} ADD PRIMARY KEY (kiosk_id, sampled_at, sample_id)`);
    await db.query(`CREATE TABLE ${name}_all PARTITION OF ${name} DEFAULT`);
  };
  /** One COPY FROM STDIN of `chunks` into a fresh `table`, timed; its row in the table. */
  const timedCopy = async (name: string, table: string, format: string, chunks: () => Iterable<string | Buffer>) => {
    await fresh(table);
    const load = loadAverage();
    const client = await db.connect();
    const pg0 = pgCpu();
    const t0 = performance.now();
    try {
      await pipeline(
        Readable.from(chunks()),
        client.query(copyFrom(`COPY ${table} (kiosk_id, sampled_at, sample_id, received_at, cpu_percent, temperature_celsius, paper_level_percent, cash_level_minor, printer, scanner, errors) FROM STDIN${format}`)),
      );
    } finally {
      client.release();
    }
    const seconds = (performance.now() - t0) / 1000;
    const pg = pgCpu() - pg0;
    row([`baseline: ${name} FROM STDIN of the same ${total} rows, one stream`, `${await count(table)} / ${total}`, seconds.toFixed(1), Math.round(messages / seconds), Math.round(total / seconds), `PostgreSQL ${pg.toFixed(1)} CPU-s`, load]);
    return total / seconds;
  };
  if (parts.has("copy")) {
    const line = (r: Row) => {
      const s = r.sample;
      return `${r.kioskId}\t${at(s)}\t${s.sampleId}\t${r.received.toISOString()}\t${s.cpuPercent}\t${s.temperatureCelsius}\t${s.paperLevelPercent}\t${s.cashLevelMinor}\t${s.printer}\t${s.scanner}\t{${s.errors.map((e) => `"${e}"`).join(",")}}\n`;
    };
    // ~1000 rows per chunk written to the COPY stream.
    rates["copy"] = await timedCopy("COPY", "bench_copy", "", function* () {
      for (let i = 0; i < rows.length; i += 1_000) yield rows.slice(i, i + 1_000).map(line).join("");
    });
  }
  if (parts.has("copybin")) {
    // The rows in COPY's binary format as fleet writes them (decoded from the messages' bytes
    // before the clock starts: only PostgreSQL's side is timed, as for the text COPY).
    const writer = new CopyRowWriter();
    const chunks = batches.map(
      (b) =>
        decodeTelemetryMessage(
          toBinary(KioskTelemetryEventSchema, create(KioskTelemetryEventSchema, { kioskId: b.kioskId, batch: { batchId: b.batchId, samples: b.samples }, receiveTime: timestampFromMs(now) })),
          0,
          3_600_000,
          writer,
        ).rows,
    );
    // ~1000 rows per write, as for the text COPY.
    rates["copybin"] = await timedCopy("binary COPY", "bench_copybin", " (FORMAT binary)", function* () {
      yield copyHeader;
      for (let i = 0; i < chunks.length; i += 100) yield Buffer.concat(chunks.slice(i, i + 100));
      yield copyTrailer;
    });
  }
  if (parts.has("insert")) {
    await fresh("bench_insert");
    const load = loadAverage();
    const t0 = performance.now();
    const chunk = 500 * perBatch;
    for (let i = 0; i < rows.length; i += chunk) {
      const part = rows.slice(i, i + chunk);
      const cols: unknown[][] = Array.from({ length: 11 }, () => []);
      for (const r of part) {
        const s = r.sample;
        [r.kioskId, at(s), s.sampleId, r.received.toISOString(), s.cpuPercent, s.temperatureCelsius, s.paperLevelPercent, String(s.cashLevelMinor), s.printer, s.scanner, `{${s.errors.map((e) => `"${e}"`).join(",")}}`].forEach((v, c) => cols[c]!.push(v));
      }
      await db.query(
        `INSERT INTO bench_insert (kiosk_id, sampled_at, sample_id, received_at, cpu_percent, temperature_celsius, paper_level_percent, cash_level_minor, printer, scanner, errors)
         SELECT k, at, id, rcv, cpu, temp, paper, cash, printer, scanner, errors::text[]
         FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::timestamptz[], $5::real[], $6::real[], $7::real[], $8::bigint[], $9::smallint[], $10::smallint[], $11::text[])
           AS u(k, at, id, rcv, cpu, temp, paper, cash, printer, scanner, errors)
         ON CONFLICT DO NOTHING`,
        cols,
      );
    }
    const seconds = (performance.now() - t0) / 1000;
    row([`baseline: multi-row INSERT … FROM unnest, ${chunk} rows per statement, one connection`, `${await count("bench_insert")} / ${total}`, seconds.toFixed(1), Math.round(messages / seconds), Math.round(total / seconds), "", load]);
  }

  // 3. Live: kiosks → link → JetStream → fleet.
  if (parts.has("live")) {
    const link = await start("link", { ...shared, LINK_REPLICA_ID: "bench-link-0" });
    const credentials = await mintDevices(databaseUrl, keyEncryptionKey, ids);
    const kiosks = startKioskFleet({ urls: [link.url], kiosks: ids.map((id, i) => [id, credentials[i]!]), processes: 1 });
    const opened = await kiosks.open();
    await sleep(2_000);
    const before = await count("telemetry_samples");
    const liveTotal = opened.ok * liveBatches * perBatch;
    const load = loadAverage();
    const cpu0 = [fleet.child.pid!, link.child.pid!].map(cpuSeconds);
    const t0 = performance.now();
    const acked = kiosks.telemetry(liveBatches, perBatch).then((s) => log(`link acked all ${opened.ok * liveBatches} batches after ${s.toFixed(1)} s`));
    let stored = 0;
    while ((stored = (await count("telemetry_samples")) - before) < liveTotal && performance.now() - t0 < 300_000) await sleep(200);
    const seconds = (performance.now() - t0) / 1000;
    await acked;
    const cpu = [fleet.child.pid!, link.child.pid!].map(cpuSeconds).map((c, i) => c - cpu0[i]!);
    row([
      `fleet, live: ${opened.ok} kiosk streams × ${liveBatches} batches × ${perBatch} samples → link → JetStream → fleet`,
      `${stored} / ${liveTotal}`,
      seconds.toFixed(1),
      Math.round((opened.ok * liveBatches) / seconds),
      Math.round(stored / seconds),
      `fleet ${cpu[0]!.toFixed(1)}, link ${cpu[1]!.toFixed(1)} CPU-s`,
      load,
    ]);
    await kiosks.close();
  }
  await db.end();
  console.log(`\n${machine()} · BENCH_MESSAGES=${messages} BENCH_SAMPLES_PER_BATCH=${perBatch} BENCH_KIOSKS=${kioskCount} BENCH_LIVE_BATCHES=${liveBatches} npm run bench:telemetry\n`);
  console.log("| path | rows stored / expected | seconds | messages/s | samples/s | notes | load avg (1, 5, 15 min) |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of out) console.log(r);
  if (rates["fleet"] && rates["copy"]) console.log(`\nfleet's drain / bare COPY of the same rows (same run): **${(rates["fleet"] / rates["copy"]).toFixed(2)}**`);
  if (rates["fleet"] && rates["copybin"]) console.log(`fleet's drain / bare binary COPY of the same rows (same run): **${(rates["fleet"] / rates["copybin"]).toFixed(2)}**`);
});
process.exit(0);

/** The parent of a PostgreSQL backend: the postmaster. */
function postmasterOf(backendPid: number): number {
  return Number(readFileSync(`/proc/${backendPid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
}

/**
 * CPU seconds of a process and everything it started: its own, its exited children's (added to
 * it when reaped) and its live children's (PostgreSQL's backends, writer, WAL writer, …).
 */
function processTreeCpu(pid: number): number {
  const stat = (p: string | number) => {
    try {
      return readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ");
    } catch {
      return undefined;
    }
  };
  const own = stat(pid);
  if (!own) return 0;
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    const f = stat(p);
    if (f && Number(f[1]) === pid) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / 100;
}

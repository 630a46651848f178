// Benchmark: commands at 10k connected kiosks, beside a baseline in the same run.
//   fleet path: CommandService.SendCommand → PostgreSQL → a DeliverBatch on kiosks.deliver
//     (every link replica gets it and expands it to the streams it holds) → kiosk → ack +
//     result on the stream → JetStream → fleet's consumer (batched) → SUCCEEDED.
//   baselines (bare NATS, no PostgreSQL, fleet stopped): the bench itself sends the same
//     deliveries to link and waits for the kiosk's result on link.kiosk.<id>.command.result
//     or in link's batches on link.kiosk.commands (what link publishes to JetStream), so what fleet's bookkeeping costs is the
//     difference: one request per kiosk (a one-delivery batch: the per-kiosk path fleet
//     used before) and batches of 1,000 (the path fleet uses now).
// Kiosks: light HTTP/2 clients (bench/light-kiosk.ts, not the SDK) in child processes that
// ack and report SUCCEEDED as soon as a command arrives, like the SDK does.
// Phases: (1) sequential SendCommand → poll GetCommand until SUCCEEDED; (2) concurrent
// SendCommand; (3) broadcast as one CreateJob (rate BENCH_JOB_RATE a minute, default the
// maximum 6,000,000) over every online kiosk; (4) broadcast as N concurrent SendCommand
// calls (BENCH_SENDCOMMAND_BROADCAST=0 skips it); (5)–(7) the baselines.
// Run: npm run bench:commands (BENCH_KIOSKS=10000 BENCH_SEQUENTIAL=300 BENCH_CONCURRENT=2000
// BENCH_CONCURRENCY=32 BENCH_LINKS=2 BENCH_CLIENTS=2; loopback only; stops by itself).
// Broadcast at 100k: BENCH_BROADCAST_ONLY=1 BENCH_KIOSKS=100000 npm run bench:commands — only
// phase (3) and the two broadcast baselines; the kiosks' fleet rows are inserted with SQL
// (BENCH_CREATE_KIOSKS=sql, the default in this mode: CreateKiosk for 100k takes ~5 min here).
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { connect as natsConnect } from "@nats-io/transport-node";
import pg from "pg";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { CommandActionSchema, CommandService, CommandState, type SendCommandRequestSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { JobService } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { DeliverBatchReplySchema, DeliverBatchSchema, DeliverRequestSchema } from "@adminkiosk/proto/adminkiosk/link/v1/delivery_pb";
import { linkSubjects } from "@adminkiosk/runtime";
import { fromBinary } from "@bufbuild/protobuf";
import { KioskCommandEventSchema, KioskCommandEventsSchema, type KioskCommandEvent } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { sendCommandSql } from "../services/fleet/src/commands.js";
import { grpcUnaryCaller } from "./grpc-unary.js";
import { loadAverage, machine, percentile, startKioskFleet, cpuSeconds } from "./kiosk-fleet.js";
import { mintDevices } from "./mint-devices.js";
import { benchAdmin, withStack } from "./stack.js";

const kioskCount = Number(process.env["BENCH_KIOSKS"] ?? 10_000);
const sequential = Number(process.env["BENCH_SEQUENTIAL"] ?? 300);
const concurrent = Number(process.env["BENCH_CONCURRENT"] ?? 2_000);
const concurrency = Number(process.env["BENCH_CONCURRENCY"] ?? 32);
const linkCount = Number(process.env["BENCH_LINKS"] ?? 2);
const clientCount = Number(process.env["BENCH_CLIENTS"] ?? 2);
const jobRate = Number(process.env["BENCH_JOB_RATE"] ?? 6_000_000);
const broadcastOnly = process.env["BENCH_BROADCAST_ONLY"] === "1";
const sendCommandBroadcast = !broadcastOnly && process.env["BENCH_SENDCOMMAND_BROADCAST"] !== "0";
const sendCommandClient = process.env["BENCH_SENDCOMMAND_CLIENT"] === "connect" ? "connect" : "http2";
const createWithSql = (process.env["BENCH_CREATE_KIOSKS"] ?? (broadcastOnly ? "sql" : "api")) === "sql";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const display = (text: string) => ({ kind: { case: "displayMessage" as const, value: { text } } });
const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : "–");
/** Math.max of a list too long to spread as arguments (100,000 kiosks); NaN if any is NaN, as Math.max. */
const maxOf = (values: number[]) => values.reduce((m, v) => (Number.isNaN(v) || v > m ? v : m), -Infinity);

/**
 * What fleet's PostgreSQL sessions do, sampled every 50 ms until stopped (pg_stat_activity,
 * application_name fleet): sessions open and active on average, and the share of active
 * samples by wait event (none: on CPU in PostgreSQL) — whether the pool or a lock limits.
 */
function sampleWaits(db: pg.Pool) {
  const counts = new Map<string, number>();
  let samples = 0;
  let open = 0;
  let active = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      const { rows } = await db.query<{ state: string | null; wait: string | null }>(
        "SELECT state, wait_event_type || ':' || wait_event AS wait FROM pg_stat_activity WHERE application_name = 'fleet' AND pid <> pg_backend_pid()",
      );
      samples++;
      open += rows.length;
      for (const r of rows) {
        if (r.state !== "active") continue;
        active++;
        counts.set(r.wait ?? "none", (counts.get(r.wait ?? "none") ?? 0) + 1);
      }
      await sleep(50);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([w, n]) => `${w} ${((100 * n) / Math.max(active, 1)).toFixed(0)}%`);
      return `${samples} samples: ${(open / Math.max(samples, 1)).toFixed(1)} open, ${(active / Math.max(samples, 1)).toFixed(1)} active on average; active by wait event: ${top.join(", ") || "–"}`;
    },
  };
}

/**
 * CPU seconds so far of this bench's whole process tree by role (fleet, link, auth,
 * postgres, nats-server, redis, kiosk clients, the bench itself), from /proc: what each
 * part of the path costs per call when two snapshots are subtracted.
 */
function treeCpu(): Map<string, number> {
  const procs = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  const parentOf = new Map<number, number>();
  const stats = new Map<number, { name: string; cpu: number }>();
  for (const d of procs) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
      parentOf.set(Number(d), Number(fields[1]));
      let name = comm;
      if (comm === "node" || comm.startsWith("node")) {
        const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
        name = /services\/(\w+)\/src\/main/.exec(cmd)?.[1] ?? (cmd.includes("light-kiosk") ? "kiosk clients" : Number(d) === process.pid ? "bench" : "node");
      }
      stats.set(Number(d), { name, cpu: (Number(fields[11]) + Number(fields[12])) / 100 });
    } catch {
      // gone meanwhile
    }
  }
  const mine = (pid: number): boolean => {
    for (let p: number | undefined = pid, hops = 0; p && hops < 20; p = parentOf.get(p), hops++) if (p === process.pid) return true;
    return false;
  };
  const byRole = new Map<string, number>();
  for (const [pid, { name, cpu }] of stats) if (mine(pid)) byRole.set(name, (byRole.get(name) ?? 0) + cpu);
  return byRole;
}

/** The sum of a counter's series on a service's /metrics. */
async function metricOf(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/** CPU ms per call of each role between two treeCpu snapshots (processes that ended in between are missed). */
function cpuPerCall(before: Map<string, number>, after: Map<string, number>, calls: number): { text: string; byRole: Map<string, number>; total: number } {
  const parts = [...after].map(([role, cpu]) => [role, ((cpu - (before.get(role) ?? 0)) * 1000) / calls] as const).filter(([, v]) => v >= 0.005);
  const total = parts.reduce((s, [, v]) => s + v, 0);
  return { text: `${parts.sort((a, b) => b[1] - a[1]).map(([r, v]) => `${r} ${v.toFixed(2)}`).join(", ")} (all ${total.toFixed(2)})`, byRole: new Map(parts), total };
}

async function pool<T>(items: T[], width: number, work: (item: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i]!, i);
      }
    }),
  );
}

await withStack({ PASSWORD_SCRYPT_LOG_N: "10" }, async ({ databaseUrl, keyEncryptionKey, auth, redisUrl, natsUrl, start }) => {
  const shared = { REDIS_URL: redisUrl, NATS_URL: natsUrl, AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json` };
  const fleet = await start("fleet", { ...shared, DATABASE_URL: databaseUrl, AUTH_URL: auth.url });
  const links = await Promise.all(Array.from({ length: linkCount }, (_, i) => start("link", { ...shared, LINK_REPLICA_ID: `bench-link-${i}` })));
  const db = new pg.Pool({ connectionString: databaseUrl, max: 2, options: "-c search_path=fleet" });
  const { tokens } = await createClient(AuthService, createGrpcTransport({ baseUrl: auth.url })).login(benchAdmin);
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${tokens!.accessToken}`);
    return next(req);
  };
  const transport = createGrpcTransport({ baseUrl: fleet.url, interceptors: [bearer] });
  const kiosksApi = createClient(KioskService, transport);
  const commands: Client<typeof CommandService> = createClient(CommandService, transport);
  const jobs = createClient(JobService, transport);

  const ids = Array.from({ length: kioskCount }, (_, i) => `cmd-${i}`);
  let t = performance.now();
  if (createWithSql) await db.query("INSERT INTO kiosks (kiosk_id, name) SELECT id, id FROM unnest($1::text[]) AS id", [ids]);
  else await pool(ids, 32, async (kioskId) => void (await kiosksApi.createKiosk({ kiosk: { kioskId, name: kioskId } })));
  log(`created ${kioskCount} kiosks in fleet (${createWithSql ? "one SQL INSERT" : "CreateKiosk, 32 at a time"}) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  t = performance.now();
  const credentials = await mintDevices(databaseUrl, keyEncryptionKey, ids);
  log(`minted ${kioskCount} device credentials in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const kiosks = startKioskFleet({ urls: links.map((l) => l.url), kiosks: ids.map((id, i) => [id, credentials[i]!]), processes: clientCount });
  const receivedAt = new Map<string, number>();
  kiosks.onReceived((r) => receivedAt.set(r.commandId, r.at));
  const opened = await kiosks.open();
  log(`${opened.ok} streams open (${opened.failed} failed) in ${opened.seconds.toFixed(1)} s`);
  t = performance.now();
  let online = 0;
  // Not forever: at 100k on a loaded box (00:09 UTC 2026-12-08, load 15) fleet showed 99,429
  // for minutes with every stream open; the broadcast targets the kiosks fleet shows online.
  for (;;) {
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM kiosks WHERE connected");
    online = Number(rows[0]!.n);
    if (online >= opened.ok || performance.now() - t > 60_000) break;
    await sleep(200);
  }
  log(`fleet shows ${online} of ${opened.ok} online ${((performance.now() - t) / 1000).toFixed(1)} s after the last welcome`);
  await sleep(3_000);
  const out: string[] = [];
  const row = (cells: (string | number)[]) => {
    out.push(`| ${cells.join(" | ")} |`);
    log(out.at(-1)!);
  };
  const random = () => ids[Math.floor(Math.random() * ids.length)]!;
  /** What the closing lines compare: fleet's sequential round trip with the bare one, and SendCommand's rate. */
  const summary: { fleet?: number[]; bare?: number[]; callsPerSecond?: number; bareStatementsPerSecond?: number; cpuPerCall?: ReturnType<typeof cpuPerCall> } = {};
  const cpuOf = () => [fleet.child.pid!, ...links.map((l) => l.child.pid!)].map(cpuSeconds);
  const cpuDelta = (before: number[]) => {
    const now = cpuOf();
    return `fleet ${(now[0]! - before[0]!).toFixed(1)}, link ${now.slice(1).reduce((s, v, i) => s + v - before[i + 1]!, 0).toFixed(1)}`;
  };

  // (1) Sequential: one command at a time; SUCCEEDED as seen through GetCommand (polled every 2 ms).
  if (!broadcastOnly) {
    const load = loadAverage();
    const cpu = cpuOf();
    const api: number[] = [];
    const recv: number[] = [];
    const done: number[] = [];
    const serverSide: number[] = [];
    const sentAt: [string, number][] = [];
    for (let i = 0; i < sequential; i++) {
      const t0 = Date.now();
      const { command } = await commands.sendCommand({ kioskId: random(), action: display(`seq ${i}`) });
      api.push(Date.now() - t0);
      const id = command!.commandId;
      for (;;) {
        const c = (await commands.getCommand({ commandId: id })).command!;
        if (c.state === CommandState.SUCCEEDED) break;
        if (Date.now() - t0 > 30_000) throw new Error(`command ${id} stuck in ${CommandState[c.state]}`);
        await sleep(2);
      }
      done.push(Date.now() - t0);
      sentAt.push([id, t0]);
    }
    summary.fleet = done;
    await sleep(300); // the kiosks report receive times every 50 ms
    for (const [id, t0] of sentAt) recv.push((receivedAt.get(id) ?? NaN) - t0);
    const { rows } = await db.query<{ ms: number }>(
      "SELECT extract(epoch FROM finished_at - created_at) * 1000 AS ms FROM commands WHERE action_kind = 'displayMessage' AND job_id IS NULL ORDER BY created_at",
    );
    rows.forEach((r) => serverSide.push(Number(r.ms)));
    row([
      `fleet: ${sequential} sequential SendCommand, poll GetCommand`,
      `${ms(percentile(api, 50))} / ${ms(percentile(api, 99))}`,
      `${ms(percentile(recv, 50))} / ${ms(percentile(recv, 99))}`,
      `${ms(percentile(done, 50))} / ${ms(percentile(done, 99))} (in PostgreSQL: ${ms(percentile(serverSide, 50))} / ${ms(percentile(serverSide, 99))})`,
      `${(done.reduce((a, b) => a + b, 0) / sequential).toFixed(1)} ms avg`,
      cpuDelta(cpu),
      load,
    ]);
  }

  // (2) Concurrent: BENCH_CONCURRENT commands, BENCH_CONCURRENCY callers; SUCCEEDED from PostgreSQL (no polling load).
  if (!broadcastOnly) {
    const load = loadAverage();
    const cpu = cpuOf();
    const waits = sampleWaits(db);
    const tree = treeCpu();
    const deliveryMessages = await metricOf(fleet.url, "fleet_delivery_messages_total");
    const api: number[] = [];
    const started = new Map<string, number>();
    const t0 = Date.now();
    const targets = Array.from({ length: concurrent }, (_, i) => ids[i % ids.length]!);
    // The calls go out through bench/grpc-unary.ts (one HTTP/2 session, gRPC framing by hand) unless
    // BENCH_SENDCOMMAND_CLIENT=connect: connect-node's client cost ~1 ms of CPU per call on the 2 cores fleet shares.
    const lean = sendCommandClient === "http2" ? grpcUnaryCaller(fleet.url, `Bearer ${tokens!.accessToken}`) : undefined;
    const send = lean
      ? (req: MessageInitShape<typeof SendCommandRequestSchema>) => lean.call(CommandService.method.sendCommand, req)
      : (req: MessageInitShape<typeof SendCommandRequestSchema>) => commands.sendCommand(req);
    await pool(targets, concurrency, async (kioskId, i) => {
      const s = Date.now();
      const { command } = await send({ kioskId, action: display(`conc ${i}`), idempotencyKey: `conc-${i}` });
      api.push(Date.now() - s);
      started.set(command!.commandId, s);
    });
    lean?.close();
    const sentSeconds = (Date.now() - t0) / 1000;
    summary.callsPerSecond = concurrent / sentSeconds;
    log(`fleet's PostgreSQL sessions while the calls ran: ${await waits.stop()}`);
    const perCall = cpuPerCall(tree, treeCpu(), concurrent);
    log(`CPU ms per SendCommand while the calls ran (client: ${sendCommandClient}), by process: ${perCall.text}`);
    summary.cpuPerCall = perCall;
    log(`delivery messages to link while the calls ran: ${(await metricOf(fleet.url, "fleet_delivery_messages_total")) - deliveryMessages} for ${concurrent} commands`);
    for (;;) {
      const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM commands WHERE command_id = ANY($1) AND state = 'succeeded'", [[...started.keys()]]);
      if (Number(rows[0]!.n) >= started.size) break;
      if (Date.now() - t0 > 120_000) break;
      await sleep(100);
    }
    const allMs = Date.now() - t0;
    const { rows } = await db.query<{ command_id: string; ms: number }>(
      "SELECT command_id, extract(epoch FROM finished_at - created_at) * 1000 AS ms FROM commands WHERE command_id = ANY($1) AND state = 'succeeded'",
      [[...started.keys()]],
    );
    const recv = [...started].map(([id, s]) => (receivedAt.get(id) ?? NaN) - s).filter(Number.isFinite);
    const serverSide = rows.map((r) => Number(r.ms));
    row([
      `fleet: ${concurrent} SendCommand, ${concurrency} at a time (${Math.round(concurrent / sentSeconds)}/s sent; ${rows.length} succeeded in ${(allMs / 1000).toFixed(1)} s)`,
      `${ms(percentile(api, 50))} / ${ms(percentile(api, 99))}`,
      `${ms(percentile(recv, 50))} / ${ms(percentile(recv, 99))}`,
      `in PostgreSQL (created → succeeded): ${ms(percentile(serverSide, 50))} / ${ms(percentile(serverSide, 99))}`,
      "",
      cpuDelta(cpu),
      load,
    ]);

    // Baseline: SendCommand's own statement (services/fleet/src/commands.ts), run bare by the bench with
    // the same callers over a pool like fleet's (10 sessions, prepared, custom plans): what PostgreSQL
    // alone does. The commands expire at once (TTL 1 ms), so nothing delivers them.
    const bareLoad = loadAverage();
    const bare = new pg.Pool({ connectionString: databaseUrl, max: 10, options: "-c search_path=fleet -c plan_cache_mode=force_custom_plan" });
    const action = Buffer.from(toBinary(CommandActionSchema, create(CommandActionSchema, display("bare"))));
    const bareApi: number[] = [];
    const bareTree = treeCpu();
    const tb = Date.now();
    await pool(targets, concurrency, async (kioskId, i) => {
      const s = Date.now();
      await bare.query({ name: "send-command", text: sendCommandSql, values: [randomUUID(), kioskId, action, "displayMessage", "bench-bare", `bare-${i}`, "00", 1, null, "127.0.0.1", `bare-${i}`] });
      bareApi.push(Date.now() - s);
    });
    const bareSeconds = (Date.now() - tb) / 1000;
    // Read before its sessions end: the CPU of a process gone by then is not counted.
    const bareCpu = cpuPerCall(bareTree, treeCpu(), concurrent).text;
    // Expired now (fleet's sweep would too), so no later phase finds them queued ahead of its own.
    await bare.query("UPDATE commands SET state = 'expired', finished_at = now() WHERE issued_by = 'bench-bare' AND state = 'queued'");
    await bare.end();
    summary.bareStatementsPerSecond = concurrent / bareSeconds;
    log(`CPU ms per bare SendCommand statement, by process: ${bareCpu}`);
    row([
      `baseline: SendCommand's statement alone, ${concurrent} from the bench, ${concurrency} at a time over 10 sessions (${Math.round(summary.bareStatementsPerSecond)}/s)`,
      `${ms(percentile(bareApi, 50))} / ${ms(percentile(bareApi, 99))}`,
      "–",
      "–",
      "",
      "",
      bareLoad,
    ]);
  }

  // (3) Broadcast as one bulk job at the highest rate (100000/min) over every online kiosk.
  const broadcastRow = async (label: string, startCommands: () => Promise<Set<string> | string>) => {
    const load = loadAverage();
    const cpu = cpuOf();
    const before = kiosks.received.length;
    const t0 = Date.now();
    const which = await startCommands();
    // A job targets the kiosks online when it is created (a few may have reconnected meanwhile).
    const expected = typeof which === "string" ? Number((await jobs.getJob({ jobId: which })).job?.progress?.total ?? opened.ok) : which.size;
    const apiMs = Date.now() - t0;
    let lastAck = NaN;
    let lastDone = NaN;
    let allCreated = NaN;
    let count = 0;
    for (;;) {
      const { rows } = await db.query<{ total: string; acked: string; done: string; last_ack: Date | null; last_done: Date | null }>(
        typeof which === "string"
          ? "SELECT count(*) AS total, count(acked_at) AS acked, count(*) FILTER (WHERE state = 'succeeded') AS done, max(acked_at) AS last_ack, max(finished_at) AS last_done FROM commands WHERE job_id = $1"
          : "SELECT count(*) AS total, count(acked_at) AS acked, count(*) FILTER (WHERE state = 'succeeded') AS done, max(acked_at) AS last_ack, max(finished_at) AS last_done FROM commands WHERE command_id = ANY($1)",
        [typeof which === "string" ? which : [...which]],
      );
      const r = rows[0]!;
      count = Number(r.done);
      if (Number.isNaN(allCreated) && Number(r.total) >= expected) allCreated = Date.now() - t0;
      if (count >= expected && Number(r.acked) >= expected) {
        lastAck = r.last_ack!.getTime() - t0;
        lastDone = Date.now() - t0;
        break;
      }
      if (Date.now() - t0 > 180_000) {
        log(`gave up after 180 s: ${count} of ${expected} SUCCEEDED, the last at ${ms((r.last_done?.getTime() ?? NaN) - t0)} ms`);
        break;
      }
      await sleep(100);
    }
    const got = kiosks.received.slice(before);
    const lastReceive = maxOf(got.map((g) => g.at)) - t0;
    row([
      `${label} (${got.length} received, ${count} of ${expected} succeeded)`,
      `${apiMs} (call)`,
      `last: ${ms(lastReceive)}`,
      `all commands in PostgreSQL: ${ms(allCreated)}; last ack received by link: ${ms(lastAck)}; all SUCCEEDED in fleet: ${ms(lastDone)}`,
      "",
      cpuDelta(cpu),
      load,
    ]);
  };
  await broadcastRow(`fleet: broadcast to ${opened.ok} kiosks as one CreateJob, rate ${jobRate}/min`, async () => {
    const { job } = await jobs.createJob({ description: "bench broadcast", action: display("everyone"), target: { status: KioskStatus.ONLINE }, ratePerMinute: jobRate });
    log(`job ${job!.jobId}: ${JSON.stringify({ state: job!.state, total: job!.progress?.total })}`);
    setTimeout(() => void jobs.getJob({ jobId: job!.jobId }).then((r) => log(`job after 5 s: state ${r.job?.state} ${JSON.stringify(r.job?.progress)} ${r.job?.endReason}`), () => {}), 5_000);
    return job!.jobId;
  });
  await sleep(3_000);
  // (4) Broadcast as N SendCommand calls (no rate limit), BENCH_CONCURRENCY at a time.
  if (sendCommandBroadcast) await broadcastRow(`fleet: broadcast to ${opened.ok} kiosks as ${opened.ok} SendCommand calls, ${concurrency} at a time`, async () => {
    const set = new Set<string>();
    await pool(ids, concurrency, async (kioskId) => void set.add((await commands.sendCommand({ kioskId, action: display("everyone, one by one") })).command!.commandId));
    return set;
  });

  // Baseline: the same deliveries straight to link over NATS, fleet stopped (no PostgreSQL).
  const { rows: sessions } = await db.query<{ kiosk_id: string; session_id: string }>("SELECT kiosk_id, session_id FROM kiosks WHERE connected");
  const sessionOf = new Map(sessions.map((s) => [s.kiosk_id, s.session_id]));
  await fleet.stop();
  await sleep(1_000);
  const nc = await natsConnect({ servers: natsUrl });
  const results = new Map<string, number>();
  const resultWaiters = new Map<string, () => void>();
  const onResult = (e: KioskCommandEvent) => {
    if (e.body.case !== "result") return;
    const id = e.body.value.commandId;
    results.set(id, Date.now());
    resultWaiters.get(id)?.();
  };
  // A result of its own (traced), or in a link replica's batch of acks and results.
  const sub = nc.subscribe("link.kiosk.*.command.result", { callback: (_err, m) => onResult(fromBinary(KioskCommandEventSchema, m.data)) });
  const batchSub = nc.subscribe(linkSubjects.commandBatch, { callback: (_err, m) => fromBinary(KioskCommandEventsSchema, m.data).events.forEach(onResult) });
  const request = (kioskId: string, commandId: string) =>
    create(DeliverRequestSchema, {
      kioskId,
      sessionId: sessionOf.get(kioskId) ?? "",
      body: { case: "command", value: { commandId, action: display("bare"), expireTime: timestampFromMs(Date.now() + 3_600_000) } },
    });
  // The per-kiosk path: one request per kiosk (a batch of one; only the replica holding it answers).
  const deliver = async (kioskId: string, commandId: string) => {
    const reply = await nc.request(linkSubjects.deliveries, toBinary(DeliverBatchSchema, create(DeliverBatchSchema, { deliveries: [request(kioskId, commandId)] })), { timeout: 10_000 });
    if (!fromBinary(DeliverBatchReplySchema, reply.data).answers[0]?.reply?.accepted) throw new Error(`${kioskId} refused`);
  };
  // The batched path: up to 1,000 kiosks per message, every replica answering for its own.
  const deliverMany = async (targets: [string, string][]) => {
    const answers = await nc.requestMany(linkSubjects.deliveries, toBinary(DeliverBatchSchema, create(DeliverBatchSchema, { deliveries: targets.map(([k, c]) => request(k, c)) })), { strategy: "timer", maxWait: 10_000 });
    let answered = 0;
    for await (const m of answers) {
      answered += fromBinary(DeliverBatchReplySchema, m.data).answers.length;
      if (answered >= targets.length) break;
    }
  };
  if (!broadcastOnly) {
    const load = loadAverage();
    const cpu = cpuOf();
    const recv: number[] = [];
    const done: number[] = [];
    const sentAt: [string, number][] = [];
    for (let i = 0; i < sequential; i++) {
      const id = randomUUID();
      const t0 = Date.now();
      const finished = new Promise<void>((r) => resultWaiters.set(id, r));
      await deliver(random(), id);
      await finished;
      done.push(Date.now() - t0);
      sentAt.push([id, t0]);
    }
    summary.bare = done;
    await sleep(300);
    for (const [id, t0] of sentAt) recv.push((receivedAt.get(id) ?? NaN) - t0);
    row([`baseline: ${sequential} sequential deliveries, bare NATS request → kiosk → result on NATS`, "–", `${ms(percentile(recv, 50))} / ${ms(percentile(recv, 99))}`, `${ms(percentile(done, 50))} / ${ms(percentile(done, 99))}`, "", cpuDelta(cpu).replace(/fleet [^,]+, /, "fleet stopped, "), load]);
  }
  {
    const load = loadAverage();
    const cpu = cpuOf();
    const before = kiosks.received.length;
    const targets = [...sessionOf.keys()];
    const commandIds = targets.map(() => randomUUID());
    const t0 = Date.now();
    const all = Promise.all(commandIds.map((id) => new Promise<void>((r) => resultWaiters.set(id, r))));
    await pool(targets, 1_000, (kioskId, i) => deliver(kioskId, commandIds[i]!));
    const sentMs = Date.now() - t0;
    await Promise.race([all, sleep(120_000)]);
    const lastResult = maxOf(commandIds.map((id) => results.get(id) ?? NaN)) - t0;
    const got = kiosks.received.slice(before);
    row([
      `baseline: broadcast to ${targets.length} kiosks, one bare NATS request per kiosk (the old per-kiosk path), 1000 in flight (${got.length} received)`,
      `${sentMs} (all replies)`,
      `last: ${ms(maxOf(got.map((g) => g.at)) - t0)}`,
      `last result on NATS: ${ms(lastResult)}`,
      "",
      cpuDelta(cpu).replace(/fleet [^,]+, /, "fleet stopped, "),
      load,
    ]);
  }
  {
    const load = loadAverage();
    const cpu = cpuOf();
    const before = kiosks.received.length;
    const targets = [...sessionOf.keys()];
    const commandIds = targets.map(() => randomUUID());
    const t0 = Date.now();
    const all = Promise.all(commandIds.map((id) => new Promise<void>((r) => resultWaiters.set(id, r))));
    const chunks = Array.from({ length: Math.ceil(targets.length / 1000) }, (_, c) => targets.slice(c * 1000, (c + 1) * 1000).map((k, j) => [k, commandIds[c * 1000 + j]!] as [string, string]));
    await Promise.all(chunks.map(deliverMany));
    const sentMs = Date.now() - t0;
    await Promise.race([all, sleep(120_000)]);
    const lastResult = maxOf(commandIds.map((id) => results.get(id) ?? NaN)) - t0;
    const got = kiosks.received.slice(before);
    row([
      `baseline: broadcast to ${targets.length} kiosks, bare NATS batches of 1000 kiosks (${got.length} received)`,
      `${sentMs} (all replies)`,
      `last: ${ms(maxOf(got.map((g) => g.at)) - t0)}`,
      `last result on NATS: ${ms(lastResult)}`,
      "",
      cpuDelta(cpu).replace(/fleet [^,]+, /, "fleet stopped, "),
      load,
    ]);
  }
  sub.unsubscribe();
  batchSub.unsubscribe();
  await nc.close();
  const stats = await kiosks.stats();
  log(`kiosk clients: ${JSON.stringify(stats)}`);
  await kiosks.close();
  await db.end();

  console.log(`\n${machine()} · ${kioskCount} kiosks (${opened.ok} connected) on ${linkCount} link processes, ${clientCount} client processes · BENCH_KIOSKS=${kioskCount} BENCH_SEQUENTIAL=${sequential} BENCH_CONCURRENT=${concurrent} BENCH_CONCURRENCY=${concurrency}${broadcastOnly ? " BENCH_BROADCAST_ONLY=1" : ""} npm run bench:commands\n`);
  console.log("| scenario | API call ms p50 / p99 | kiosk receives after ms p50 / p99 | SUCCEEDED after ms p50 / p99 | mean | CPU-s during the phase | load avg (1, 5, 15 min) |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of out) console.log(r);
  const f = summary.fleet ?? [];
  const b = summary.bare ?? [];
  console.log(
    `\nround trip SendCommand → SUCCEEDED p50 / p99: fleet ${ms(percentile(f, 50))} / ${ms(percentile(f, 99))} ms, bare NATS ${ms(percentile(b, 50))} / ${ms(percentile(b, 99))} ms ` +
      `(fleet − bare: ${ms(percentile(f, 50) - percentile(b, 50))} / ${ms(percentile(f, 99) - percentile(b, 99))} ms; bare / fleet p50 ${(percentile(b, 50) / percentile(f, 50)).toFixed(2)}); ` +
      `SendCommand ${Math.round(summary.callsPerSecond ?? NaN)} calls/s with ${concurrency} callers (client: ${sendCommandClient}), its statement alone ${Math.round(summary.bareStatementsPerSecond ?? NaN)}/s ` +
      `(fleet / bare ${((summary.callsPerSecond ?? NaN) / (summary.bareStatementsPerSecond ?? NaN)).toFixed(2)})`,
  );
  // What the CPU per command says the path could do if it had the box to itself: the whole path
  // (every process but the bench's own caller) on 2 cores, and fleet alone on one core.
  const c = summary.cpuPerCall;
  if (c) {
    const path = c.total - (c.byRole.get("bench") ?? 0);
    const fleetMs = c.byRole.get("fleet") ?? NaN;
    console.log(
      `CPU per SendCommand (whole lifecycle) ${c.total.toFixed(2)} ms in all, ${path.toFixed(2)} ms without the bench's caller: ` +
        `the path's ceiling on 2 cores ≈ ${Math.round(2000 / path)} commands/s; fleet ${fleetMs.toFixed(2)} ms ≈ ${Math.round(1000 / fleetMs)} commands/s per core of fleet`,
    );
  }
});
process.exit(0);

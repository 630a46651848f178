// Benchmark: what holding kiosk streams costs link, beside bare servers in the same run.
//   baselines (fresh processes, each only welcomes and holds a stream, same codecs):
//     bare node:http2 with hand-written gRPC framing (bench/bare-stream-server.ts),
//     bare @grpc/grpc-js (bench/bare-grpc-server.ts), and with BENCH_CONNECT_BASELINE=1
//     the bare connect-node adapter link used to be built on (bench/bare-connect-server.ts);
//   link: BENCH_LINKS real link processes (default 1: the issue's "one process"): device
//     credential check, cool-down check, presence in Redis, `kiosk.<id>.deliver`
//     subscription, a JetStream event per connection, heartbeats refreshing presence.
//   load: light kiosks (bench/light-kiosk.ts: raw HTTP/2 + gRPC framing, not the SDK) in
//     BENCH_CLIENTS child processes, ~1000 streams per HTTP/2 connection (as Envoy
//     multiplexes them to link), a heartbeat every 30 s spread over the 30 s;
//   credentials: minted through auth's own signing code (bench/mint-devices.ts).
// For each N: fresh servers; open the first 1000 streams (CPU per connect with few held),
// then N − 2000, then the last 1000 (CPU per connect with N − 1000 held): the two are the
// same run's answer to "does a connect cost more when many are held"; RSS growth per stream;
// CPU while holding for one heartbeat interval; then close.
// Run: npm run bench:link:scale  (BENCH_STREAMS="10000,50000,100000" BENCH_LINKS=1
// BENCH_CLIENTS=4 BENCH_HOLD_MS=30000 BENCH_BASELINE=1; loopback only; stops by itself).
// npm run bench:link runs the same at BENCH_STREAMS="1000,10000" with the connect-node baseline.
import { execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "@adminkiosk/devstack";
import { Redis } from "ioredis";
import { kioskPresenceKey } from "@adminkiosk/runtime";
import { cpuSeconds, loadAverage, machine, memAvailableMiB, rssMiB, startKioskFleet, type KioskFleet } from "./kiosk-fleet.js";
import { mintDevices } from "./mint-devices.js";
import { withStack } from "./stack.js";

const sizes = (process.env["BENCH_STREAMS"] ?? "10000,50000,100000").split(",").map(Number);
const linkCount = Number(process.env["BENCH_LINKS"] ?? 1);
const clientCount = Number(process.env["BENCH_CLIENTS"] ?? 4);
const holdMs = Number(process.env["BENCH_HOLD_MS"] ?? 30_000);
const baseline = process.env["BENCH_BASELINE"] !== "0";
const connectBaseline = process.env["BENCH_CONNECT_BASELINE"] === "1";
/**
 * After the hold (link rows, one link process): a fresh link process is started beside it, the
 * one holding every stream is killed with SIGKILL, and the kiosks reconnect as the SDK does, to
 * the other (the SDK's next address; in a cluster, the Service's other pods): how long until
 * every kiosk is back, and how many were told to come back later.
 */
const storm = process.env["BENCH_STORM"] !== "0";
const command = process.env["BENCH_COMMAND"] ?? "npm run bench:link:scale";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
/** Streams in the first and the last phase, whose CPU per connect is compared. */
const edge = 1000;

/** A light kiosk process's counts (bench/light-kiosk.ts "stats"), with the storm's. */
type StormStats = Awaited<ReturnType<KioskFleet["stats"]>>[number] & { pushbackMax?: number; rewelcomedBy?: number[] };

interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
  /** Starts another server of the kind (link only). */
  another?(): Promise<Server>;
  kill?(): void;
}

await withStack({ PASSWORD_SCRYPT_LOG_N: "10" }, async ({ databaseUrl, keyEncryptionKey, auth, redisUrl, natsUrl, start }) => {
  const max = Math.max(...sizes);
  const ids = Array.from({ length: max }, (_, i) => `scale-${i}`);
  const tm = performance.now();
  const credentials = await mintDevices(databaseUrl, keyEncryptionKey, ids);
  log(`minted ${max} device credentials in ${((performance.now() - tm) / 1000).toFixed(1)} s`);
  const kiosks = ids.map((id, i) => [id, credentials[i]!] as [string, string]);

  let replica = 0;
  /** The replica id of the process started for the storm. */
  let standbyReplica = "";
  const startLinks = async (): Promise<Server[]> =>
    Promise.all(
      Array.from({ length: linkCount }, async () => {
        const env = {
          REDIS_URL: redisUrl,
          NATS_URL: natsUrl,
          AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json`,
          LINK_REPLICA_ID: `bench-link-${replica++}`,
          NODE_OPTIONS: "--max-old-space-size=8192",
        };
        const server = (l: Awaited<ReturnType<typeof start>>): Server => ({
          url: l.url,
          pid: l.child.pid!,
          // Profiled (BENCH_CPU_PROF=link), a process writes its profile as it exits: give its drain time.
          stop: () => l.stop(process.env["BENCH_CPU_PROF"] ? 300_000 : undefined),
          another: async () => {
            standbyReplica = `bench-link-${replica++}`;
            return server(await start("link", { ...env, LINK_REPLICA_ID: standbyReplica }));
          },
          kill: () => l.child.kill("SIGKILL"),
        });
        return server(await start("link", env));
      }),
    );
  const startBare = (file: string) => async (): Promise<Server[]> =>
    Promise.all(
      Array.from({ length: linkCount }, async () => {
        const bare = spawn(process.execPath, ["--max-old-space-size=8192", "--import", "tsx", join(repoRoot, "bench", file)], { stdio: ["ignore", "pipe", "inherit"] });
        const port = await new Promise<number>((resolve) => bare.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
        return {
          url: `http://127.0.0.1:${port}`,
          pid: bare.pid!,
          stop: async () => {
            bare.kill("SIGTERM");
            await new Promise((r) => bare.once("exit", r));
          },
        };
      }),
    );
  const kinds: [string, () => Promise<Server[]>][] = [
    ...(baseline
      ? ([
          ["bare node:http2 (baseline)", startBare("bare-stream-server.ts")],
          ["bare grpc-js (baseline)", startBare("bare-grpc-server.ts")],
        ] as [string, () => Promise<Server[]>][])
      : []),
    ...(connectBaseline ? ([["bare connect-node (old baseline)", startBare("bare-connect-server.ts")]] as [string, () => Promise<Server[]>][]) : []),
    ["link", startLinks],
  ];

  const rows: string[] = [];
  for (const n of sizes) {
    for (const [name, startServers] of kinds) {
      const needMiB = (n * 60) / 1024 + 2048;
      if (memAvailableMiB() < needMiB) {
        rows.push(`| ${n} | ${name} | not run: ${Math.round(memAvailableMiB())} MiB available, ~${Math.round(needMiB)} MiB needed | | | | | | | | | | |`);
        log(rows.at(-1)!);
        continue;
      }
      const servers = await startServers();
      await sleep(2_000);
      const load0 = loadAverage();
      const cpuOf = () => servers.reduce((s, x) => s + cpuSeconds(x.pid), 0);
      const rss0 = servers.reduce((s, x) => s + rssMiB(x.pid), 0);
      const urls = servers.map((s) => s.url);
      // Three phases: the first `edge` streams, the middle, the last `edge` (one phase when small).
      const phases = n >= 3 * edge ? [kiosks.slice(0, edge), kiosks.slice(edge, n - edge), kiosks.slice(n - edge, n)] : [kiosks.slice(0, n)];
      const fleets: KioskFleet[] = [];
      const cpuPerPhase: number[] = [];
      let ok = 0;
      let failed = 0;
      let unwelcomed = 0;
      let seconds = 0;
      let cpuConnect = 0;
      const errors: string[] = [];
      log(`${name}: opening ${n} streams over ${servers.length} server process(es) (load ${load0})`);
      for (const [p, share] of phases.entries()) {
        const fleet = startKioskFleet({ urls, kiosks: share, processes: p === 1 ? clientCount : 1, streamsPerConnection: 1000 });
        fleets.push(fleet);
        const cpu = cpuOf();
        const opened = await fleet.open();
        cpuConnect += cpuOf() - cpu;
        cpuPerPhase.push(((cpuOf() - cpu) * 1000) / Math.max(1, opened.ok));
        ok += opened.ok;
        failed += opened.failed;
        unwelcomed += opened.unwelcomed;
        seconds += opened.seconds;
        errors.push(...opened.lastErrors);
      }
      await sleep(3_000);
      const rss1 = servers.reduce((s, x) => s + rssMiB(x.pid), 0);
      const perServer = servers.map((x) => Math.round(rssMiB(x.pid)));
      // Hold for one heartbeat interval: every kiosk heartbeats once (spread).
      const cpuHold0 = cpuOf();
      await sleep(holdMs);
      const cpuHold1 = cpuOf();
      const stats = (await Promise.all(fleets.map((f) => f.stats()))).flat();
      const stillOpen = stats.reduce((s, x) => s + x.open, 0);
      const clientRss = stats.reduce((s, x) => s + x.rssMiB, 0);
      const load1 = loadAverage();
      // The reconnect storm: every link process killed at once and started again on its port.
      let stormCell = "–";
      if (storm && servers.length === 1 && servers[0]!.another) {
        const standby = await servers[0]!.another();
        await sleep(2_000);
        const loadStorm = loadAverage();
        const standbyCpu0 = cpuSeconds(standby.pid);
        // The light kiosks' processes share the box: their CPU in the storm, beside link's.
        const clientPids = fleets.flatMap((f) => f.pids);
        const clientCpu0 = clientPids.reduce((s, p) => s + cpuSeconds(p), 0);
        // And NATS's and Redis's (found by their ports): who else the storm keeps busy.
        const pidOn = (pattern: string) => Number(execFileSync("pgrep", ["-f", pattern], { encoding: "utf8" }).trim().split("\n")[0] || 0);
        const infra = [
          ["NATS", pidOn(`nats-server .*-p ${new URL(natsUrl).port}`)],
          ["Redis", pidOn(`redis-server 127.0.0.1:${new URL(redisUrl).port}`)],
        ] as const;
        const infraCpu0 = infra.map(([, pid]) => (pid ? cpuSeconds(pid) : 0));
        fleets.forEach((f) => f.storm(standby.url));
        await sleep(500); // the clients have the word before the streams end
        const t0 = Date.now();
        servers[0]!.kill!();
        servers.splice(0, 1, standby);
        log(`${name}: killed with ${stillOpen} streams; waiting for them to come back to the other process`);
        let back = 0;
        let s2 = stats as StormStats[];
        // The fresh process's CPU, sampled every 2 s: how busy it was while the herd came back.
        const busy: number[] = [];
        let cpuPrev = standbyCpu0;
        while (Date.now() - t0 < 300_000) {
          await sleep(2_000);
          const c = cpuSeconds(standby.pid);
          busy.push((c - cpuPrev) / 2);
          cpuPrev = c;
          s2 = (await Promise.all(fleets.map((f) => f.stats()))).flat() as StormStats[];
          back = s2.reduce((s, x) => s + x.rewelcomed, 0);
          if (back >= stillOpen) break;
        }
        const standbyCpu = cpuSeconds(standby.pid) - standbyCpu0;
        const clientCpu = clientPids.reduce((s, p) => s + cpuSeconds(p), 0) - clientCpu0;
        const infraCell = infra.map(([name, pid], i) => `${name} ${pid ? (cpuSeconds(pid) - infraCpu0[i]!).toFixed(1) : "?"}`).join(", ");
        // Presence converged: every kiosk's record names the fresh process (what fleet and the
        // other replicas look a kiosk's replica up by), read in pipelines of 5,000.
        const redis = new Redis(redisUrl);
        let presenceCell = "";
        const presenceStart = Date.now();
        for (;;) {
          let onStandby = 0;
          for (let i = 0; i < n; i += 5_000) {
            const p = redis.pipeline();
            for (const [id] of kiosks.slice(i, Math.min(n, i + 5_000))) p.hget(kioskPresenceKey(id), "replica");
            for (const [, r] of (await p.exec()) ?? []) if (r === standbyReplica) onStandby++;
          }
          presenceCell = `presence: ${onStandby} of ${stillOpen} records name the fresh process ${((Date.now() - t0) / 1000).toFixed(1)} s after the kill`;
          if (onStandby >= stillOpen || Date.now() - presenceStart > 30_000) break;
          await sleep(1_000);
        }
        await redis.quit();
        const seconds = Math.max(...s2.map((x) => x.lastRewelcomeMs)) / 1000;
        const pushbacks = s2.reduce((s, x) => s + x.pushbacks, 0);
        const pushbackMax = Math.max(...s2.map((x) => x.pushbackMax ?? 0));
        const retried = s2.reduce((s, x) => s + x.retriedErrors, 0);
        const by = Array.from({ length: 12 }, (_, i) => s2.reduce((s, x) => s + (x.rewelcomedBy?.[i] ?? 0), 0));
        const timeline = by.map((b, i) => `${(i + 1) * 10} s: ${b}`).filter((_, i) => i === 0 || by[i - 1]! < stillOpen).join(", ");
        const busyPct = busy.map((b) => Math.round(b * 100));
        stormCell = `${back} of ${stillOpen} back in **${seconds.toFixed(1)} s** (${back >= stillOpen && seconds <= 60 ? "within" : "NOT within"} 60 s); back by ${timeline}; ${pushbacks} told to come back later (pushback, longest ${Math.round(pushbackMax)} ms), ${retried} other ends retried (the killed streams); ${presenceCell}; fresh link: ${standbyCpu.toFixed(1)} CPU-s, ${((standbyCpu * 1000) / Math.max(1, back)).toFixed(2)} ms per reconnect, busy % of a core every 2 s: ${busyPct.join(" ")}; the light kiosks' processes: ${clientCpu.toFixed(1)} CPU-s, ${infraCell} CPU-s; load ${loadStorm}`;
        log(`storm: ${stormCell}`);
        log(`storm details: ${JSON.stringify(s2.map((x) => ({ ...x, lastError: undefined })))}`);
      }
      await Promise.all(fleets.map((f) => f.close()));
      await Promise.all(servers.map((s) => s.stop()));
      rows.push(
        `| ${n} | ${name} | ${ok}${failed ? ` (${failed} failed, ${unwelcomed} of them not welcomed in 60 s)` : ""} | ${seconds.toFixed(1)} | ${Math.round(ok / seconds)} | ${Math.round(rss1)}${servers.length > 1 ? ` (${perServer.join(" + ")})` : ""} | **${(((rss1 - rss0) * 1024) / Math.max(1, ok)).toFixed(1)}** | ${cpuConnect.toFixed(1)} | ${cpuPerPhase.map((c) => c.toFixed(2)).join(" / ")}${cpuPerPhase.length === 3 ? ` (last ÷ first: **${(cpuPerPhase[2]! / cpuPerPhase[0]!).toFixed(2)}×**; issue 12 asks ≤ 1.5×)` : ""} | ${(((cpuHold1 - cpuHold0) / (holdMs / 1000)) * 100).toFixed(1)}% | ${stillOpen} | ${clientRss} MiB | ${load0} → ${load1} | ${stormCell} |`,
      );
      log(rows.at(-1)!);
      if (errors.some(Boolean)) log(`errors: ${errors.filter(Boolean).join(" | ")}`);
      await sleep(3_000);
    }
  }
  console.log(`\n${machine()} · ${linkCount} server process(es) per row, light kiosks in ${clientCount} client processes, hold ${holdMs / 1000} s · BENCH_STREAMS=${sizes.join(",")} ${command}\n`);
  console.log(
    "| streams | server | open | ramp s | streams/s | server RSS MiB | RSS KiB / stream | server CPU-s to connect | CPU ms per connect: first 1000 / middle / last 1000 | server CPU while holding (% of a core) | open after hold | clients RSS | load avg (1, 5, 15 min) before → after | reconnect storm: link SIGKILLed, its kiosks reconnecting to a fresh link process as the SDK does |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
});
process.exit(0);

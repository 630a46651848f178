// Benchmark: holding 50k–100k kiosk streams on this box with several link processes,
// beside a baseline in the same run (the same number of bare connect-node servers,
// bench/bare-stream-server.ts, that only hold each stream).
//   load: light kiosks (bench/light-kiosk.ts: raw HTTP/2 + gRPC framing, not the SDK)
//         in BENCH_CLIENTS child processes, ~1000 streams per HTTP/2 connection (as
//         Envoy multiplexes them to link), a heartbeat every 30 s spread over the 30 s;
//   credentials: minted through auth's own signing code (bench/mint-devices.ts).
// For each N: fresh server processes, open N streams (ramp), RSS growth per stream,
// CPU while connecting and while holding for one full heartbeat interval, then close.
// Run: npm run bench:link:scale  (BENCH_STREAMS="50000,100000" BENCH_LINKS=4
// BENCH_CLIENTS=4 BENCH_HOLD_MS=30000 BENCH_BASELINE=1; loopback only; stops by itself).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "@adminkiosk/devstack";
import { cpuSeconds, loadAverage, machine, memAvailableMiB, rssMiB, startKioskFleet } from "./kiosk-fleet.js";
import { mintDevices } from "./mint-devices.js";
import { withStack } from "./stack.js";

const sizes = (process.env["BENCH_STREAMS"] ?? "50000,100000").split(",").map(Number);
const linkCount = Number(process.env["BENCH_LINKS"] ?? 4);
const clientCount = Number(process.env["BENCH_CLIENTS"] ?? 4);
const holdMs = Number(process.env["BENCH_HOLD_MS"] ?? 30_000);
const baseline = process.env["BENCH_BASELINE"] !== "0";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

await withStack({ PASSWORD_SCRYPT_LOG_N: "10" }, async ({ databaseUrl, keyEncryptionKey, auth, redisUrl, natsUrl, start }) => {
  const max = Math.max(...sizes);
  const ids = Array.from({ length: max }, (_, i) => `scale-${i}`);
  const tm = performance.now();
  const credentials = await mintDevices(databaseUrl, keyEncryptionKey, ids);
  log(`minted ${max} device credentials in ${((performance.now() - tm) / 1000).toFixed(1)} s`);
  const kiosks = ids.map((id, i) => [id, credentials[i]!] as [string, string]);

  let replica = 0;
  const startLinks = async (): Promise<Server[]> =>
    Promise.all(
      Array.from({ length: linkCount }, async () => {
        const l = await start("link", {
          REDIS_URL: redisUrl,
          NATS_URL: natsUrl,
          AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json`,
          LINK_REPLICA_ID: `bench-link-${replica++}`,
          NODE_OPTIONS: "--max-old-space-size=8192",
        });
        return { url: l.url, pid: l.child.pid!, stop: () => l.stop() };
      }),
    );
  const startBare = async (): Promise<Server[]> =>
    Promise.all(
      Array.from({ length: linkCount }, async () => {
        const bare = spawn(process.execPath, ["--max-old-space-size=8192", "--import", "tsx", join(repoRoot, "bench/bare-stream-server.ts")], { stdio: ["ignore", "pipe", "inherit"] });
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

  const rows: string[] = [];
  for (const n of sizes) {
    for (const [name, startServers] of [...(baseline ? [["bare connect-node (baseline)", startBare] as const] : []), ["link", startLinks] as const]) {
      const needMiB = (n * 150) / 1024 + 2048;
      if (memAvailableMiB() < needMiB) {
        rows.push(`| ${n} | ${name} | not run: ${Math.round(memAvailableMiB())} MiB available, ~${Math.round(needMiB)} MiB needed | | | | | | | |`);
        log(rows.at(-1)!);
        continue;
      }
      const servers = await startServers();
      await sleep(2_000);
      const load0 = loadAverage();
      const rss0 = servers.reduce((s, x) => s + rssMiB(x.pid), 0);
      const cpu0 = servers.reduce((s, x) => s + cpuSeconds(x.pid), 0);
      const fleet = startKioskFleet({ urls: servers.map((s) => s.url), kiosks: kiosks.slice(0, n), processes: clientCount, streamsPerConnection: 1000 });
      log(`${name}: opening ${n} streams over ${servers.length} servers from ${clientCount} client processes (load ${load0})`);
      const opened = await fleet.open();
      const cpu1 = servers.reduce((s, x) => s + cpuSeconds(x.pid), 0);
      await sleep(3_000);
      const rss1 = servers.reduce((s, x) => s + rssMiB(x.pid), 0);
      const perServer = servers.map((x) => Math.round(rssMiB(x.pid)));
      // Hold for one heartbeat interval: every kiosk heartbeats once (spread).
      const cpuHold0 = servers.reduce((s, x) => s + cpuSeconds(x.pid), 0);
      const clientCpu0 = fleet.pids.reduce((s, p) => s + cpuSeconds(p), 0);
      await sleep(holdMs);
      const cpuHold1 = servers.reduce((s, x) => s + cpuSeconds(x.pid), 0);
      const clientCpu1 = fleet.pids.reduce((s, p) => s + cpuSeconds(p), 0);
      const stats = await fleet.stats();
      const stillOpen = stats.reduce((s, x) => s + x.open, 0);
      const clientRss = stats.reduce((s, x) => s + x.rssMiB, 0);
      const load1 = loadAverage();
      await fleet.close();
      await Promise.all(servers.map((s) => s.stop()));
      rows.push(
        `| ${n} | ${name} | ${opened.ok}${opened.failed ? ` (${opened.failed} failed, ${opened.unwelcomed} of them not welcomed in 60 s)` : ""} | ${opened.seconds.toFixed(1)} | ${Math.round(opened.ok / opened.seconds)} | ${Math.round(rss1)} (${perServer.join(" + ")}) | ${(((rss1 - rss0) * 1024) / Math.max(1, opened.ok)).toFixed(1)} | ${(cpu1 - cpu0).toFixed(1)} | ${(((cpuHold1 - cpuHold0) / (holdMs / 1000)) * 100).toFixed(1)}% | ${stillOpen} | ${clientRss} MiB, ${(((clientCpu1 - clientCpu0) / (holdMs / 1000)) * 100).toFixed(0)}% | ${load0} → ${load1} |`,
      );
      log(rows.at(-1)!);
      if (opened.lastErrors.length) log(`errors: ${opened.lastErrors.join(" | ")}`);
      await sleep(3_000);
    }
  }
  console.log(`\n${machine()} · ${linkCount} server processes, ${clientCount} client processes, hold ${holdMs / 1000} s, command: BENCH_STREAMS=${sizes.join(",")} npm run bench:link:scale\n`);
  console.log("| streams | servers | open | ramp s | streams/s | server RSS MiB (per process) | RSS KiB / stream | server CPU-s to connect | server CPU while holding | open after hold | clients RSS, CPU while holding | load avg (1, 5, 15 min) before → after |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
});
process.exit(0);

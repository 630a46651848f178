// Benchmark: what holding kiosk streams costs link, beside a baseline in the same run.
//   baseline: a bare connect-node HTTP/2 server whose bidi handler only holds the stream;
//   link:     the real link process (device-credential check, presence in Redis,
//             a JetStream event per connection, welcome, heartbeats).
// For each N: connect N streams (one device credential each, over a few HTTP/2
// connections), measure the ramp time and the server's RSS growth per stream, hold
// them while each kiosk heartbeats, then close. Run: npm run bench:link
// (BENCH_STREAMS="1000,5000" to choose N; loopback only; it stops by itself).
import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService, DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { LinkService, type ConnectRequestSchema } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { repoRoot } from "@adminkiosk/devstack";
import { benchAdmin, withStack } from "./stack.js";
import { StreamOutbox } from "../services/link/src/outbox.js";

const sizes = (process.env["BENCH_STREAMS"] ?? "1000,5000").split(",").map(Number);
const connections = 8;
type Up = MessageInitShape<typeof ConnectRequestSchema>;

async function rssOf(pid: number): Promise<number> {

  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
}

function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Opens `n` streams (credential i for stream i) and resolves when all are welcomed. */
async function openStreams(url: string, credentials: string[], n: number) {
  const clients: Client<typeof LinkService>[] = Array.from({ length: connections }, () =>
    createClient(LinkService, createGrpcTransport({ baseUrl: url })),
  );
  const ups: StreamOutbox<Up>[] = [];
  const done: Promise<void>[] = [];
  const t0 = performance.now();
  const welcomed: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const up = new StreamOutbox<Up>(16);
    ups.push(up);
    up.push({ body: { case: "hello", value: { firmwareVersion: "bench" } } });
    const down = clients[i % connections]!.connect(up, { headers: { authorization: `Bearer ${credentials[i] ?? ""}` } })[Symbol.asyncIterator]();
    welcomed.push(down.next().then(() => undefined));
    done.push((async () => {
      try {
        for (let r = await down.next(); !r.done; r = await down.next());
      } catch {
        // closed
      }
    })());
    if (i % 200 === 199) await Promise.all(welcomed.slice(-200));
  }
  await Promise.all(welcomed);
  const rampSeconds = (performance.now() - t0) / 1000;
  return {
    rampSeconds,
    heartbeat: () => ups.forEach((u) => u.push({ body: { case: "heartbeat", value: {} } })),
    close: async () => {
      ups.forEach((u) => u.close());
      await Promise.all(done);
    },
  };
}

await withStack({ PASSWORD_SCRYPT_LOG_N: "10" }, async ({ auth, redisUrl, natsUrl, start, onStop }) => {
  const link = await start("link", { REDIS_URL: redisUrl, NATS_URL: natsUrl, AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json` });
  // Baseline: the same bidi RPC on a bare server (its own process) that only holds the stream.
  const bare = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "bench/bare-stream-server.ts")], { stdio: ["ignore", "pipe", "inherit"] });
  onStop(async () => void bare.kill("SIGTERM"));
  const barePort = await new Promise<number>((resolve) => bare.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
  const bareUrl = `http://127.0.0.1:${barePort}`;

  const anonymous = createClient(AuthService, createGrpcTransport({ baseUrl: auth.url }));
  const { tokens } = await anonymous.login(benchAdmin);
  const devices = createClient(DeviceService, createGrpcTransport({ baseUrl: auth.url }));
  const admin = { headers: { authorization: `Bearer ${tokens!.accessToken}` } };
  const max = Math.max(...sizes);
  const credentials: string[] = [];
  const te = performance.now();
  for (let i = 0; i < max; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, max - i) }, async (_, j) => {
      const { code } = await devices.createEnrollmentCode({ kioskId: `bench-${i + j}` }, admin);
      credentials[i + j] = (await devices.enrollDevice({ code })).deviceCredential;
    }));
  }
  console.error(`enrolled ${max} kiosks in ${((performance.now() - te) / 1000).toFixed(1)} s`);

  const rows: string[] = [];
  for (const n of sizes) {
    for (const [name, url, pid] of [["bare connect-node (baseline)", bareUrl, bare.pid!], ["link", link.url, link.child.pid!]] as const) {
      await new Promise((r) => setTimeout(r, 1_000));
      const before = await rssOf(pid);
      const cpu0 = cpuSecondsOf(pid);
      const held = await openStreams(url, credentials, n);
      await new Promise((r) => setTimeout(r, 2_000));
      const after = await rssOf(pid);
      const cpu1 = cpuSecondsOf(pid);
      held.heartbeat();
      await new Promise((r) => setTimeout(r, 3_000));
      const cpu2 = cpuSecondsOf(pid);
      const beatSeconds = (cpu2 - cpu1);
      await held.close();
      rows.push(`| ${n} | ${name} | ${held.rampSeconds.toFixed(1)} | ${((after - before) / n / 1024).toFixed(1)} | ${(after / 1024 / 1024).toFixed(0)} | ${(cpu1 - cpu0).toFixed(1)} | ${((beatSeconds * 1000) / (n / 1000)).toFixed(1)} |`);
      console.error(rows.at(-1));
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
  console.log(`\n${new Date().toISOString().slice(0, 10)} · ${os.cpus().length} × ${os.cpus()[0]?.model} · Node ${process.version} · ${connections} HTTP/2 connections from one client process\n`);
  console.log("| streams | server | ramp s | RSS KiB per stream | RSS MiB held | CPU s to connect | CPU ms per heartbeat round / 1k streams |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
});
process.exit(0);

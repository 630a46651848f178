// Benchmark: release artifact downloads (issue 17) — 1,000 concurrent ranged GETs of one
// artifact from fleet's GET /v1/artifacts/<sha256> (bearer token verified, the filesystem
// artifact store, Range parsing, ETag, the metrics counter), beside the same file served by a
// bare node:http server that streams the same byte range from disk (fs.createReadStream, no
// auth): the disk/network speed on this machine. Rounds alternate fleet and bare, so the
// machine's load falls on both alike; the file is in the page cache for both after the upload.
// Every response is checked (206, its length, the first round's bytes against the file).
// Run: npm run bench:artifacts (BENCH_ARTIFACT_MB=64 BENCH_CONCURRENCY=1000 BENCH_RANGE_KB=256
// BENCH_ROUNDS=3; loopback only). A download whose kept-alive connection the server closed
// meanwhile is sent again once on a new one (as a kiosk resumes), and counted.
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { parseRange } from "../services/fleet/src/releases/http.js";
import { loadAverage, machine, percentile } from "./kiosk-fleet.js";
import { benchAdmin, withStack } from "./stack.js";

const artifactMb = Number(process.env["BENCH_ARTIFACT_MB"] ?? 64);
const concurrency = Number(process.env["BENCH_CONCURRENCY"] ?? 1000);
const rangeKb = Number(process.env["BENCH_RANGE_KB"] ?? 256);
const rounds = Number(process.env["BENCH_ROUNDS"] ?? 3);
const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

/** A bare server: GET /<anything> with one Range, streamed from `file`. */
function bareServer(file: string): Promise<{ url: string; close: () => Promise<void> }> {
  const size = statSync(file).size;
  const server = http.createServer((req, res) => {
    const range = parseRange(req.headers["range"], size);
    if (range === "unsatisfiable") {
      res.writeHead(416, { "content-range": `bytes */${size}` });
      return void res.end();
    }
    const { start, end } = range ?? { start: 0, end: size - 1 };
    res.writeHead(range ? 206 : 200, { "content-length": String(end - start + 1), ...(range ? { "content-range": `bytes ${start}-${end}/${size}` } : {}) });
    createReadStream(file, { start, end, highWaterMark: 256 * 1024 }).pipe(res);
  });
  // As long as fleet's server keeps idle connections (Node's default is 5 s).
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) });
    }),
  );
}

// One connection per download in flight, kept between rounds (node:http, as a kiosk fleet's many sockets).
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency + 16 });

let resent = 0;
function get(url: string, headers: Record<string, string>, retried = false): Promise<http.IncomingMessage> {
  return new Promise<http.IncomingMessage>((resolve, reject) => http.get(url, { agent, headers }, resolve).on("error", reject)).catch((err: NodeJS.ErrnoException) => {
    if (retried || (err.code !== "ECONNRESET" && err.code !== "EPIPE")) throw err;
    resent++;
    return get(url, headers, true);
  });
}

/** `concurrency` ranged GETs at once (each a random aligned range); bytes per second and latency. */
async function round(url: string, token: string, size: number, check?: Buffer): Promise<{ mbPerSec: number; p50: number; p95: number; bytes: number }> {
  const rangeBytes = rangeKb * 1024;
  const started = performance.now();
  const latencies: number[] = [];
  let bytes = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      const start = ((i * 7919) % Math.max(1, Math.floor((size - rangeBytes) / 4096))) * 4096;
      const end = Math.min(size, start + rangeBytes) - 1;
      const t = performance.now();
      const res = await get(url, { authorization: `Bearer ${token}`, range: `bytes=${start}-${end}` });
      if (res.statusCode !== 206) throw new Error(`${url}: ${res.statusCode}`);
      let got = 0;
      const chunks: Buffer[] = [];
      for await (const chunk of res as AsyncIterable<Buffer>) {
        got += chunk.length;
        if (check) chunks.push(chunk);
      }
      if (got !== end - start + 1) throw new Error(`${url}: ${got} bytes for a range of ${end - start + 1}`);
      if (check && !Buffer.concat(chunks).equals(check.subarray(start, end + 1))) throw new Error(`${url}: wrong bytes for ${start}-${end}`);
      latencies.push(performance.now() - t);
      bytes += got;
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { mbPerSec: bytes / 1024 / 1024 / seconds, p50: percentile(latencies, 50), p95: percentile(latencies, 95), bytes };
}

await withStack({ PASSWORD_SCRYPT_LOG_N: "10" }, async ({ databaseUrl, auth, redisUrl, natsUrl, start }) => {
  const dir = mkdtempSync(join(os.tmpdir(), "bench-artifacts-"));
  try {
    const fleet = await start("fleet", {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      NATS_URL: natsUrl,
      AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json`,
      AUTH_URL: auth.url,
      FLEET_ARTIFACT_DIR: join(dir, "store"),
      FLEET_RELEASE_SIGNING_KEY: JSON.stringify(generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" })),
    });
    const { tokens } = await createClient(AuthService, createGrpcTransport({ baseUrl: auth.url })).login(benchAdmin);
    const token = tokens!.accessToken;
    const source = join(dir, "artifact.bin");
    writeFileSync(source, randomBytes(artifactMb * 1024 * 1024));
    const content = readFileSync(source);
    let t = performance.now();
    const put = await fetch(`${fleet.url}/v1/artifacts`, { method: "PUT", headers: { authorization: `Bearer ${token}` }, body: content });
    const { sha256, size } = (await put.json()) as { sha256: string; size: number };
    if (sha256 !== createHash("sha256").update(content).digest("hex")) throw new Error("upload: wrong sha256");
    log(`uploaded ${artifactMb} MiB in ${((performance.now() - t) / 1000).toFixed(2)} s (${(artifactMb / ((performance.now() - t) / 1000)).toFixed(0)} MiB/s, hashed and stored)`);
    // The bare server reads fleet's stored copy: the same file, the same page cache.
    const stored = join(dir, "store", "objects", sha256.slice(0, 2), sha256);
    const bare = await bareServer(stored);
    const fleetUrl = `${fleet.url}/v1/artifacts/${sha256}`;
    const bareUrl = `${bare.url}/${sha256}`;
    log(`${machine()}; ${concurrency} concurrent ranged GETs of ${rangeKb} KiB each, ${rounds} rounds per server, interleaved; load average ${loadAverage()}`);
    // Warm-up (and a check of every byte once).
    await round(fleetUrl, token, size, content);
    await round(bareUrl, token, size, content);
    const results: Record<"fleet" | "bare", { mbPerSec: number; p50: number; p95: number }[]> = { fleet: [], bare: [] };
    for (let r = 0; r < rounds; r++) {
      for (const [name, url] of (r % 2 === 0 ? [["fleet", fleetUrl], ["bare", bareUrl]] : [["bare", bareUrl], ["fleet", fleetUrl]]) as ["fleet" | "bare", string][]) {
        t = performance.now();
        const res = await round(url, token, size);
        results[name].push(res);
        log(`round ${r + 1} ${name.padEnd(5)} ${res.mbPerSec.toFixed(0).padStart(6)} MiB/s  p50 ${res.p50.toFixed(0)} ms  p95 ${res.p95.toFixed(0)} ms  (${(res.bytes / 1024 / 1024).toFixed(0)} MiB)`);
      }
    }
    const median = (xs: number[]) => percentile(xs, 50);
    const f = median(results.fleet.map((x) => x.mbPerSec));
    const b = median(results.bare.map((x) => x.mbPerSec));
    console.log(
      JSON.stringify(
        {
          bench: "artifacts",
          concurrency,
          rangeKiB: rangeKb,
          artifactMiB: artifactMb,
          rounds,
          fleetMiBPerSec: Math.round(f),
          bareMiBPerSec: Math.round(b),
          ratio: Number((f / b).toFixed(2)),
          fleetP95Ms: Math.round(median(results.fleet.map((x) => x.p95))),
          bareP95Ms: Math.round(median(results.bare.map((x) => x.p95))),
          resentAfterReset: resent,
          loadAverage: loadAverage(),
        },
        null,
        2,
      ),
    );
    await bare.close();
  } finally {
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

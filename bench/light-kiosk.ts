// A light load generator: many kiosks in one process, each a gRPC bidi stream
// (LinkService/Connect) written directly on node:http2 with the 5-byte gRPC framing
// and the generated protobuf codecs, not the kiosk SDK (whose per-kiosk client and
// @grpc/grpc-js call cost ~80 KiB and too much CPU to hold 100k kiosks on two cores).
// It speaks the same protocol as the SDK: hello first, a heartbeat every interval
// (spread over the interval), and for each command an ack then a SUCCEEDED result at
// once; desired configuration is reported applied. Streams are multiplexed over a
// few HTTP/2 connections per link address (as Envoy does in front of link: up to 1000
// streams per upstream connection, envoy/envoy.yaml).
//
// Run as a child process (fork with IPC) by bench/kiosk-fleet.ts; messages:
//   in:  { type: "open", urls, kiosks: [kioskId, credential][], streamsPerConnection, heartbeatMs, window }
//        { type: "storm", url? }   (from now on a stream that ends is opened again, at `url` if
//        given (the SDK's next address), as the SDK does:
//        after UNAVAILABLE with grpc-retry-pushback-ms after the pushback plus up to a tenth of
//        it at random, otherwise after the SDK's backoff with equal jitter, 500 ms doubling up
//        to 30 s; and the kiosks welcomed again are counted)
//        { type: "telemetry", batches, samplesPerBatch }   (each kiosk sends `batches` batches)
//        { type: "close" }
//   out: { type: "opened", ok, failed, ms } · { type: "commands", got: [kioskId, commandId, receivedAtMs][] }
//        { type: "telemetry-acked", acked, ms } · { type: "stats", ... } · { type: "closed" }
import http2 from "node:http2";
import { randomUUID } from "node:crypto";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { CommandOutcome } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { ConnectRequestSchema, ConnectResponseSchema, DeviceStatus, type ConnectRequest } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";

type In =
  | { type: "open"; urls: string[]; kiosks: [string, string][]; streamsPerConnection: number; heartbeatMs: number; window: number }
  | { type: "storm"; url?: string }
  | { type: "telemetry"; batches: number; samplesPerBatch: number }
  | { type: "close" };

const send = (m: unknown) => process.send?.(m);
const path = "/adminkiosk.link.v1.LinkService/Connect";

function frame(message: ConnectRequest | Parameters<typeof create<typeof ConnectRequestSchema>>[1]): Buffer {
  const bytes = toBinary(ConnectRequestSchema, create(ConnectRequestSchema, message as never));
  const out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

interface Kiosk {
  id: string;
  credential: string;
  url: string;
  attempt: number;
  stream?: http2.ClientHttp2Stream;
  pending?: Buffer;
  welcomed: boolean;
  ended: boolean;
}

const sessions: http2.ClientHttp2Session[] = [];
const kiosks: Kiosk[] = [];
let gotCommands: [string, string, number][] = [];
let endedAfterOpen = 0;
let errors = 0;
let unwelcomed = 0;
let lastWelcomeAt = 0;
let lastError = "";
let telemetryAcked = 0;
let telemetryWanted = 0;
let telemetryStart = 0;
// Reconnecting (a storm): kiosks welcomed again since "storm", refusals that said when to come back, others.
let reconnect = false;
let closing = false;
let stormStart = 0;
let rewelcomed = new Set<Kiosk>();
let lastRewelcomeAt = 0;
let pushbacks = 0;
let pushbackMax = 0;
const rewelcomeTimes: number[] = [];
let retriedErrors = 0;
let perConnection = 1000;
/** The HTTP/2 connection new streams to `url` go on (a new one once it is full or gone). */
const current = new Map<string, { session: http2.ClientHttp2Session; streams: number }>();
function sessionTo(url: string): http2.ClientHttp2Session {
  let c = current.get(url);
  if (!c || c.session.destroyed || c.session.closed || c.streams >= perConnection) {
    const s = http2.connect(url, { maxSessionMemory: 2_000, settings: { enablePush: false, initialWindowSize: 65_535 } });
    s.on("error", (err) => {
      lastError = `session: ${err.message}`;
    });
    s.setMaxListeners(0);
    sessions.push(s);
    c = { session: s, streams: 0 };
    current.set(url, c);
  }
  c.streams++;
  return c.session;
}
const heartbeat = frame({ body: { case: "heartbeat", value: {} } });

function onMessage(k: Kiosk, data: Uint8Array, welcome: () => void) {
  const m = fromBinary(ConnectResponseSchema, data);
  switch (m.body.case) {
    case "welcome":
      k.welcomed = true;
      k.attempt = 0;
      lastWelcomeAt = Date.now();
      if (stormStart && !rewelcomed.has(k)) {
        rewelcomed.add(k);
        lastRewelcomeAt = Date.now();
        rewelcomeTimes.push(lastRewelcomeAt - stormStart);
      }
      welcome();
      break;
    case "command": {
      const commandId = m.body.value.commandId;
      gotCommands.push([k.id, commandId, Date.now()]);
      // Like the SDK: ack on receipt, then run it (nothing to run here) and report.
      k.stream?.write(Buffer.concat([frame({ body: { case: "ack", value: { commandId } } }), frame({ body: { case: "result", value: { commandId, outcome: CommandOutcome.SUCCEEDED } } })]));
      break;
    }
    case "desiredConfig":
      k.stream?.write(frame({ body: { case: "configApplied", value: { version: m.body.value.version } } }));
      break;
    case "telemetryAck":
      telemetryAcked++;
      if (telemetryAcked === telemetryWanted) send({ type: "telemetry-acked", acked: telemetryAcked, ms: Date.now() - telemetryStart });
      break;
    default:
      break;
  }
}

function openStream(session: http2.ClientHttp2Session, k: Kiosk, credential: string, done: (ok: boolean) => void) {
  let settled = false;
  const settle = (ok: boolean) => {
    if (!settled) {
      settled = true;
      done(ok);
    }
  };
  const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${credential}` }, { endStream: false });
  k.stream = stream;
  stream.on("data", (chunk: Buffer) => {
    let buf = k.pending ? Buffer.concat([k.pending, chunk]) : chunk;
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) break;
      onMessage(k, buf.subarray(5, 5 + len), () => settle(true));
      buf = buf.subarray(5 + len);
    }
    k.pending = buf.length ? Buffer.from(buf) : undefined;
  });
  let pushbackMs = NaN;
  const end = (why: string) => {
    if (k.ended || k.stream !== stream) return;
    k.ended = true;
    k.welcomed = false;
    if (reconnect && !closing) {
      // As the SDK does: a pushback is honoured (plus jitter), anything else backs off.
      if (Number.isFinite(pushbackMs)) {
        pushbacks++;
        pushbackMax = Math.max(pushbackMax, pushbackMs);
      }
      else retriedErrors++;
      // As the SDK: a pushback is not a failure (the attempt count does not grow).
      const ceiling = () => Math.min(30_000, 500 * 2 ** Math.min(k.attempt++, 30));
      const delay = Number.isFinite(pushbackMs) ? pushbackMs + Math.random() * pushbackMs * 0.1 : ((c) => c / 2 + Math.random() * (c / 2))(ceiling());
      lastError = why;
      setTimeout(() => {
        if (closing) return;
        k.ended = false;
        k.pending = undefined;
        openStream(sessionTo(k.url), k, k.credential, () => undefined);
      }, delay).unref();
      settle(settled);
      return;
    }
    if (settled) {
      endedAfterOpen++;
      lastError = why;
    } else {
      errors++;
      lastError = why;
    }
    settle(false);
  };
  let why = "";
  const status = (h: http2.IncomingHttpHeaders) => {
    if (h["grpc-status"] !== undefined && h["grpc-status"] !== "0") why = `grpc-status ${String(h["grpc-status"])}: ${decodeURIComponent(String(h["grpc-message"] ?? ""))}`;
    const pushback = h["grpc-retry-pushback-ms"];
    if (pushback !== undefined) pushbackMs = Number(pushback);
  };
  stream.on("response", status); // a trailers-only error arrives as the response headers
  stream.on("trailers", status);
  // The server ended its side: the stream is over for the kiosk (we do not wait for our own end).
  stream.on("end", () => end(why || "ended by the server"));
  // A stream that is neither welcomed nor ended within a minute counts as failed (and is reset).
  const timer = setTimeout(() => {
    if (!k.welcomed && !k.ended && k.stream === stream && !reconnect) {
      unwelcomed++;
      end("no welcome within 60 s");
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }
  }, 60_000);
  timer.unref();
  stream.on("error", (err) => end(err.message));
  stream.on("close", () => end(`closed (rst ${stream.rstCode})`));
  stream.write(frame({ body: { case: "hello", value: { firmwareVersion: "bench-light", appVersion: "bench" } } }));
}

async function open(m: Extract<In, { type: "open" }>) {
  const t0 = Date.now();
  perConnection = m.streamsPerConnection;
  const perUrl = m.urls.map(() => [] as number[]);
  m.kiosks.forEach((_, i) => perUrl[i % m.urls.length]!.push(i));
  const sessionFor: http2.ClientHttp2Session[] = new Array(m.kiosks.length);
  m.urls.forEach((url, u) => {
    const mine = perUrl[u]!;
    const count = Math.max(1, Math.ceil(mine.length / m.streamsPerConnection));
    for (let c = 0; c < count; c++) {
      const s = http2.connect(url, { maxSessionMemory: 2_000, settings: { enablePush: false, initialWindowSize: 65_535 } });
      s.on("error", (err) => {
        errors++;
        lastError = `session: ${err.message}`;
      });
      s.setMaxListeners(0);
      sessions.push(s);
      mine.slice(c * m.streamsPerConnection, (c + 1) * m.streamsPerConnection).forEach((i) => (sessionFor[i] = s));
    }
  });
  // Heartbeats: each kiosk once per interval, spread evenly (a slice every 100 ms), from the
  // start of the ramp: a kiosk welcomed early in a slow ramp (minutes at a high load) must not
  // fall silent until the last is welcomed (link ends a stream silent for 90 s).
  const slices = Math.max(1, Math.floor(m.heartbeatMs / 100));
  let slice = 0;
  setInterval(() => {
    const n = kiosks.length;
    const from = Math.floor((slice * n) / slices);
    const to = Math.floor(((slice + 1) * n) / slices);
    for (let i = from; i < to; i++) {
      const k = kiosks[i]!;
      if (k.welcomed && !k.ended) k.stream!.write(heartbeat);
    }
    slice = (slice + 1) % slices;
  }, 100).unref();
  let ok = 0;
  let failed = 0;
  // At most `window` streams waiting for their welcome at once (a ramp, not a stampede).
  let next = 0;
  await new Promise<void>((resolve) => {
    let inFlight = 0;
    const pump = () => {
      while (inFlight < m.window && next < m.kiosks.length) {
        const i = next++;
        const [id, credential] = m.kiosks[i]!;
        const k: Kiosk = { id, credential, url: m.urls[i % m.urls.length]!, attempt: 0, welcomed: false, ended: false };
        kiosks.push(k);
        inFlight++;
        openStream(sessionFor[i]!, k, credential, (good) => {
          inFlight--;
          if (good) ok++;
          else failed++;
          if (ok + failed === m.kiosks.length) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  send({ type: "opened", ok, failed, unwelcomed, ms: (ok > 0 ? lastWelcomeAt : Date.now()) - t0, lastError });
}

function telemetry(batches: number, samplesPerBatch: number) {
  telemetryStart = Date.now();
  telemetryAcked = 0;
  const live = kiosks.filter((k) => k.welcomed && !k.ended);
  telemetryWanted = live.length * batches;
  let t = Date.now() - 60_000;
  for (let b = 0; b < batches; b++) {
    for (const k of live) {
      const samples = Array.from({ length: samplesPerBatch }, (_, s) => ({
        sampleId: `${b}-${s}`,
        time: timestampFromMs(t++),
        cpuPercent: 12.5,
        temperatureCelsius: 41.2,
        paperLevelPercent: 80,
        cashLevelMinor: 125_000n,
        printer: DeviceStatus.OK,
        scanner: DeviceStatus.OK,
        errors: [],
      }));
      k.stream!.write(frame({ body: { case: "telemetry", value: { batchId: randomUUID(), samples } } }));
    }
  }
}

// Commands received are reported in bulk, every 50 ms.
setInterval(() => {
  if (gotCommands.length === 0) return;
  send({ type: "commands", got: gotCommands });
  gotCommands = [];
}, 50).unref();

process.on("message", (m: In) => {
  if (m.type === "open") void open(m);
  else if (m.type === "storm") {
    reconnect = true;
    // Where streams reconnect to (as the SDK moves to its next address after an error).
    if (m.url) for (const k of kiosks) k.url = m.url;
    stormStart = Date.now();
    rewelcomed = new Set();
    pushbacks = 0;
    retriedErrors = 0;
  }
  else if (m.type === "telemetry") telemetry(m.batches, m.samplesPerBatch);
  else if (m.type === "close") {
    // Half-close each stream (the kiosk going away cleanly), then the connections.
    closing = true;
    for (const k of kiosks) if (!k.ended) k.stream?.end();
    for (const s of sessions) s.close();
    send({ type: "closed", endedAfterOpen, errors, lastError, rssMiB: Math.round(process.memoryUsage().rss / 1048576) });
    setTimeout(() => process.exit(0), 200);
  } else if ((m as { type: string }).type === "stats") {
    send({
      type: "stats",
      open: kiosks.filter((k) => k.welcomed && !k.ended).length,
      endedAfterOpen,
      errors,
      lastError,
      rssMiB: Math.round(process.memoryUsage().rss / 1048576),
      rewelcomed: rewelcomed.size,
      lastRewelcomeMs: lastRewelcomeAt ? lastRewelcomeAt - stormStart : 0,
      pushbacks,
      pushbackMax,
      retriedErrors,
      rewelcomeP50: rewelcomeTimes[Math.floor(rewelcomeTimes.length * 0.5)] ?? 0,
      rewelcomeP90: rewelcomeTimes[Math.floor(rewelcomeTimes.length * 0.9)] ?? 0,
      // Kiosks welcomed again within 10, 20, … 120 s of the storm's start (the storm's timeline).
      rewelcomedBy: Array.from({ length: 12 }, (_, i) => rewelcomeTimes.filter((t) => t <= (i + 1) * 10_000).length),
    });
  }
});
process.on("disconnect", () => process.exit(0));

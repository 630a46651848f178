// Kiosks on their streams: who may connect, what a kiosk sees, what the platform
// hears (JetStream events, Redis presence), replacement and revocation.
import { execFile } from "node:child_process";
import http2 from "node:http2";
import { join } from "node:path";
import { promisify } from "node:util";
import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskConnectedEventSchema, KioskDisconnectedEventSchema, KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { Goodbye_Reason, LinkService, type ConnectRequestSchema, type ConnectResponse } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { eventually, repoRoot, startTestService, type StartedService } from "@adminkiosk/devstack";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@adminkiosk/proto/grpc/health/v1/health_pb";
import { bearer, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";
import { StreamOutbox } from "../src/outbox.js";
import { KioskCommandEventsSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { linkSubjects } from "@adminkiosk/runtime";

const run = promisify(execFile);
const failure = (p: Promise<unknown>) => p.then(() => undefined, (err: unknown) => ConnectError.from(err));

let auth: AuthFixture;
let link: StartedService;
let admin: string;
let nc: NatsConnection;
let redis: Redis;

const startLink = (replica: string) =>
  startTestService("link", {
    REDIS_URL: auth.redisUrl,
    NATS_URL: inject("infra").natsUrl,
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    LINK_REPLICA_ID: replica,
    HELLO_TIMEOUT_MS: "1000",
    SHUTDOWN_GRACE_MS: "2000",
  });

beforeAll(async () => {
  auth = await startAuth();
  link = await startLink("link-a");
  admin = await auth.adminToken();
  nc = await connect({ servers: inject("infra").natsUrl });
  redis = new Redis(auth.redisUrl);
});
afterAll(async () => {
  redis?.disconnect();
  await nc?.close();
  await link?.stop();
  await auth?.stop();
});

async function enroll(kioskId: string): Promise<string> {
  const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId });
  return (await auth.client(DeviceService).enrollDevice({ code })).deviceCredential;
}

/** A kiosk's stream as firmware holds it: send messages, read what comes down. */
function openStream(url: string, token: string) {
  const up = new StreamOutbox<MessageInitShape<typeof ConnectRequestSchema>>(1000);
  const client = createClient(LinkService, createGrpcTransport({ baseUrl: url, interceptors: [bearer(token)] }));
  const down = client.connect(up)[Symbol.asyncIterator]();
  return {
    send: (m: MessageInitShape<typeof ConnectRequestSchema>) => up.push(m),
    next: async (): Promise<ConnectResponse | undefined> => {
      const r = await down.next();
      return r.done ? undefined : r.value;
    },
    /** Reads until the server ends the stream; resolves with the error, if any. */
    async rest(): Promise<{ messages: ConnectResponse[]; error?: ConnectError }> {
      const messages: ConnectResponse[] = [];
      try {
        for (let r = await down.next(); !r.done; r = await down.next()) messages.push(r.value);
        return { messages };
      } catch (err) {
        return { messages, error: ConnectError.from(err) };
      }
    },
    close: () => up.close(),
  };
}

/** The first LINK event on `subject` from now on. */
async function nextEvent(subject: string) {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.consumers.add("LINK", { filter_subject: subject, ack_policy: AckPolicy.None, deliver_policy: "new", inactive_threshold: 30_000_000_000 });
  const consumer = await jetstream(nc).consumers.get("LINK", info.name);
  return async () => {
    const msg = await consumer.next({ expires: eventually.timeout });
    if (!msg) throw new Error(`no event on ${subject}`);
    return msg.data;
  };
}

/**
 * The acks and results link publishes for `kioskId` from now on: they go in link's batches on
 * link.kiosk.commands (every kiosk's of a tick in one message; other files' kiosks too).
 */
async function nextCommandEvents(kioskId: string) {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.consumers.add("LINK", { filter_subject: linkSubjects.commandBatch, ack_policy: AckPolicy.None, deliver_policy: "new", inactive_threshold: 30_000_000_000 });
  const consumer = await jetstream(nc).consumers.get("LINK", info.name);
  /** Resolves with the events of the next message that holds any of the kiosk's. */
  return async () => {
    for (;;) {
      const msg = await consumer.next({ expires: eventually.timeout });
      if (!msg) throw new Error(`no command event of ${kioskId} on ${linkSubjects.commandBatch}`);
      const mine = fromBinary(KioskCommandEventsSchema, msg.data).events.filter((e) => e.kioskId === kioskId);
      if (mine.length > 0) return mine;
    }
  };
}

/** Every ack or result of `kioskId` stored on link.kiosk.commands after sequence `since` (what the stream holds now). */
async function storedCommandEvents(kioskId: string, since: number) {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.consumers.add("LINK", {
    filter_subject: linkSubjects.commandBatch,
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: since + 1,
    inactive_threshold: 30_000_000_000,
  });
  const consumer = await jetstream(nc).consumers.get("LINK", info.name);
  const found = [];
  for (let i = 0; i < info.num_pending; i++) {
    const msg = await consumer.next({ expires: eventually.timeout });
    if (!msg) throw new Error(`${info.num_pending - i} messages on ${linkSubjects.commandBatch} not delivered`);
    found.push(...fromBinary(KioskCommandEventsSchema, msg.data).events.filter((e) => e.kioskId === kioskId));
  }
  return found;
}

describe("connecting", () => {
  it("a kiosk says hello and is welcomed under the id its credential names; presence and an event follow", async () => {
    const credential = await enroll("prague-010");
    const connected = await nextEvent("link.kiosk.prague-010.connected");
    const stream = openStream(link.url, credential);
    stream.send({ body: { case: "hello", value: { firmwareVersion: "2.1.0", appVersion: "5.4.0", configVersion: 3n } } });
    const welcome = await stream.next();
    expect(welcome?.body.case === "welcome" && welcome.body.value).toMatchObject({ kioskId: "prague-010", linkReplica: "link-a", heartbeatIntervalSeconds: 30 });
    const event = fromBinary(KioskConnectedEventSchema, await connected());
    expect(event).toMatchObject({ kioskId: "prague-010", linkReplica: "link-a", hello: { firmwareVersion: "2.1.0" } });
    expect(await redis.hget("link:presence:prague-010", "replica")).toBe("link-a");
    expect(await (await fetch(`${link.url}/metrics`)).text()).toMatch(/link_connected_kiosks\{service="link"\} 1/);

    const disconnected = await nextEvent("link.kiosk.prague-010.disconnected");
    stream.close();
    await stream.rest();
    expect(fromBinary(KioskDisconnectedEventSchema, await disconnected()).reason).toBe("closed");
    await expect.poll(() => redis.exists("link:presence:prague-010"), eventually).toBe(0);
  });

  it("people's tokens and missing credentials are refused", async () => {
    const viewer = (await auth.userWithRole(Role.VIEWER)).accessToken;
    const asViewer = openStream(link.url, viewer);
    asViewer.send({ body: { case: "hello", value: {} } });
    expect((await asViewer.rest()).error?.code).toBe(Code.PermissionDenied);
    const anonymous = openStream(link.url, "");
    anonymous.send({ body: { case: "hello", value: {} } });
    expect((await anonymous.rest()).error?.code).toBe(Code.Unauthenticated);
  });

  it("a stream that does not start with hello is refused, naming the field", async () => {
    const stream = openStream(link.url, await enroll("prague-011"));
    stream.send({ body: { case: "heartbeat", value: {} } });
    const { error } = await stream.rest();
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toMatch(/^body: .*hello/);
  });

  it("a stream that never says hello is ended", async () => {
    const stream = openStream(link.url, await enroll("prague-012"));
    expect((await stream.rest()).error?.code).toBe(Code.DeadlineExceeded);
  });
});

describe("the port", () => {
  it("serves gRPC health and reflection beside the kiosk stream (grpc-js), and HTTP/1.1 Connect, /metrics and /readyz", async () => {
    // gRPC over HTTP/2, as Envoy's health checks and grpcurl speak it.
    const grpcHealth = createClient(Health, createGrpcTransport({ baseUrl: link.url }));
    expect((await grpcHealth.check({ service: "adminkiosk.link.v1.LinkService" })).status).toBe(ServingStatus.SERVING);
    expect((await failure(grpcHealth.check({ service: "nope.v1.Nope" })))?.code).toBe(Code.NotFound);
    const buf = join(repoRoot, "node_modules/.bin/buf");
    const listed = await run(buf, ["curl", "--http2-prior-knowledge", "--protocol", "grpc", "--reflect", "--list-methods", link.url]);
    expect(listed.stdout).toContain("adminkiosk.link.v1.LinkService/Connect");
    // Connect over HTTP/1.1 (curl, browsers' tools).
    const h1Health = createClient(Health, createConnectTransport({ baseUrl: link.url, httpVersion: "1.1" }));
    expect((await h1Health.check({})).status).toBe(ServingStatus.SERVING);
    expect((await fetch(`${link.url}/readyz`)).status).toBe(200);
    const metrics = (await (await fetch(`${link.url}/metrics`)).text()).split("\n");
    expect(metrics.some((l) => l.startsWith("grpc_server_handled_total{") && l.includes('grpc_method="ServerReflectionInfo"') && l.includes('grpc_code="OK"'))).toBe(true);
  });
});

describe("a reconnect storm", () => {
  it("past LINK_CONNECT_CONCURRENCY streams wait their turn; past LINK_ACCEPT_QUEUE more are told to come back later", async () => {
    const narrow = await startTestService("link", {
      REDIS_URL: auth.redisUrl,
      NATS_URL: inject("infra").natsUrl,
      AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
      LINK_REPLICA_ID: "link-narrow",
      SHUTDOWN_GRACE_MS: "1000",
      LINK_CONNECT_CONCURRENCY: "1",
      LINK_ACCEPT_QUEUE: "1",
    });
    try {
      const [first, second, third] = await Promise.all(["prague-140", "prague-141", "prague-142"].map(enroll));
      // The first stream opens but does not say hello yet: it holds the one turn.
      const a = openStream(narrow.url, first!);
      await expect.poll(() => metric(narrow.url, "grpc_admission_opening", ""), eventually).toBe(1);
      // The second waits in the queue (its hello is ready) ...
      const b = openStream(narrow.url, second!);
      b.send({ body: { case: "hello", value: {} } });
      await expect.poll(() => metric(narrow.url, "grpc_admission_waiting", ""), eventually).toBe(1);
      // ... and the third finds the queue full: UNAVAILABLE, and when to come back.
      const c = openStream(narrow.url, third!);
      c.send({ body: { case: "hello", value: {} } });
      const refusedNow = (await c.rest()).error;
      expect(refusedNow?.code).toBe(Code.Unavailable);
      expect(Number(refusedNow?.metadata.get("grpc-retry-pushback-ms"))).toBeGreaterThanOrEqual(500);
      expect(refusedNow?.metadata.get("retry-after")).toMatch(/^\d+$/);
      expect(await metric(narrow.url, "grpc_admission_refused_total", "")).toBe(1);
      // Once the first is open, the second gets its turn.
      a.send({ body: { case: "hello", value: {} } });
      expect((await a.next())?.body.case).toBe("welcome");
      expect((await b.next())?.body.case).toBe("welcome");
      a.close();
      b.close();
    } finally {
      await narrow.stop();
    }
  });
});

describe("telemetry", () => {
  it("a batch is acked once JetStream holds it, and stored once when resent", async () => {
    const stream = openStream(link.url, await enroll("prague-020"));
    stream.send({ body: { case: "hello", value: {} } });
    await stream.next();
    const telemetry = await nextEvent("link.kiosk.prague-020.telemetry");
    const batch = { batchId: "b-1", samples: [{ sampleId: "s-1", cpuPercent: 12.5, paperLevelPercent: 80 }] };
    stream.send({ body: { case: "telemetry", value: batch } });
    const ack = await stream.next();
    expect(ack?.body.case === "telemetryAck" && ack.body.value.batchId).toBe("b-1");
    const event = fromBinary(KioskTelemetryEventSchema, await telemetry());
    expect(event.kioskId).toBe("prague-020");
    expect(event.batch?.samples[0]?.paperLevelPercent).toBe(80);
    // The kiosk did not see the ack (say) and sends the batch again: acked again, stored once.
    stream.send({ body: { case: "telemetry", value: batch } });
    expect((await stream.next())?.body.case).toBe("telemetryAck");
    const info = await (await jetstreamManager(nc)).streams.info("LINK", { subjects_filter: "link.kiosk.prague-020.telemetry" });
    expect(info.state.subjects?.["link.kiosk.prague-020.telemetry"]).toBe(1);
    stream.close();
  });

  it("an empty batch is InvalidArgument", async () => {
    const stream = openStream(link.url, await enroll("prague-021"));
    stream.send({ body: { case: "hello", value: {} } });
    await stream.next();
    stream.send({ body: { case: "telemetry", value: { batchId: "b", samples: [] } } });
    expect((await stream.rest()).error?.rawMessage).toMatch(/^telemetry.samples: /);
  });
});

describe("one stream per kiosk", () => {
  it("a second stream replaces the first, also across replicas", async () => {
    const other = await startLink("link-b");
    try {
      const credential = await enroll("prague-030");
      const first = openStream(link.url, credential);
      first.send({ body: { case: "hello", value: {} } });
      await first.next();
      const second = openStream(other.url, credential);
      second.send({ body: { case: "hello", value: {} } });
      expect((await second.next())?.body.case).toBe("welcome");
      const { messages } = await first.rest();
      expect(messages.at(-1)?.body).toEqual({ case: "goodbye", value: expect.objectContaining({ reason: Goodbye_Reason.REPLACED }) });
      await expect.poll(() => redis.hget("link:presence:prague-030", "replica"), eventually).toBe("link-b");
      second.close();
    } finally {
      await other.stop();
    }
  });

  it("a stream whose presence record another stream holds, unbeknown to it, ends as replaced at its next heartbeat", async () => {
    const stream = await welcomed(link.url, "prague-031");
    await expect.poll(() => redis.hget("link:presence:prague-031", "replica"), eventually).toBe("link-a");
    // As if a newer stream had claimed the kiosk on a replica whose word never arrived.
    await redis.hset("link:presence:prague-031", { replica: "link-elsewhere", session: "a-newer-session" });
    stream.send({ body: { case: "heartbeat", value: {} } });
    const { messages } = await stream.rest();
    expect(messages.at(-1)?.body).toEqual({ case: "goodbye", value: expect.objectContaining({ reason: Goodbye_Reason.REPLACED }) });
    expect(await redis.hget("link:presence:prague-031", "session")).toBe("a-newer-session");
  });

  it("revoking the kiosk at auth ends its stream, with a goodbye that says so; the credential opens no new stream, while another kiosk's opening beside it does", async () => {
    const revokedCredential = await enroll("prague-040");
    const stream = openStream(link.url, revokedCredential);
    stream.send({ body: { case: "hello", value: {} } });
    await stream.next();
    await auth.client(DeviceService, admin).revokeDevice({ kioskId: "prague-040" });
    // Only auth's revocation event makes link say REVOKED; without it the stream would stay
    // open (until the 90 s silence timeout, ending without that goodbye) and the test fail by
    // its own timeout. So no bound on how fast, which is the machine's speed.
    const { messages } = await stream.rest();
    expect(messages.at(-1)?.body).toEqual({ case: "goodbye", value: expect.objectContaining({ reason: Goodbye_Reason.REVOKED }) });

    // Streams opening together have their devices' revocations asked together: each gets its own answer.
    const bystanderCredential = await enroll("prague-041");
    const [again, bystander] = [openStream(link.url, revokedCredential), openStream(link.url, bystanderCredential)];
    again.send({ body: { case: "hello", value: {} } });
    bystander.send({ body: { case: "hello", value: {} } });
    const [refusedAgain, welcomed] = await Promise.all([again.rest(), bystander.next()]);
    expect(welcomed?.body.case).toBe("welcome");
    expect(refusedAgain.messages).toEqual([]);
    expect(refusedAgain.error?.code).toBe(Code.Unauthenticated);
    expect(refusedAgain.error?.rawMessage).toMatch(/revoked/);
    bystander.close();
  });

  it("shutting a replica down tells its kiosks to reconnect elsewhere", async () => {
    const own = await startLink("link-c");
    const stream = openStream(own.url, await enroll("prague-050"));
    stream.send({ body: { case: "hello", value: {} } });
    await stream.next();
    own.child.kill("SIGTERM");
    const { messages } = await stream.rest();
    expect(messages.at(-1)?.body).toEqual({ case: "goodbye", value: expect.objectContaining({ reason: Goodbye_Reason.DRAINING }) });
    expect(await own.exited).toBe(0);
  });
});

describe("a kiosk that misbehaves harms only its own stream", () => {
  it("oversized and malformed messages end that stream with a clear error; another kiosk on the replica carries on", async () => {
    const bystander = openStream(link.url, await enroll("prague-060"));
    bystander.send({ body: { case: "hello", value: {} } });
    expect((await bystander.next())?.body.case).toBe("welcome");

    const big = openStream(link.url, await enroll("prague-061"));
    big.send({ body: { case: "hello", value: {} } });
    await big.next();
    big.send({ body: { case: "telemetry", value: { batchId: "huge", samples: [{ sampleId: "x", errors: ["e".repeat(2 * 1024 * 1024)] }] } } });
    const oversized = (await big.rest()).error;
    expect(oversized?.code).toBe(Code.ResourceExhausted);
    expect(oversized?.rawMessage).toMatch(/message size|max/i);

    // Bytes that are not a ConnectRequest, framed as gRPC.
    const credential = await enroll("prague-062");
    const session = http2.connect(link.url);
    const req = session.request({ ":method": "POST", ":path": "/adminkiosk.link.v1.LinkService/Connect", "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${credential}` });
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x12]);
    const frame = Buffer.alloc(5 + garbage.length);
    frame.writeUInt32BE(garbage.length, 1);
    garbage.copy(frame, 5);
    req.end(frame);
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve) => {
      req.on("trailers", resolve);
      req.on("response", (h) => h["grpc-status"] && resolve(h));
      req.resume();
    });
    session.close();
    expect(Number(trailers["grpc-status"])).toBe(Code.InvalidArgument);
    expect(decodeURIComponent(String(trailers["grpc-message"]))).toContain("not a ConnectRequest");

    bystander.send({ body: { case: "telemetry", value: { batchId: "still-here", samples: [{ sampleId: "s" }] } } });
    expect(await bystander.next()).toMatchObject({ body: { case: "telemetryAck", value: { batchId: "still-here" } } });
    bystander.close();
  });

  it("a kiosk silent past SILENT_TIMEOUT_SECONDS loses its stream with DEADLINE_EXCEEDED", async () => {
    const quick = await startTestService("link", {
      REDIS_URL: auth.redisUrl,
      NATS_URL: inject("infra").natsUrl,
      AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
      LINK_REPLICA_ID: "link-silent",
      SILENT_TIMEOUT_SECONDS: "2",
      SHUTDOWN_GRACE_MS: "1000",
    });
    try {
      const stream = openStream(quick.url, await enroll("prague-070"));
      const lastWord = Date.now(); // the hello is the last thing the kiosk says
      stream.send({ body: { case: "hello", value: {} } });
      await stream.next();
      const { error } = await stream.rest();
      expect(error?.code).toBe(Code.DeadlineExceeded);
      expect(error?.rawMessage).toMatch(/nothing heard from the kiosk/);
      // Not before the timeout (a lower bound: a slow machine only ends it later). How soon
      // after is the machine's speed; a stream never ended fails the test by its timeout.
      expect(Date.now() - lastWord).toBeGreaterThanOrEqual(2_000);
    } finally {
      await quick.stop();
    }
  });

  it("heartbeats keep each kiosk's presence alive (refreshed together, once per PRESENCE_FLUSH_MS)", async () => {
    const streams = await Promise.all(["prague-072", "prague-073", "prague-074"].map((id) => welcomed(link.url, id)));
    for (const id of ["prague-072", "prague-073", "prague-074"]) {
      await expect.poll(() => redis.exists(`link:presence:${id}`), eventually).toBe(1);
      await redis.expire(`link:presence:${id}`, 20); // as if the kiosk had been quiet for 70 s
    }
    streams.forEach((s) => s.send({ body: { case: "heartbeat", value: {} } }));
    for (const id of ["prague-072", "prague-073", "prague-074"]) await expect.poll(() => redis.ttl(`link:presence:${id}`), eventually).toBeGreaterThan(20);
    streams.forEach((s) => s.close());
  });

  it("a heartbeat that finds the kiosk's presence gone claims it again and announces the stream", async () => {
    const stream = openStream(link.url, await enroll("prague-071"));
    stream.send({ body: { case: "hello", value: {} } });
    await stream.next();
    await expect.poll(() => redis.exists("link:presence:prague-071"), eventually).toBe(1);
    await redis.del("link:presence:prague-071"); // as if it expired, or Redis lost it
    const connected = await nextEvent("link.kiosk.prague-071.connected");
    stream.send({ body: { case: "heartbeat", value: {} } });
    expect(fromBinary(KioskConnectedEventSchema, await connected())).toMatchObject({ kioskId: "prague-071", linkReplica: "link-a" });
    expect(await redis.hget("link:presence:prague-071", "replica")).toBe("link-a");
    stream.close();
  });
});

describe("credentials that run out", () => {
  it("a stream ends with UNAUTHENTICATED when its device credential expires", async () => {
    // Long enough for enrolling and the welcome on a slow machine (only the welcome must
    // come before the expiry); the test then waits for the expiry, however long it takes.
    const shortLived = await startAuth({ DEVICE_CREDENTIAL_TTL: "10s" });
    const own = await startTestService("link", {
      REDIS_URL: shortLived.redisUrl,
      NATS_URL: inject("infra").natsUrl,
      AUTH_JWKS_URL: `${shortLived.service.url}/.well-known/jwks.json`,
      LINK_REPLICA_ID: "link-expiry",
      SHUTDOWN_GRACE_MS: "1000",
    });
    try {
      const adminToken = await shortLived.adminToken();
      const { code } = await shortLived.client(DeviceService, adminToken).createEnrollmentCode({ kioskId: "prague-080" });
      const { deviceCredential } = await shortLived.client(DeviceService).enrollDevice({ code });
      const stream = openStream(own.url, deviceCredential);
      stream.send({ body: { case: "hello", value: {} } });
      expect((await stream.next())?.body.case).toBe("welcome");
      const { error } = await stream.rest();
      expect(error?.code).toBe(Code.Unauthenticated);
      expect(error?.rawMessage).toContain("expired");
      // Not before it expired (a lower bound: a slow machine only ends the stream later; 20 ms
      // for a timer that fires a millisecond early).
      const { exp } = JSON.parse(Buffer.from(deviceCredential.split(".")[1]!, "base64url").toString()) as { exp: number };
      expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000 - 20);
    } finally {
      await own.stop();
      await shortLived.stop();
    }
  }, 60_000);
});

// ---- budgets and the contract (security issue 11: one kiosk must not flood the platform) ----

/** How long what a link process does may take to show (its log, its metrics) on a loaded machine. */
const shows = { timeout: 20_000, interval: 100 } as const;

/** A kiosk's stream past its welcome. */
async function welcomed(url: string, kioskId: string) {
  const stream = openStream(url, await enroll(kioskId));
  stream.send({ body: { case: "hello", value: {} } });
  expect((await stream.next())?.body.case).toBe("welcome");
  return stream;
}

/** The value of one series on a service's /metrics (0 when absent). */
async function metric(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

/** How many messages stream LINK holds on `subject`. */
async function stored(subject: string): Promise<number> {
  const info = await (await jetstreamManager(nc)).streams.info("LINK", { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

describe("command acks and results", () => {
  it("go to JetStream in link's batches, each under the kiosk id of the stream's credential, the result as the kiosk reported it", async () => {
    const commandId = "0b8d2c61-4a4e-4f7e-9c2a-7d1e5f3a9b10";
    const kiosks = ["prague-140", "prague-141"];
    const streams = await Promise.all(kiosks.map((id) => welcomed(link.url, id)));
    const events = await Promise.all(kiosks.map((id) => nextCommandEvents(id)));
    streams.forEach((stream) => {
      stream.send({ body: { case: "ack", value: { commandId } } });
      stream.send({ body: { case: "result", value: { commandId, outcome: 1, payload: { shown: true } } } });
    });
    for (const [i, kioskId] of kiosks.entries()) {
      const seen = [];
      while (seen.length < 2) seen.push(...(await events[i]!()));
      expect(seen.map((e) => [e.kioskId, e.body.case, e.body.value?.commandId])).toEqual([
        [kioskId, "ack", commandId],
        [kioskId, "result", commandId],
      ]);
      expect(seen[1]!.body.case === "result" && seen[1]!.body.value.payload).toEqual({ shown: true });
      expect(seen.every((e) => e.receiveTime !== undefined)).toBe(true);
    }
    streams.forEach((s) => s.close());
  });
});

describe("each kiosk's message budget", () => {
  it("a kiosk sending far over its budget is cut off with RESOURCE_EXHAUSTED and a cool-down, while another kiosk's telemetry and acks keep flowing", async () => {
    const tight = await startTestService("link", {
      REDIS_URL: auth.redisUrl,
      NATS_URL: inject("infra").natsUrl,
      AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
      LINK_REPLICA_ID: "link-budget",
      SHUTDOWN_GRACE_MS: "1000",
      LINK_MESSAGE_RATE: "5",
      LINK_MESSAGE_BURST: "30",
      LINK_SAMPLE_RATE: "50",
      LINK_SAMPLE_BURST: "500",
      LINK_RATE_COOLDOWN_SECONDS: "60",
    });
    try {
      const bystander = await welcomed(tight.url, "prague-100");
      const telemetryFlooder = await welcomed(tight.url, "prague-101");
      const chatter = await welcomed(tight.url, "prague-102");

      // 20 batches of 100 samples at once: four times the sample burst.
      for (let i = 0; i < 20; i++)
        telemetryFlooder.send({ body: { case: "telemetry", value: { batchId: `flood-${i}`, samples: Array.from({ length: 100 }, (_, s) => ({ sampleId: `f-${i}-${s}` })) } } });
      // 300 heartbeats at once: ten times the message burst.
      for (let i = 0; i < 300; i++) chatter.send({ body: { case: "heartbeat", value: {} } });

      // Meanwhile the bystander reports and acknowledges as usual.
      const commandId = "6f1c1c52-5d7e-4f0a-9a43-1b2f3c4d5e6f";
      const ack = await nextCommandEvents("prague-100");
      let acked = 0;
      const flooded = Promise.all([telemetryFlooder.rest(), chatter.rest()]);
      for (let i = 0; i < 5; i++) {
        bystander.send({ body: { case: "telemetry", value: { batchId: `calm-${i}`, samples: [{ sampleId: `c-${i}`, cpuPercent: 20 }] } } });
        const reply = await bystander.next();
        if (reply?.body.case === "telemetryAck") acked++;
      }
      bystander.send({ body: { case: "ack", value: { commandId } } });
      expect((await ack())[0]?.body).toMatchObject({ case: "ack", value: { commandId } });
      expect(acked).toBe(5);

      const [samples, messages] = await flooded;
      expect(samples.error?.code).toBe(Code.ResourceExhausted);
      expect(samples.error?.rawMessage).toMatch(/more than 50 telemetry samples a second .*reconnect in 60 s/);
      expect(messages.error?.code).toBe(Code.ResourceExhausted);
      expect(messages.error?.rawMessage).toMatch(/more than 5 messages a second/);
      // Cut off on the way: not everything it sent was published.
      expect(await stored("link.kiosk.prague-101.telemetry")).toBeLessThan(20);
      expect(await metric(tight.url, "link_rate_limited_total", 'budget="samples"')).toBe(1);
      expect(await metric(tight.url, "link_rate_limited_total", 'budget="messages"')).toBe(1);
      await expect.poll(() => tight.output.some((l) => l.includes("prague-101") && l.includes("over its samples budget")), shows).toBe(true);

      // Reconnecting at once meets the cool-down (kept in Redis, so on every replica).
      const again = openStream(tight.url, await enroll("prague-101"));
      again.send({ body: { case: "hello", value: {} } });
      const { messages: beforeRefusal, error: refusedAgain } = await again.rest();
      expect(refusedAgain?.code).toBe(Code.ResourceExhausted);
      expect(refusedAgain?.rawMessage).toMatch(/reconnect in \d+ s/);
      // Refused before it is the kiosk's: no welcome (which would reset the kiosk's backoff).
      expect(beforeRefusal).toEqual([]);
      expect(await metric(tight.url, "link_rate_limited_total", 'budget="cooldown"')).toBe(1);

      // The bystander is still there.
      bystander.send({ body: { case: "telemetry", value: { batchId: "calm-last", samples: [{ sampleId: "c-last" }] } } });
      expect(await bystander.next()).toMatchObject({ body: { case: "telemetryAck", value: { batchId: "calm-last" } } });
      bystander.close();
    } finally {
      await tight.stop();
    }
  });
});

describe("the contract: what the store cannot hold never leaves link", () => {
  it("samples out of range are dropped and counted, naming the field; the rest of the batch is stored and the batch acked", async () => {
    const stream = await welcomed(link.url, "prague-110");
    const telemetry = await nextEvent("link.kiosk.prague-110.telemetry");
    const bad = [
      { sampleId: "cpu", cpuPercent: 1e39 },
      { sampleId: "temp", temperatureCelsius: Number.NaN },
      { sampleId: "tiny", paperLevelPercent: 1e-50 },
      { sampleId: "printer", printer: 70000 },
      { sampleId: "nul", errors: ["jam\u0000"] },
      { sampleId: "x".repeat(10_000) },
      { sampleId: "many", errors: Array.from({ length: 17 }, (_, i) => `e${i}`) },
      { sampleId: "cash", cashLevelMinor: -1n },
    ];
    stream.send({ body: { case: "telemetry", value: { batchId: "mixed", samples: [...bad, { sampleId: "good", cpuPercent: 42, temperatureCelsius: -20, errors: ["printer: jam"] }] } } });
    expect(await stream.next()).toMatchObject({ body: { case: "telemetryAck", value: { batchId: "mixed" } } });
    const event = fromBinary(KioskTelemetryEventSchema, await telemetry());
    expect(event.batch?.samples.map((s) => s.sampleId)).toEqual(["good"]);
    for (const field of ["cpu_percent", "temperature_celsius", "paper_level_percent", "printer", "errors", "sample_id", "cash_level_minor"])
      expect(await metric(link.url, "link_telemetry_samples_dropped_total", `field="${field}"`), field).toBeGreaterThanOrEqual(1);
    await expect.poll(() => link.output.some((l) => l.includes("prague-110") && l.includes("telemetry.samples[0].cpu_percent: must be a finite number from 0 to 100")), shows).toBe(true);

    // A batch with nothing storable is acked (the kiosk may forget it) and publishes nothing.
    stream.send({ body: { case: "telemetry", value: { batchId: "all-bad", samples: [{ sampleId: "nan", cpuPercent: Number.NaN }] } } });
    expect(await stream.next()).toMatchObject({ body: { case: "telemetryAck", value: { batchId: "all-bad" } } });
    stream.send({ body: { case: "telemetry", value: { batchId: "after", samples: [{ sampleId: "ok" }] } } });
    expect((await stream.next())?.body.case).toBe("telemetryAck");
    expect(await stored("link.kiosk.prague-110.telemetry")).toBe(2); // "mixed" and "after"
    stream.close();
  });

  it("a kiosk sending out-of-range values in bulk is cut off with RESOURCE_EXHAUSTED and a cool-down; nothing of it is stored", async () => {
    const stream = await welcomed(link.url, "prague-111");
    const garbage = (batch: number) => ({
      body: { case: "telemetry" as const, value: { batchId: `garbage-${batch}`, samples: Array.from({ length: 100 }, (_, i) => ({ sampleId: `g${batch}-${i}`, cpuPercent: 1e39 })) } },
    });
    // One batch of garbage is within what a faulty kiosk may send (dropped, acked) …
    stream.send(garbage(1));
    expect(await stream.next()).toMatchObject({ body: { case: "telemetryAck", value: { batchId: "garbage-1" } } });
    // … more of it at once is a flood of another kind.
    stream.send(garbage(2));
    const { error } = await stream.rest();
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(error?.rawMessage).toMatch(/telemetry samples a second that break the contract .*the first: telemetry\.samples\[0\]\.cpu_percent/);
    expect(await metric(link.url, "link_rate_limited_total", 'budget="invalid_samples"')).toBe(1);
    expect(await stored("link.kiosk.prague-111.telemetry")).toBe(0);
    // Reconnecting at once meets the cool-down.
    const again = openStream(link.url, await enroll("prague-111"));
    again.send({ body: { case: "hello", value: {} } });
    expect((await again.rest()).error?.code).toBe(Code.ResourceExhausted);
  });

  const refusals: [string, MessageInitShape<typeof ConnectRequestSchema>, RegExp][] = [
    ["a 10 kB batch id", { body: { case: "telemetry", value: { batchId: "b".repeat(10_000), samples: [{ sampleId: "s" }] } } }, /^telemetry\.batch_id: must be at most 64 characters/],
    ["501 samples", { body: { case: "telemetry", value: { batchId: "b", samples: Array.from({ length: 501 }, (_, i) => ({ sampleId: `s${i}` })) } } }, /^telemetry\.samples: must hold 1 to 500 items/],
    ["a NUL in a result's error", { body: { case: "result", value: { commandId: "6f1c1c52-5d7e-4f0a-9a43-1b2f3c4d5e6f", outcome: 2, errorMessage: "bad\u0000" } } }, /^result\.error_message: must not contain NUL/],
    ["an unknown outcome", { body: { case: "result", value: { commandId: "6f1c1c52-5d7e-4f0a-9a43-1b2f3c4d5e6f", outcome: 70000 as never } } }, /^result\.outcome: must be one of/],
    ["a NUL in a result's payload", { body: { case: "result", value: { commandId: "6f1c1c52-5d7e-4f0a-9a43-1b2f3c4d5e6f", outcome: 1, payload: { "k\u0000": 1 } } } }, /^result\.payload: must not contain NUL/],
    ["a NUL in an applied config's error", { body: { case: "configApplied", value: { version: 3n, errorMessage: "x\u0000" } } }, /^config_applied\.error_message: must not contain NUL/],
    ["an applied config version of 0", { body: { case: "configApplied", value: { version: 0n } } }, /^config_applied\.version: must be from 1 to/],
    ["an install report naming no release", { body: { case: "updateStatus", value: { releaseId: "not-a-release", state: 4, version: "2.0.0" } } }, /^update_status\.release_id: /],
    ["an install report without a state", { body: { case: "updateStatus", value: { releaseId: "6f1c1c52-5d7e-4f0a-9a43-1b2f3c4d5e6f", version: "2.0.0" } } }, /^update_status\.state: must be set/],
  ];
  it.each(refusals)("%s ends the stream with INVALID_ARGUMENT naming the field, and nothing reaches NATS", async (_, message, expected) => {
    const kioskId = `prague-12${refusals.findIndex(([what]) => what === _)}`;
    const stream = await welcomed(link.url, kioskId);
    const since = (await (await jetstreamManager(nc)).streams.info("LINK")).state.last_seq;
    stream.send(message);
    const { error } = await stream.rest();
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toMatch(expected);
    for (const kind of ["telemetry", "command.result", "config.applied", "update.status"]) expect(await stored(`link.kiosk.${kioskId}.${kind}`)).toBe(0);
    expect(await storedCommandEvents(kioskId, since)).toEqual([]);
    await expect.poll(() => link.output.some((l) => l.includes(kioskId) && l.includes("breaks the contract")), shows).toBe(true);
  });

  it("a hello that breaks the contract is refused before the kiosk is announced", async () => {
    const stream = openStream(link.url, await enroll("prague-130"));
    stream.send({ body: { case: "hello", value: { configVersion: -1n, executedCommandIds: ["not-a-uuid"] } } });
    const { error } = await stream.rest();
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toMatch(/^hello\.config_version: /);
    expect(await stored("link.kiosk.prague-130.connected")).toBe(0);
  });
});

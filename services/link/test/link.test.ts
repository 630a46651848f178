// Kiosks on their streams: who may connect, what a kiosk sees, what the platform
// hears (JetStream events, Redis presence), replacement and revocation.
import http2 from "node:http2";
import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskConnectedEventSchema, KioskDisconnectedEventSchema, KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { Goodbye_Reason, LinkService, type ConnectRequestSchema, type ConnectResponse } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { startTestService, type StartedService } from "@adminkiosk/devstack";
import { bearer, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";
import { StreamOutbox } from "../src/outbox.js";

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
    const msg = await consumer.next({ expires: 5_000 });
    if (!msg) throw new Error(`no event on ${subject}`);
    return msg.data;
  };
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
    await expect.poll(() => redis.exists("link:presence:prague-010")).toBe(0);
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
      await expect.poll(() => redis.hget("link:presence:prague-030", "replica")).toBe("link-b");
      second.close();
    } finally {
      await other.stop();
    }
  });

  it("revoking the kiosk at auth ends its stream within seconds, with a goodbye that says so", async () => {
    const stream = openStream(link.url, await enroll("prague-040"));
    stream.send({ body: { case: "hello", value: {} } });
    await stream.next();
    const t0 = Date.now();
    await auth.client(DeviceService, admin).revokeDevice({ kioskId: "prague-040" });
    const { messages } = await stream.rest();
    expect(messages.at(-1)?.body).toEqual({ case: "goodbye", value: expect.objectContaining({ reason: Goodbye_Reason.REVOKED }) });
    expect(Date.now() - t0).toBeLessThan(5_000);
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
      stream.send({ body: { case: "hello", value: {} } });
      await stream.next();
      const started = Date.now();
      const { error } = await stream.rest();
      expect(error?.code).toBe(Code.DeadlineExceeded);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await quick.stop();
    }
  });

  it("a heartbeat that finds the kiosk's presence gone claims it again and announces the stream", async () => {
    const stream = openStream(link.url, await enroll("prague-071"));
    stream.send({ body: { case: "hello", value: {} } });
    await stream.next();
    await expect.poll(() => redis.exists("link:presence:prague-071")).toBe(1);
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
    const shortLived = await startAuth({ DEVICE_CREDENTIAL_TTL: "4s" });
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
    } finally {
      await own.stop();
      await shortLived.stop();
    }
  });
});

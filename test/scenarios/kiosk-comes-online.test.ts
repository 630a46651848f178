// Flow 1 and 2 of the architecture, across real processes: an admin registers a kiosk
// (fleet) and enrolls it (auth); the kiosk opens its stream (link); fleet shows it
// online with what it reported, then its telemetry, then offline when it leaves.
import { type MessageInitShape } from "@bufbuild/protobuf";
import { timestampMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { inject } from "vitest";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { DeviceStatus, LinkService, type ConnectRequestSchema } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { createDatabase, eventually, startTestService, type StartedService } from "@adminkiosk/devstack";
import { bearer, clientFor, startAuth, type AuthFixture } from "../support/auth.js";
import { StreamOutbox } from "../../services/link/src/outbox.js";

let auth: AuthFixture;
let fleet: StartedService;
let link: StartedService;

beforeAll(async () => {
  const infra = inject("infra");
  auth = await startAuth();
  const shared = { REDIS_URL: auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json` };
  [fleet, link] = await Promise.all([
    createDatabase(infra.databaseUrl, "fleet").then((db) => startTestService("fleet", { ...shared, DATABASE_URL: db, AUTH_URL: auth.service.url, LINK_EVENTS_CONSUMER: `fleet-scenario-${process.pid}`, LINK_EVENTS_SINCE_START: "true", PRESENCE_SWEEP_MS: "500" })),
    startTestService("link", { ...shared, LINK_REPLICA_ID: "link-scenario" }),
  ]);
});
afterAll(async () => {
  await Promise.all([fleet?.stop(), link?.stop()]);
  await auth?.stop();
});

it("a registered, enrolled kiosk goes online, reports telemetry and goes offline, as fleet shows", async () => {
  const admin = await auth.adminToken();
  const kiosks = clientFor(KioskService, fleet.url, admin);
  await kiosks.createKiosk({ kiosk: { kioskId: "scenario-1", name: "Scenario kiosk" } });
  const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId: "scenario-1" });
  const { deviceCredential } = await auth.client(DeviceService).enrollDevice({ code });

  const up = new StreamOutbox<MessageInitShape<typeof ConnectRequestSchema>>(100);
  const stream = createClient(LinkService, createGrpcTransport({ baseUrl: link.url, interceptors: [bearer(deviceCredential)] }))
    .connect(up)
    [Symbol.asyncIterator]();
  const hello = Date.now();
  up.push({ body: { case: "hello", value: { firmwareVersion: "3.2.1", appVersion: "7.0.0" } } });
  expect((await stream.next()).value?.body.case).toBe("welcome");

  const status = async () => (await kiosks.getKiosk({ kioskId: "scenario-1" })).kiosk;
  // Online in fleet (how soon is the machine's speed, so not asserted), seen from this
  // connection: not from before the kiosk said hello.
  await expect.poll(async () => (await status())?.status, { ...eventually, interval: 20 }).toBe(KioskStatus.ONLINE);
  expect(await status()).toMatchObject({ firmwareVersion: "3.2.1", appVersion: "7.0.0" });
  expect(timestampMs((await status())!.lastSeenTime!)).toBeGreaterThanOrEqual(Math.floor(hello / 1000) * 1000);

  up.push({
    body: {
      case: "telemetry",
      value: { batchId: "t-1", samples: [{ sampleId: "s-1", time: timestampNow(), paperLevelPercent: 12, cashLevelMinor: 45_000n, printer: DeviceStatus.WARNING }] },
    },
  });
  expect((await stream.next()).value?.body.case).toBe("telemetryAck");
  await expect.poll(async () => (await status())?.state?.paperLevelPercent, eventually).toBe(12);
  expect((await status())?.state).toMatchObject({ cashLevelMinor: 45_000n, printerStatus: "WARNING" });

  up.close();
  for (let r = await stream.next(); !r.done; r = await stream.next());
  await expect.poll(async () => (await status())?.status, eventually).toBe(KioskStatus.OFFLINE);
  expect((await kiosks.listKiosks({ status: KioskStatus.OFFLINE })).kiosks.map((k) => k.kioskId)).toContain("scenario-1");
});

it("a kiosk whose link replica dies without a word is shown offline once its presence expires", async () => {
  const infra = inject("infra");
  const admin = await auth.adminToken();
  const kiosks = clientFor(KioskService, fleet.url, admin);
  const doomed = await startTestService("link", {
    REDIS_URL: auth.redisUrl,
    NATS_URL: infra.natsUrl,
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    LINK_REPLICA_ID: "link-doomed",
    PRESENCE_TTL_SECONDS: "3",
  });
  await kiosks.createKiosk({ kiosk: { kioskId: "scenario-2", name: "Orphaned kiosk" } });
  const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId: "scenario-2" });
  const { deviceCredential } = await auth.client(DeviceService).enrollDevice({ code });
  const up = new StreamOutbox<MessageInitShape<typeof ConnectRequestSchema>>(10);
  const stream = createClient(LinkService, createGrpcTransport({ baseUrl: doomed.url, interceptors: [bearer(deviceCredential)] }))
    .connect(up)
    [Symbol.asyncIterator]();
  up.push({ body: { case: "hello", value: {} } });
  await stream.next();
  const status = async () => (await kiosks.getKiosk({ kioskId: "scenario-2" })).kiosk?.status;
  await expect.poll(status, eventually).toBe(KioskStatus.ONLINE);
  doomed.child.kill("SIGKILL"); // no goodbye, no disconnected event
  await stream.next().catch(() => undefined);
  await expect.poll(status, eventually).toBe(KioskStatus.OFFLINE);
});

it("a kiosk that stops talking (no heartbeats, no goodbye) is shown offline after the silence timeout", async () => {
  const infra = inject("infra");
  const admin = await auth.adminToken();
  const kiosks = clientFor(KioskService, fleet.url, admin);
  const strict = await startTestService("link", {
    REDIS_URL: auth.redisUrl,
    NATS_URL: infra.natsUrl,
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    LINK_REPLICA_ID: "link-strict",
    SILENT_TIMEOUT_SECONDS: "3",
    SHUTDOWN_GRACE_MS: "1000",
  });
  try {
    await kiosks.createKiosk({ kiosk: { kioskId: "scenario-3", name: "Silent kiosk" } });
    const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId: "scenario-3" });
    const { deviceCredential } = await auth.client(DeviceService).enrollDevice({ code });
    const up = new StreamOutbox<MessageInitShape<typeof ConnectRequestSchema>>(10);
    const stream = createClient(LinkService, createGrpcTransport({ baseUrl: strict.url, interceptors: [bearer(deviceCredential)] }))
      .connect(up)
      [Symbol.asyncIterator]();
    const lastWord = Date.now(); // the hello is the last thing the kiosk says
    up.push({ body: { case: "hello", value: {} } });
    await stream.next();
    const status = async () => (await kiosks.getKiosk({ kioskId: "scenario-3" })).kiosk?.status;
    await expect.poll(status, eventually).toBe(KioskStatus.ONLINE);
    // The kiosk says nothing more (its stream stays open from its side).
    await expect.poll(status, eventually).toBe(KioskStatus.OFFLINE);
    // Not before the silence timeout, counted from its last word (a lower bound: a slow
    // machine only shows it later).
    expect(Date.now() - lastWord).toBeGreaterThanOrEqual(3_000);
    await stream.next().catch(() => undefined);
  } finally {
    await strict.stop();
  }
});

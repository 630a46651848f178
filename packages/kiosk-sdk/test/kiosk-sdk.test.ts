// The SDK and the simulator against real auth, fleet and link processes: enrollment,
// going online, telemetry that outlives a link crash, revocation, provisioning.
import { mkdtempSync, statSync } from "node:fs";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { inject } from "vitest";
import { AuthService, DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { createDatabase, eventually, freePort, repoRoot, startServiceProcess, startTestService, type ServiceProcess, type StartedService } from "@adminkiosk/devstack";
import { adminEmail, adminPassword, clientFor, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";
import { enroll, KioskClient, type KioskClientEvents } from "../src/index.js";
import { provision, startSimulator } from "../src/simulator.js";

let auth: AuthFixture;
let fleet: StartedService;
let link: StartedService;
let admin: string;
let nc: NatsConnection;
const clients: KioskClient[] = [];

const linkEnv = (replica: string) => ({
  REDIS_URL: auth.redisUrl,
  NATS_URL: inject("infra").natsUrl,
  AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
  LINK_REPLICA_ID: replica,
  SHUTDOWN_GRACE_MS: "2000",
});

beforeAll(async () => {
  const infra = inject("infra");
  auth = await startAuth();
  const shared = { REDIS_URL: auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json` };
  [fleet, link] = await Promise.all([
    createDatabase(infra.databaseUrl, "fleet").then((db) =>
      startTestService("fleet", { ...shared, DATABASE_URL: db, AUTH_URL: auth.service.url, LINK_EVENTS_CONSUMER: `fleet-kiosk-sdk-${process.pid}`, LINK_EVENTS_SINCE_START: "true" }),
    ),
    startTestService("link", linkEnv("link-sdk")),
  ]);
  admin = await auth.adminToken();
  nc = await connect({ servers: infra.natsUrl });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await nc?.close();
  await Promise.all([fleet?.stop(), link?.stop()]);
  await auth?.stop();
});

async function registerAndEnroll(kioskId: string) {
  await clientFor(KioskService, fleet.url, admin).createKiosk({ kiosk: { kioskId, name: `SDK ${kioskId}` } });
  const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId });
  return enroll({ authAddress: auth.service.url, code, firmwareVersion: "9.1.0", hardwareModel: "AK-TEST" });
}

function kioskClient(linkAddress: string, credential: string) {
  const client = new KioskClient({ linkAddress, credential, firmwareVersion: "9.1.0", appVersion: "3.0.0", backoff: { initialMs: 100, maxMs: 400 } });
  clients.push(client);
  return client;
}

function next<E extends keyof KioskClientEvents>(client: KioskClient, event: E, timeoutMs = eventually.timeout): Promise<KioskClientEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    const listener = (...args: KioskClientEvents[E]) => {
      clearTimeout(timer);
      client.off(event, listener);
      resolve(args);
    };
    client.on(event, listener);
  });
}

const statusOf = async (kioskId: string) => (await clientFor(KioskService, fleet.url, admin).getKiosk({ kioskId })).kiosk?.status;

/** Every telemetry sample id JetStream holds for the kiosk (one entry per stored sample). */
async function storedSampleIds(kioskId: string): Promise<string[]> {
  const subject = `link.kiosk.${kioskId}.telemetry`;
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info("LINK", { subjects_filter: subject });
  const count = info.state.subjects?.[subject] ?? 0;
  const consumer = await jsm.consumers.add("LINK", { filter_subject: subject, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, inactive_threshold: 30_000_000_000 });
  const ids: string[] = [];
  const messages = await (await jetstream(nc).consumers.get("LINK", consumer.name)).fetch({ max_messages: Math.max(count, 1), expires: eventually.timeout });
  for await (const m of messages) {
    ids.push(...(fromBinary(KioskTelemetryEventSchema, m.data).batch?.samples.map((s) => s.sampleId) ?? []));
    if (ids.length >= count && m.info.pending === 0) break;
  }
  return ids;
}

it("an enrolled kiosk connects and fleet shows it online with what it reported", async () => {
  const { kioskId, deviceCredential } = await registerAndEnroll("sdk-001");
  expect(kioskId).toBe("sdk-001");
  const client = kioskClient(link.url, deviceCredential);
  const connected = next(client, "connected");
  client.start();
  const [welcome] = await connected;
  expect(welcome).toMatchObject({ kioskId: "sdk-001", linkReplica: "link-sdk" });
  await expect.poll(() => statusOf("sdk-001"), eventually).toBe(KioskStatus.ONLINE);
  expect((await clientFor(KioskService, fleet.url, admin).getKiosk({ kioskId: "sdk-001" })).kiosk).toMatchObject({ firmwareVersion: "9.1.0", appVersion: "3.0.0" });
  await client.stop();
  await expect.poll(() => statusOf("sdk-001"), eventually).toBe(KioskStatus.OFFLINE);
});

it("telemetry recorded while link is down is delivered after it comes back, each sample stored once", async () => {
  const port = await freePort();
  const startOwnLink = () => startServiceProcess(repoRoot, "link", port, { ...linkEnv("link-crash"), LINK_PORT: String(port), LOG_LEVEL: "warn" }, () => {});
  let own: ServiceProcess = await startOwnLink();
  try {
    const { deviceCredential } = await registerAndEnroll("sdk-002");
    const client = kioskClient(own.url, deviceCredential);
    const connected = next(client, "connected");
    client.start();
    await connected;
    for (let i = 0; i < 3; i++) client.recordTelemetry({ sampleId: `before-${i}`, paperLevelPercent: 90 - i });
    await expect.poll(() => client.outboxSize, { ...eventually, interval: 50 }).toBe(0);

    const disconnected = next(client, "disconnected");
    own.child.kill("SIGKILL");
    await own.exited;
    await disconnected;
    // Recorded while link is gone; more than one batch's worth, so several batches go out.
    for (let i = 0; i < 150; i++) client.recordTelemetry({ sampleId: `during-${i}`, paperLevelPercent: 50, cashLevelMinor: BigInt(i) });
    expect(client.outboxSize).toBe(150);

    const reconnected = next(client, "connected");
    own = await startOwnLink();
    await reconnected;
    await expect.poll(() => client.outboxSize, { ...eventually, interval: 50 }).toBe(0);
    const ids = await storedSampleIds("sdk-002");
    expect(ids).toHaveLength(153);
    expect(new Set(ids).size).toBe(153);
    expect(client.droppedSamples).toBe(0);
  } finally {
    await own.stop(3_000);
  }
});

it("revoking the kiosk at auth makes the client emit revoked and stay away", async () => {
  const { deviceCredential } = await registerAndEnroll("sdk-003");
  const client = kioskClient(link.url, deviceCredential);
  const connected = next(client, "connected");
  client.start();
  await connected;
  let reconnects = 0;
  client.on("connected", () => reconnects++);
  const revoked = next(client, "revoked");
  await auth.client(DeviceService, admin).revokeDevice({ kioskId: "sdk-003" });
  await revoked;
  // Not running: every reconnect is gated on that (a retry opens a stream only while
  // running), so none is coming; no pause could show more than this does.
  expect(client.isRunning).toBe(false);
  expect(reconnects).toBe(0);
  expect(client.isConnected).toBe(false);
});

it("the simulator provisions kiosks that go online, and a second run reuses its state file without admin credentials", async () => {
  const stateFile = join(mkdtempSync(join(inject("infra").tmpDir, "sim-")), "kiosks.json");
  // Its own ids: the run's other simulated fleets share the NATS (sim-… is the web e2e's).
  const common = { idPrefix: "sdk", authUrl: auth.service.url, fleetUrl: fleet.url, count: 3, stateFile };
  const kiosks = await provision({ ...common, admin: { email: adminEmail, password: adminPassword }, restocker: true });
  expect(kiosks.map((k) => k.kioskId)).toEqual(["sdk-0001", "sdk-0002", "sdk-0003"]);
  expect(statSync(stateFile).mode & 0o777).toBe(0o600);
  // The simulated route driver (selling.ts restocks as it) signs in as an operator.
  const driver = await auth.client(AuthService).login(kiosks.restocker!);
  expect(driver.user?.role).toBe(Role.OPERATOR);

  const first = startSimulator({ linkUrl: link.url, kiosks, telemetryIntervalMs: 200, flappingShare: 0 });
  try {
    for (const { kioskId } of kiosks) await expect.poll(() => statusOf(kioskId), eventually).toSatisfy((s) => s === KioskStatus.ONLINE || s === KioskStatus.ALERTING);
    const sim1 = (await clientFor(KioskService, fleet.url, admin).getKiosk({ kioskId: "sdk-0001" })).kiosk;
    expect(sim1?.tags).toContain("simulated");
    await expect.poll(async () => (await clientFor(KioskService, fleet.url, admin).getKiosk({ kioskId: "sdk-0001" })).kiosk?.state?.paperLevelPercent, eventually).toBeGreaterThan(0);
  } finally {
    await first.stop();
  }

  const again = await provision(common); // no admin credentials
  expect(again).toEqual(kiosks);
  expect(again.restocker).toEqual(kiosks.restocker);
  await expect(provision({ ...common, count: 4 })).rejects.toThrow(/ADMIN_EMAIL and ADMIN_PASSWORD/);
  const second = startSimulator({ linkUrl: link.url, kiosks: again, telemetryIntervalMs: 200, flappingShare: 0 });
  try {
    await Promise.all([...second.clients.values()].map((c) => next(c, "connected")));
  } finally {
    await second.stop();
  }
});

// The kiosk registry as admins and viewers use it, with real auth and PostgreSQL.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { AuditService, AuthService, DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { create as createMessage, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { jetstream } from "@nats-io/jetstream";
import { KioskConnectedEventSchema, KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { closeNats, connectNats, createLogger, ensureStream } from "@adminkiosk/runtime";
import { createDatabase, eventually, startTestService, type StartedService } from "@adminkiosk/devstack";
import { clientFor, failure, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";

let auth: AuthFixture;
let fleet: StartedService;
let admin: string;
let viewer: string;

beforeAll(async () => {
  auth = await startAuth();
  fleet = await startTestService("fleet", {
    DATABASE_URL: await createDatabase(inject("infra").databaseUrl, "fleet"),
    REDIS_URL: auth.redisUrl,
    NATS_URL: inject("infra").natsUrl,
    LINK_EVENTS_CONSUMER: `fleet-test-${process.pid}`,
    LINK_EVENTS_SINCE_START: "true",
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    AUTH_URL: auth.service.url,
  });
  admin = await auth.adminToken();
  viewer = (await auth.userWithRole(Role.VIEWER)).accessToken;
});
afterAll(async () => {
  await fleet?.stop();
  await auth?.stop();
});

const kiosksAs = (token?: string) => clientFor(KioskService, fleet.url, token);

const create = (kioskId: string, extra: { tags?: string[]; groupId?: string; name?: string } = {}) =>
  kiosksAs(admin).createKiosk({
    kiosk: {
      kioskId,
      name: extra.name ?? `Kiosk ${kioskId}`,
      location: { latitude: 50.087, longitude: 14.421, address: "Old Town Square 1, Prague" },
      timezone: "Europe/Prague",
      tags: extra.tags ?? [],
      groupId: extra.groupId ?? "",
    },
  });

describe("registry", () => {
  it("an admin registers a kiosk; a viewer reads it", async () => {
    const { kiosk } = await create("prague-001", { tags: ["flowers", "indoor"], groupId: "prague" });
    expect(kiosk).toMatchObject({ kioskId: "prague-001", status: KioskStatus.PROVISIONED, tags: ["flowers", "indoor"], groupId: "prague" });
    const { kiosk: read } = await kiosksAs(viewer).getKiosk({ kioskId: "prague-001" });
    expect(read?.location?.address).toBe("Old Town Square 1, Prague");
    expect(read?.timezone).toBe("Europe/Prague");
  });

  it("a viewer cannot register, change or delete kiosks; no token is Unauthenticated", async () => {
    expect((await failure(kiosksAs(viewer).createKiosk({ kiosk: { kioskId: "x-1", name: "X" } }))).code).toBe(Code.PermissionDenied);
    expect((await failure(kiosksAs(viewer).deleteKiosk({ kioskId: "prague-001" }))).code).toBe(Code.PermissionDenied);
    expect((await failure(kiosksAs().listKiosks({}))).code).toBe(Code.Unauthenticated);
  });

  it("a second kiosk with the same id is AlreadyExists", async () => {
    await create("dup-1");
    expect((await failure(create("dup-1"))).code).toBe(Code.AlreadyExists);
  });

  it("updates only what was sent", async () => {
    await create("upd-1", { tags: ["a"] });
    const { kiosk } = await kiosksAs(admin).updateKiosk({ kioskId: "upd-1", name: "Renamed" });
    expect(kiosk).toMatchObject({ name: "Renamed", tags: ["a"], timezone: "Europe/Prague" });
    const { kiosk: retagged } = await kiosksAs(admin).updateKiosk({ kioskId: "upd-1", updateTags: true, tags: ["b", "a", "b"] });
    expect(retagged?.tags).toEqual(["a", "b"]);
  });

  it("lists in the order asked for, page by page, and refuses an order it does not know", async () => {
    const names = ["Delta", "alpha", "Charlie", "bravo", "Echo"];
    for (const [i, name] of names.entries()) await kiosksAs(admin).createKiosk({ kiosk: { kioskId: `sort-${i}`, name, tags: ["sort-test"] } });
    const all: string[] = [];
    let pageToken = "";
    do {
      const res = await kiosksAs(viewer).listKiosks({ tag: "sort-test", orderBy: "name desc", pageSize: 2, pageToken });
      all.push(...res.kiosks.map((k) => k.name));
      pageToken = res.nextPageToken;
    } while (pageToken);
    expect(all).toEqual(["bravo", "alpha", "Echo", "Delta", "Charlie"]);
    const first = await kiosksAs(viewer).listKiosks({ tag: "sort-test", orderBy: "name desc", pageSize: 2 });
    const mixed = await failure(kiosksAs(viewer).listKiosks({ tag: "sort-test", orderBy: "name", pageToken: first.nextPageToken }));
    expect([mixed.code, mixed.rawMessage]).toEqual([Code.InvalidArgument, expect.stringContaining("page_token")]);
    const bad = await failure(kiosksAs(viewer).listKiosks({ orderBy: "color" }));
    expect([bad.code, bad.rawMessage]).toEqual([Code.InvalidArgument, expect.stringContaining("order_by")]);
    const bySeen = await kiosksAs(viewer).listKiosks({ tag: "sort-test", orderBy: "last_seen_time desc" });
    expect(bySeen.kiosks.map((k) => k.kioskId)).toEqual(["sort-4", "sort-3", "sort-2", "sort-1", "sort-0"]);
  });

  it("bad input is InvalidArgument naming the field", async () => {
    // Made one at a time: a refusal arriving before its turn would be an unhandled rejection.
    const cases: [() => Promise<unknown>, string][] = [
      [() => kiosksAs(admin).createKiosk({}), "kiosk"],
      [() => kiosksAs(admin).createKiosk({ kiosk: { kioskId: "has.dot", name: "X" } }), "kiosk.kiosk_id"],
      [() => kiosksAs(admin).createKiosk({ kiosk: { kioskId: "ok-1", name: "" } }), "kiosk.name"],
      [() => kiosksAs(admin).createKiosk({ kiosk: { kioskId: "ok-1", name: "X", timezone: "Mars/Olympus" } }), "kiosk.timezone"],
      [() => kiosksAs(admin).createKiosk({ kiosk: { kioskId: "ok-1", name: "X", location: { latitude: 91, longitude: 0 } } }), "kiosk.location.latitude"],
      [() => kiosksAs(admin).createKiosk({ kiosk: { kioskId: "ok-1", name: "X", tags: ["Bad Tag"] } }), "kiosk.tags[0]"],
      [() => kiosksAs(viewer).listKiosks({ pageSize: 5000 }), "page_size"],
      [() => kiosksAs(viewer).listKiosks({ pageToken: "forged" }), "page_token"],
      [() => kiosksAs(viewer).getKiosk({ kioskId: "" }), "kiosk_id"],
    ];
    for (const [call, field] of cases) {
      const err = await failure(call());
      expect(err.code, field).toBe(Code.InvalidArgument);
      expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe(field);
    }
  });
});

describe("listing", () => {
  beforeAll(async () => {
    for (let i = 0; i < 12; i++) await create(`brno-${String(i).padStart(3, "0")}`, { groupId: "brno", tags: i % 3 === 0 ? ["outdoor"] : [], name: i === 7 ? "Main Station" : `Brno ${i}` });
  });

  it("pages through a group in id order with a total", async () => {
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await kiosksAs(viewer).listKiosks({ groupId: "brno", pageSize: 5, pageToken });
      expect(page.totalSize).toBe(12);
      seen.push(...page.kiosks.map((k) => k.kioskId));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(12);
  });

  it("filters by tag, text and status", async () => {
    expect((await kiosksAs(viewer).listKiosks({ groupId: "brno", tag: "outdoor" })).kiosks.map((k) => k.kioskId)).toEqual([
      "brno-000",
      "brno-003",
      "brno-006",
      "brno-009",
    ]);
    expect((await kiosksAs(viewer).listKiosks({ query: "station" })).kiosks.map((k) => k.kioskId)).toEqual(["brno-007"]);
    expect((await kiosksAs(viewer).listKiosks({ query: "100%_" })).kiosks).toHaveLength(0);
    expect((await kiosksAs(viewer).listKiosks({ groupId: "brno", status: KioskStatus.ONLINE })).kiosks).toHaveLength(0);
    expect((await kiosksAs(viewer).listKiosks({ groupId: "brno", status: KioskStatus.PROVISIONED })).totalSize).toBe(12);
  });
});

describe("alerting and low paper", () => {
  // What link would publish for a kiosk that connects and reports one sample.
  async function reports(kioskId: string, sample: { paperLevelPercent: number; printer?: DeviceStatus; errors?: string[] }) {
    const nc = await connectNats(inject("infra").natsUrl, "fleet-test", createLogger("fleet-test", "silent"));
    try {
      await ensureStream(nc, { name: "LINK", subjects: ["link.>"] });
      const js = jetstream(nc);
      const connected = createMessage(KioskConnectedEventSchema, { kioskId, deviceId: `dev-${kioskId}`, linkReplica: "test", hello: {}, time: timestampNow(), sessionId: `s-${kioskId}` });
      await js.publish(`link.kiosk.${kioskId}.connected`, toBinary(KioskConnectedEventSchema, connected));
      const telemetry = createMessage(KioskTelemetryEventSchema, {
        kioskId,
        batch: { batchId: `b-${kioskId}`, samples: [{ sampleId: `s-${kioskId}`, time: timestampNow(), ...sample }] },
        receiveTime: timestampNow(),
      });
      await js.publish(`link.kiosk.${kioskId}.telemetry`, toBinary(KioskTelemetryEventSchema, telemetry));
    } finally {
      await closeNats(nc);
    }
  }
  const statusOf = async (kioskId: string) => (await kiosksAs(viewer).getKiosk({ kioskId })).kiosk?.status;

  it("fleet's one low-paper threshold decides ALERTING, the ALERTING filter and the counts, and is in the summary", async () => {
    const before = (await kiosksAs(viewer).getFleetSummary({})).summary!;
    expect(before.thresholds?.lowPaperPercent).toBe(10);
    await create("paper-low", { tags: ["paper-test"] });
    await create("paper-ok", { tags: ["paper-test"] });
    await create("printer-fault", { tags: ["paper-test"] });
    await reports("paper-low", { paperLevelPercent: 9.5 });
    await reports("paper-ok", { paperLevelPercent: 10 });
    await reports("printer-fault", { paperLevelPercent: 80, printer: DeviceStatus.FAULT });
    await expect.poll(() => statusOf("paper-low"), eventually).toBe(KioskStatus.ALERTING);
    await expect.poll(() => statusOf("printer-fault"), eventually).toBe(KioskStatus.ALERTING);
    await expect.poll(async () => (await kiosksAs(viewer).getKiosk({ kioskId: "paper-ok" })).kiosk?.state?.paperLevelPercent, eventually).toBe(10);
    expect(await statusOf("paper-ok")).toBe(KioskStatus.ONLINE);

    const alerting = await kiosksAs(viewer).listKiosks({ tag: "paper-test", status: KioskStatus.ALERTING });
    expect(alerting.kiosks.map((k) => k.kioskId)).toEqual(["paper-low", "printer-fault"]);
    expect((await kiosksAs(viewer).listKiosks({ tag: "paper-test", status: KioskStatus.ONLINE })).kiosks.map((k) => k.kioskId)).toEqual(["paper-low", "paper-ok", "printer-fault"]);
    // The summary is computed at most once a second (watch.ts), so read it until it has caught up.
    await expect
      .poll(async () => {
        const after = (await kiosksAs(viewer).getFleetSummary({})).summary!;
        return { lowPaper: after.lowPaper - before.lowPaper, alerting: after.alerting - before.alerting };
      }, eventually)
      .toEqual({ lowPaper: 1, alerting: 2 });
    // Prometheus reads the same counts (fleet_kiosks{status}, the fleet dashboard's), counted at most every 5 s.
    const gauge = async (status: string) => {
      const text = await (await fetch(`${fleet.url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith("fleet_kiosks{") && l.includes(`status="${status}"`));
      return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : undefined;
    };
    const summary = (await kiosksAs(viewer).getFleetSummary({})).summary!;
    await expect
      .poll(async () => ({ online: await gauge("online"), alerting: await gauge("alerting"), lowPaper: await gauge("low_paper") }), eventually)
      .toEqual({ online: summary.online, alerting: summary.alerting, lowPaper: summary.lowPaper });
  });
});

describe("deletion", () => {
  it("removes the kiosk from the fleet and revokes its device credential at auth", async () => {
    await create("gone-1");
    const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId: "gone-1" });
    const { deviceCredential } = await auth.client(DeviceService).enrollDevice({ code });
    await auth.client(AuthService, deviceCredential).whoAmI({});

    await kiosksAs(admin).deleteKiosk({ kioskId: "gone-1" });
    expect((await failure(kiosksAs(viewer).getKiosk({ kioskId: "gone-1" }))).code).toBe(Code.NotFound);
    expect((await kiosksAs(viewer).listKiosks({ query: "gone-1" })).kiosks).toHaveLength(0);
    const refused = await failure(auth.client(AuthService, deviceCredential).whoAmI({}));
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(refused.rawMessage).toMatch(/revoked/);
    // The id stays taken: history (orders, telemetry) refers to it.
    expect((await failure(create("gone-1"))).rawMessage).toMatch(/was deleted/);
  });

  it("revokes at auth as the admin, under the caller's request id and deadline", async () => {
    await create("gone-2");
    const requestId = `fleet-delete-${process.pid}-${Date.now()}`;
    await kiosksAs(admin).deleteKiosk({ kioskId: "gone-2" }, { headers: { "x-request-id": requestId }, timeoutMs: 10_000 });
    const { events } = await auth.client(AuditService, admin).listAuditEvents({ type: "device.revoked", subject: "gone-2" });
    expect(events).toHaveLength(1);
    // auth judged the admin (their token was forwarded), and its audit entry carries fleet's caller's request id.
    const me = (await auth.client(AuthService, admin).whoAmI({})).principal;
    expect(events[0]).toMatchObject({ requestId, actor: me.case === "user" ? me.value.userId : "not a user" });
  });

  it("the request id fleet made up (the caller sent none) reaches auth too", async () => {
    await create("gone-3");
    let fleetRequestId: string | null = null;
    await kiosksAs(admin).deleteKiosk({ kioskId: "gone-3" }, { onHeader: (h) => (fleetRequestId = h.get("x-request-id")) });
    expect(fleetRequestId).toMatch(/^[0-9a-f-]{36}$/);
    const { events } = await auth.client(AuditService, admin).listAuditEvents({ type: "device.revoked", subject: "gone-3" });
    expect(events[0]?.requestId).toBe(fleetRequestId);
  });

  it("a kiosk device cannot use the registry", async () => {
    await create("dev-1");
    const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId: "dev-1" });
    const { deviceCredential } = await auth.client(DeviceService).enrollDevice({ code });
    expect((await failure(kiosksAs(deviceCredential).listKiosks({}))).code).toBe(Code.PermissionDenied);
  });

  it("an unknown kiosk is NotFound", async () => {
    expect((await failure(kiosksAs(admin).deleteKiosk({ kioskId: "never-was" }))).code).toBe(Code.NotFound);
  });
});

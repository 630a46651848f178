// "Never during a ticketed event nearby" (issue 17, docs/rollouts.md) end to end on real
// processes (auth, catalog, fleet reading catalog's events as itself, link, kiosks on the SDK),
// with short windows: ROLLOUT_EVENT_AFTER_HOURS of a few seconds and ROLLOUT_EVENTS_MAX_AGE_MS
// of 4 s. A kiosk far from any venue that leases an event's seats waits while one beside it
// installs, and installs once its lease is revoked; a kiosk beside a venue installs only after
// the event's blackout ended (start + the after window); with catalog stopped and the last read
// older than the max age, no kiosk of an EXPLICIT or AUTO rollout is sent its install and the
// rollouts say why, while an ANY rollout goes on.
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { EventService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { LeaseService } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { ReleaseKind, ReleaseService } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { RolloutService, WindowPolicy } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { UpdateStatus_State } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CreateRolloutRequestSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { waitFor } from "@adminkiosk/devstack";
import { clientFor } from "../../../test/support/auth.js";
import { putArtifact, startFleet, type FleetFixture } from "../../../test/support/fleet.js";

/** The blackout ends this long after an event's start (ROLLOUT_EVENT_AFTER_HOURS). */
const afterMs = 15_000;
const maxAgeMs = 4_000;
const venue = { latitude: 50.0875, longitude: 14.4213 };
const hourIn = (zone: string, at = new Date()) => Number(new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", hourCycle: "h23" }).format(at)) % 24;
/** A zone where it is 02:00-03:59 now: AUTO's fallback window (02:00-05:00 local) holds now and for the next hour. */
const autoZone = Intl.supportedValuesOf("timeZone").find((z) => [2, 3].includes(hourIn(z)))!;

let fx: FleetFixture;
let db: pg.Pool;
let stateDir: string;
let releaseId = "";

const rollouts = () => fx.fleetClient(RolloutService);
const get = async (rolloutId: string) => (await rollouts().getRollout({ rolloutId })).rollout!;
const explicit = (tag: string, windowPolicy = WindowPolicy.EXPLICIT): MessageInitShape<typeof CreateRolloutRequestSchema> => ({
  releaseId,
  target: { tags: [tag] },
  windowPolicy,
  // The whole day: only the events stand in the way.
  windowStartHour: 0,
  windowEndHour: 0,
  waves: [{ percent: 100, bake: durationFromMs(0) }],
  gate: { maxWait: durationFromMs(0) },
});
const event = (name: string, startMs: number, place?: typeof venue) =>
  clientFor(EventService, fx.catalog!.url, fx.admin).createEvent({
    event: {
      name,
      venue: name,
      ...(place ? { venueLatitude: place.latitude, venueLongitude: place.longitude } : {}),
      startTime: { seconds: BigInt(Math.floor(startMs / 1000)), nanos: 0 },
      active: true,
      priceTiers: [{ tierId: "std", name: "Standard", priceMinor: 3000n, currency: "EUR" }],
      sections: [{ sectionId: "A", name: "Stalls", rows: [{ rowId: "1", seats: [{ number: "1", tierId: "std" }] }] }],
    },
  });

beforeAll(async () => {
  stateDir = mkdtempSync(join(os.tmpdir(), "rollouts-events-"));
  const { privateKey } = generateKeyPairSync("ed25519");
  fx = await startFleet({
    name: "rollouts-events",
    catalog: true,
    fleetEnv: {
      ROLLOUT_TICK_MS: "200",
      ROLLOUT_EVENTS_REFRESH_MS: "300",
      ROLLOUT_EVENTS_MAX_AGE_MS: String(maxAgeMs),
      ROLLOUT_EVENT_AFTER_HOURS: String(afterMs / 3_600_000),
      FLEET_RELEASE_SIGNING_KEY: JSON.stringify(privateKey.export({ format: "jwk" })),
      FLEET_ARTIFACT_DIR: join(stateDir, "artifacts"),
    },
  });
  db = new pg.Pool({ connectionString: fx.fleetDatabaseUrl, max: 2, options: "-c search_path=fleet" });
  const kiosks = fx.fleetClient(KioskService);
  const ids = ["ev-lease", "ev-free", "ev-near", "ev-explicit", "ev-auto", "ev-any"];
  const credentials = new Map<string, string>();
  for (const id of ids) {
    // Each its own tag, so each rollout below targets the kiosks it names.
    const tag = id === "ev-free" ? "ev-lease" : id;
    credentials.set(id, (await fx.enroll([id], { tags: [tag] })).get(id)!);
  }
  await kiosks.updateKiosk({ kioskId: "ev-near", location: { latitude: 50.0902, longitude: 14.4201 } });
  await kiosks.updateKiosk({ kioskId: "ev-auto", timezone: autoZone });
  releaseId = (await fx.fleetClient(ReleaseService).createRelease({ kind: ReleaseKind.APP, version: "9.0.0", artifactSha256: await putArtifact(fx.fleet.url, fx.admin, randomBytes(1024)) })).release!
    .releaseId;
  // Each kiosk takes its install and reports it installed.
  for (const credential of credentials.values()) {
    const client = fx.kiosk(credential);
    client.onCommand("installRelease", (a) => {
      client.reportUpdate({ releaseId: a.releaseId, state: UpdateStatus_State.INSTALLED, version: "9.0.0", fromVersion: "1.0.0" });
    });
    client.start();
  }
  await waitFor("the kiosks online", async () => ((await kiosks.listKiosks({ status: KioskStatus.ONLINE, pageSize: 100 })).kiosks.length === ids.length ? true : undefined), { timeout: 60_000 });
}, 180_000);

afterAll(async () => {
  await db?.end();
  await fx?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("ticketed events as rollout blackouts", () => {
  it("keeps a kiosk that leases an event's seats from installing, though no venue is near it; it installs once the lease is revoked", async () => {
    // An event with no place, in an hour: only its lease ties a kiosk to it.
    const { event: e } = await event("Away game", Date.now() + 3_600_000);
    const leaseId = randomUUID();
    await clientFor(LeaseService, fx.catalog!.url, fx.admin).grantLease({ leaseId, kioskId: "ev-lease", seats: [{ eventId: e!.eventId, seatId: "A-1-1" }] });
    const req = explicit("ev-lease");
    await waitFor("fleet read the lease", async () => ((await rollouts().previewRollout({ rollout: req })).blockedByEvents === 1 ? true : undefined));

    const id = (await rollouts().createRollout(req)).rollout!.rolloutId;
    // The wave finishes with the kiosk that sells no seats; the leasing one still waits.
    const passed = await waitFor("the other kiosk installed and the wave passed", async () => {
      const r = await get(id);
      return r.currentWave === 1 ? r : undefined;
    });
    expect([passed.waveStatus[0]!.installed, passed.waveStatus[0]!.installing, passed.waveStatus[0]!.blockedByEvents]).toEqual([1, 0, 1]);
    const { updates } = await fx.fleetClient(ReleaseService).listKioskUpdates({ rolloutId: id });
    expect(updates.map((u) => u.kioskId)).toEqual(["ev-free"]);

    await clientFor(LeaseService, fx.catalog!.url, fx.admin).revokeLease({ leaseId, reason: "test" });
    await waitFor("the leasing kiosk installed", async () => ((await get(id)).waveStatus[0]!.installed === 2 ? true : undefined));
  }, 90_000);

  it("sends a kiosk beside the venue its install only after the event's blackout ended (its start + the after window)", async () => {
    const start = Date.now() + 2_000;
    await event("Stadium concert", start, venue);
    const req = explicit("ev-near");
    await waitFor("fleet read the event", async () => ((await rollouts().previewRollout({ rollout: req })).blockedByEvents === 1 ? true : undefined));
    const id = (await rollouts().createRollout(req)).rollout!.rolloutId;
    const first = await get(id);
    expect([first.waveStatus[0]!.installing, first.waveStatus[0]!.installed, first.waveStatus[0]!.blockedByEvents]).toEqual([0, 0, 1]);

    await waitFor("the kiosk installed", async () => ((await get(id)).waveStatus[0]!.installed === 1 ? true : undefined), { timeout: afterMs + 60_000 });
    const { rows } = await db.query<{ sent_at: Date }>("SELECT sent_at FROM rollout_targets WHERE rollout_id = $1", [id]);
    expect(rows[0]!.sent_at.getTime()).toBeGreaterThanOrEqual(Math.floor(start / 1000) * 1000 + afterMs);
  }, afterMs + 90_000);

  it("fails closed: with catalog's events older than ROLLOUT_EVENTS_MAX_AGE_MS no kiosk of an EXPLICIT or AUTO rollout gets its install, and the rollout says why; ANY goes on", async () => {
    await fx.catalog!.stop();
    const req = explicit("ev-explicit");
    // ev-explicit is near no event and leases nothing: only the stale read can hold it.
    await waitFor("the last read too old", async () => ((await rollouts().previewRollout({ rollout: req })).blockedByEvents === 1 ? true : undefined), { timeout: maxAgeMs + 30_000 });

    const held = [
      (await rollouts().createRollout(req)).rollout!.rolloutId,
      (await rollouts().createRollout(explicit("ev-auto", WindowPolicy.AUTO))).rollout!.rolloutId,
    ];
    const any = (await rollouts().createRollout(explicit("ev-any", WindowPolicy.ANY))).rollout!.rolloutId;
    // The ANY rollout, created last, installs: the engine moved all three meanwhile.
    await waitFor("the ANY rollout's kiosk installed", async () => ((await get(any)).waveStatus[0]!.installed === 1 ? true : undefined));
    expect((await get(any)).eventNote).toBe("");
    for (const id of held) {
      const r = await get(id);
      expect([r.windowPolicy, r.waveStatus[0]!.installing, r.waveStatus[0]!.installed, r.waveStatus[0]!.blockedByEvents]).toEqual([r.windowPolicy, 0, 0, 1]);
      expect(r.eventNote).toMatch(/^installs wait: catalog's ticketed events were last read at \S+, longer ago than ROLLOUT_EVENTS_MAX_AGE_MS; the last read failed at /);
      expect((await fx.fleetClient(ReleaseService).listKioskUpdates({ rolloutId: id })).updates).toEqual([]);
    }
  }, 90_000);
});

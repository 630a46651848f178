// AUTO maintenance windows from ai's forecast (issue 17, docs/rollouts.md) on real processes:
// ai trained on generated history where one kiosk sells nothing at 10:00-13:00 UTC, and a
// fleet that asks ai's GetForecast as itself (its service credential). A rollout with the
// AUTO policy plans that kiosk's window at those hours in its own time zone (Asia/Tokyo:
// 19:00-22:00), a kiosk of its group ai has no history for takes the group's profile in its own
// zone (UTC: 10:00-13:00), an ungrouped one gets the 02:00-05:00 fallback, and the rollout
// says how many did; with ai stopped, every kiosk gets the fallback and the rollout says why.
// Ticketed events (catalog, read by fleet as itself): two kiosks whose quietest forecast hours
// are now, one beside a ticketed event's venue and one 250 km away: the far one installs, the
// near one is kept from installing during the event's hours (the rollout goes on without it)
// and installs once the event no longer has a place nearby.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ModelService } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { EventService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { UpdateStatus_State } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { KioskClient } from "@adminkiosk/kiosk-sdk";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { ReleaseKind, ReleaseService } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { RolloutService, WindowPolicy } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { createDatabase, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { clientFor } from "../../../test/support/auth.js";
import { putArtifact } from "../../../test/support/fleet.js";
import { dayMs, dayOf, generateSales } from "../../ai/src/generator.js";
import { sales } from "../../ai/src/store.js";
import { startAi, type AiFixture } from "../../ai/test/fixture.js";

const quiet = "aw-quiet";
const other = "aw-other";
const unknown = "aw-nohistory";
// No history at ai either, but in the quiet kiosk's group: it takes the group's profile.
const sibling = "aw-sibling";
const sku = "SNK-WATER-05";
const quietUtc = [10, 11, 12];
// Kiosks quiet from the hour before now for 3 hours (their AUTO window holds now), near and far from an event.
const near = "aw-event-near";
const far = "aw-event-far";
const nowHour = new Date().getUTCHours();
const quietNow = [0, 1, 2].map((d) => (nowHour + 23 + d) % 24);
const venue = { latitude: 50.0875, longitude: 14.4213 };

let ai: AiFixture;
let fleet: StartedService;
let link: StartedService;
const kioskClients: KioskClient[] = [];
let stateDir: string;
let releaseId = "";

const rollouts = () => clientFor(RolloutService, fleet.url, ai.tokens.admin);
const request = () => ({ releaseId, target: { tags: ["auto-window"] }, windowPolicy: WindowPolicy.AUTO });

beforeAll(async () => {
  stateDir = mkdtempSync(join(os.tmpdir(), "rollouts-windows-"));
  ai = await startAi({}, { withCatalog: true });
  const { sales: generated } = generateSales({ seed: 5, kiosks: [quiet, other, near, far], days: 42, endDay: dayOf(Math.floor(Date.now() / dayMs) - 1) });
  // The quiet kiosk sells every day's units evenly over the hours outside 10:00-13:00 UTC (near and far: outside the hours around now).
  for (const s of generated) {
    if (s.kioskId === other) continue;
    const closed = s.kioskId === quiet ? quietUtc : quietNow;
    const open = Array.from({ length: 24 }, (_, h) => h).filter((h) => !closed.includes(h));
    s.hourly = new Array<number>(24).fill(0);
    for (let i = 0; i < s.quantity; i++) s.hourly[open[i % open.length]!]! += 1;
  }
  await sales.insertGenerated(ai.pool, generated);
  expect((await ai.as(ModelService, ai.tokens.admin).retrain({})).promoted).toBe(true);

  const { privateKey } = generateKeyPairSync("ed25519");
  fleet = await startTestService("fleet", {
    DATABASE_URL: await createDatabase(inject("infra").databaseUrl, "fleet"),
    REDIS_URL: ai.auth.redisUrl,
    NATS_URL: inject("infra").natsUrl,
    AUTH_JWKS_URL: `${ai.auth.service.url}/.well-known/jwks.json`,
    ...ai.auth.serviceEnv("fleet"),
    AI_URL: ai.ai.url,
    CATALOG_URL: ai.catalog!.url,
    ROLLOUT_EVENTS_REFRESH_MS: "300",
    ROLLOUT_TICK_MS: "200",
    ROLLOUT_AUTO_SKU: sku,
    LINK_EVENTS_CONSUMER: `fleet-windows-${process.pid}`,
    LINK_EVENTS_SINCE_START: "true",
    FLEET_RELEASE_SIGNING_KEY: JSON.stringify(privateKey.export({ format: "jwk" })),
    FLEET_ARTIFACT_DIR: join(stateDir, "artifacts"),
    SHUTDOWN_GRACE_MS: "3000",
  });
  const kiosks = clientFor(KioskService, fleet.url, ai.tokens.admin);
  await waitFor("fleet to verify tokens", async () => (await kiosks.listKiosks({}), true), { timeout: 60_000, interval: 300, retry: (e) => ConnectError.from(e).code === Code.Unavailable });
  for (const [kioskId, timezone, groupId] of [[quiet, "Asia/Tokyo", "aw-group"], [sibling, "UTC", "aw-group"], [unknown, "UTC", ""]] as const) {
    await kiosks.createKiosk({ kiosk: { kioskId, name: kioskId, groupId, tags: ["auto-window"] } });
    await kiosks.updateKiosk({ kioskId, timezone });
  }
  const sha256 = await putArtifact(fleet.url, ai.tokens.admin, randomBytes(1024));
  releaseId = (await clientFor(ReleaseService, fleet.url, ai.tokens.admin).createRelease({ kind: ReleaseKind.APP, version: "9.0.0", artifactSha256: sha256 })).release!.releaseId;
}, 240_000);

afterAll(async () => {
  await Promise.all(kioskClients.map((c) => c.stop()));
  await link?.stop();
  await fleet?.stop();
  await ai?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("AUTO rollout windows", () => {
  it("plans a kiosk's window at its quietest forecast hours in its own time zone; a kiosk ai cannot answer for gets the fallback, counted", async () => {
    const preview = await rollouts().previewRollout({ rollout: request() });
    const byId = new Map(preview.sample.map((s) => [s.kioskId, s]));
    // 10:00-13:00 UTC is 19:00-22:00 in Tokyo (UTC+9, no daylight saving time).
    expect([byId.get(quiet)?.windowStartHour, byId.get(quiet)?.windowEndHour]).toEqual([19, 22]);
    expect([byId.get(sibling)?.windowStartHour, byId.get(sibling)?.windowEndHour]).toEqual([10, 13]);
    expect([byId.get(unknown)?.windowStartHour, byId.get(unknown)?.windowEndHour]).toEqual([2, 5]);
    expect(preview.windowNote).toMatch(/1 from its own forecast, 1 from its group's, 1 use the default 02:00-05:00; ai could not answer for 2 \(NotFound 2\)/);

    const { rollout } = await rollouts().createRollout(request());
    const got = (await rollouts().getRollout({ rolloutId: rollout!.rolloutId })).rollout!;
    expect(got.windowNote).toBe(preview.windowNote);
    await rollouts().cancelRollout({ rolloutId: got.rolloutId });
  });

  it("keeps a kiosk near a ticketed event from installing during the event's hours, even in its quietest hours; a kiosk far away installs", async () => {
    // A ticketed event beside the near kiosk, starting in an hour (its blackout: 3 hours before to 5 after).
    const events = clientFor(EventService, ai.catalog!.url, ai.tokens.admin);
    const { event } = await events.createEvent({
      event: {
        name: "Stadium concert",
        venue: "Stadium",
        ...{ venueLatitude: venue.latitude, venueLongitude: venue.longitude },
        startTime: { seconds: BigInt(Math.floor(Date.now() / 1000) + 3_600), nanos: 0 },
        active: true,
        priceTiers: [{ tierId: "std", name: "Standard", priceMinor: 3000n, currency: "EUR" }],
        sections: [{ sectionId: "A", name: "Stalls", rows: [{ rowId: "1", seats: [{ number: "1", tierId: "std" }] }] }],
      },
    });
    const kiosks = clientFor(KioskService, fleet.url, ai.tokens.admin);
    // The near kiosk 300 m from the venue, the far one in Vienna (about 250 km).
    for (const [kioskId, location] of [[near, { latitude: 50.0902, longitude: 14.4201 }], [far, { latitude: 48.2082, longitude: 16.3738 }]] as const) {
      await kiosks.createKiosk({ kiosk: { kioskId, name: kioskId, tags: ["event-window"], location } });
    }
    link = await startTestService("link", {
      REDIS_URL: ai.auth.redisUrl,
      NATS_URL: inject("infra").natsUrl,
      AUTH_JWKS_URL: `${ai.auth.service.url}/.well-known/jwks.json`,
      LINK_REPLICA_ID: `windows-link-${process.pid}`,
      SHUTDOWN_GRACE_MS: "3000",
    });
    // Each kiosk takes its install and reports it installed.
    for (const kioskId of [near, far]) {
      const client = new KioskClient({ linkAddress: [link.url], credential: await ai.device(kioskId), firmwareVersion: "1.0.0", appVersion: "1.0.0", backoff: { initialMs: 100, maxMs: 1_000 } });
      client.onCommand("installRelease", (a) => {
        client.reportUpdate({ releaseId: a.releaseId, state: UpdateStatus_State.INSTALLED, version: "9.0.0", fromVersion: "1.0.0" });
      });
      client.start();
      kioskClients.push(client);
    }
    await waitFor("both kiosks online", async () => ((await kiosks.listKiosks({ tag: "event-window", status: KioskStatus.ONLINE })).kiosks.length === 2 ? true : undefined), { timeout: 30_000 });

    const req = { releaseId, target: { tags: ["event-window"] }, windowPolicy: WindowPolicy.AUTO, waves: [{ percent: 100, bake: durationFromMs(0) }], gate: { maxWait: durationFromMs(0) } };
    // Both kiosks' quietest forecast hours hold now: only the event stands in the near one's way.
    const preview = await rollouts().previewRollout({ rollout: req });
    for (const k of preview.sample) expect([k.kioskId, k.windowStartHour, k.inWindowNow]).toEqual([k.kioskId, quietNow[0], true]);
    await waitFor("fleet read catalog's events", async () => ((await rollouts().previewRollout({ rollout: req })).blockedByEvents === 1 ? true : undefined));

    const id = (await rollouts().createRollout(req)).rollout!.rolloutId;
    // The wave finishes with the far kiosk alone (the near one is not sendable), its gate passes, and the near one still waits.
    const passed = await waitFor("the far kiosk installed and the wave passed", async () => {
      const r = (await rollouts().getRollout({ rolloutId: id })).rollout!;
      return r.currentWave === 1 ? r : undefined;
    });
    const wave = passed.waveStatus[0]!;
    expect([wave.installed, wave.installing, wave.blockedByEvents]).toEqual([1, 0, 1]);
    expect(passed.eventNote).toMatch(/^ticketed events read at .* \(\d+ upcoming\)$/);
    const { updates } = await clientFor(ReleaseService, fleet.url, ai.tokens.admin).listKioskUpdates({ rolloutId: id });
    expect(updates.map((u) => u.kioskId)).toEqual([far]);

    // The event loses its place nearby: the near kiosk installs too and the rollout completes.
    await events.updateEvent({ eventId: event!.eventId, clearVenueLocation: true });
    await waitFor("the near kiosk installed", async () => {
      const r = (await rollouts().getRollout({ rolloutId: id })).rollout!;
      return r.waveStatus[0]!.installed === 2 ? true : undefined;
    });

    // catalog down: the last read is kept, and the note says the reads fail.
    await ai.catalog!.stop();
    await waitFor("the failed read noted", async () => ((await rollouts().getRollout({ rolloutId: id })).rollout!.eventNote.includes("the last read failed") ? true : undefined));
  }, 120_000);

  it("with ai stopped, every kiosk gets the fallback and the rollout says why", async () => {
    await ai.ai.stop();
    const preview = await rollouts().previewRollout({ rollout: request() });
    for (const s of preview.sample) expect([s.kioskId, s.windowStartHour, s.windowEndHour]).toEqual([s.kioskId, 2, 5]);
    expect(preview.windowNote).toMatch(/^AUTO: 3 kiosks use the default window 02:00-05:00 in their time zone \(ai could not answer: Unavailable 3\)/);
    const { rollout } = await rollouts().createRollout(request());
    expect((await rollouts().getRollout({ rolloutId: rollout!.rolloutId })).rollout!.windowNote).toBe(preview.windowNote);
  });
});

// AUTO maintenance windows from ai's forecast (issue 17, docs/rollouts.md) on real processes:
// ai trained on generated history where one kiosk sells nothing at 10:00-13:00 UTC, and a
// fleet that asks ai's GetForecast as itself (its service credential). A rollout with the
// AUTO policy plans that kiosk's window at those hours in its own time zone (Asia/Tokyo:
// 19:00-22:00), a kiosk of its group ai has no history for takes the group's profile in its own
// zone (UTC: 10:00-13:00), an ungrouped one gets the 02:00-05:00 fallback, and the rollout
// says how many did; with ai stopped, every kiosk gets the fallback and the rollout says why.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ModelService } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
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

let ai: AiFixture;
let fleet: StartedService;
let stateDir: string;
let releaseId = "";

const rollouts = () => clientFor(RolloutService, fleet.url, ai.tokens.admin);
const request = () => ({ releaseId, target: { tags: ["auto-window"] }, windowPolicy: WindowPolicy.AUTO });

beforeAll(async () => {
  stateDir = mkdtempSync(join(os.tmpdir(), "rollouts-windows-"));
  ai = await startAi();
  const { sales: generated } = generateSales({ seed: 5, kiosks: [quiet, other], days: 42, endDay: dayOf(Math.floor(Date.now() / dayMs) - 1) });
  // The quiet kiosk sells every day's units evenly over the hours outside 10:00-13:00 UTC.
  for (const s of generated) {
    if (s.kioskId !== quiet) continue;
    const open = Array.from({ length: 24 }, (_, h) => h).filter((h) => !quietUtc.includes(h));
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
  const res = await putArtifact(fleet.url, ai.tokens.admin, randomBytes(1024));
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  const { sha256 } = (await res.json()) as { sha256: string };
  releaseId = (await clientFor(ReleaseService, fleet.url, ai.tokens.admin).createRelease({ kind: ReleaseKind.APP, version: "9.0.0", artifactSha256: sha256 })).release!.releaseId;
}, 240_000);

afterAll(async () => {
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

  it("with ai stopped, every kiosk gets the fallback and the rollout says why", async () => {
    await ai.ai.stop();
    const preview = await rollouts().previewRollout({ rollout: request() });
    for (const s of preview.sample) expect([s.kioskId, s.windowStartHour, s.windowEndHour]).toEqual([s.kioskId, 2, 5]);
    expect(preview.windowNote).toMatch(/^AUTO: 3 kiosks use the default window 02:00-05:00 in their time zone \(ai could not answer: Unavailable 3\)/);
    const { rollout } = await rollouts().createRollout(request());
    expect((await rollouts().getRollout({ rolloutId: rollout!.rolloutId })).rollout!.windowNote).toBe(preview.windowNote);
  });
});

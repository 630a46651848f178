// Which rollout a kiosk's UpdateStatus counts for (docs/rollouts.md) on real processes (auth,
// fleet, link, a kiosk on the SDK): fleet's own assignment — the rollout that sent the kiosk
// the release — not the rollout_id the kiosk names. A kiosk (a stolen credential) naming
// another rollout changes nothing in that rollout; the report counts for the rollout that sent
// it its install, and the false claim is logged and counted.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReleaseKind, ReleaseService } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { RolloutService, WindowPolicy } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { UpdateStatus_State } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { waitFor } from "@adminkiosk/devstack";
import type { KioskClient } from "@adminkiosk/kiosk-sdk";
import { putArtifact, startFleet, type FleetFixture } from "../../../test/support/fleet.js";

let fx: FleetFixture;
let stateDir: string;
let releaseId = "";
let kiosk: KioskClient;
// The kiosk takes its install and keeps it running (a kiosk without a handler would answer
// UNSUPPORTED, which fails the target by the command's end, not by a report).
let finishInstall = () => {};

const rollouts = () => fx.fleetClient(RolloutService);
const claimMetric = async () => {
  const text = await (await fetch(`${fx.fleet.url}/metrics`)).text();
  return Number(/fleet_link_events_rejected_total\{reason="rollout claim",service="fleet"\} (\d+)/.exec(text)?.[1] ?? 0);
};

beforeAll(async () => {
  stateDir = mkdtempSync(join(os.tmpdir(), "rollouts-attribution-"));
  const { privateKey } = generateKeyPairSync("ed25519");
  fx = await startFleet({
    name: "rollouts-attribution",
    fleetEnv: { ROLLOUT_TICK_MS: "200", FLEET_RELEASE_SIGNING_KEY: JSON.stringify(privateKey.export({ format: "jwk" })), FLEET_ARTIFACT_DIR: join(stateDir, "artifacts") },
  });
  const a = await fx.enroll(["attr-a"], { tags: ["attr-a"] });
  await fx.enroll(["attr-b"], { tags: ["attr-b"] });
  const sha256 = await putArtifact(fx.fleet.url, fx.admin, randomBytes(1024));
  releaseId = (await fx.fleetClient(ReleaseService).createRelease({ kind: ReleaseKind.APP, version: "3.0.0", artifactSha256: sha256 })).release!.releaseId;
  kiosk = fx.kiosk(a.get("attr-a")!);
  kiosk.onCommand("installRelease", () => new Promise<void>((resolve) => (finishInstall = resolve)));
  kiosk.start();
}, 120_000);

afterAll(async () => {
  finishInstall();
  await fx?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("update status attribution", () => {
  it("counts a report for the rollout fleet sent the kiosk, not the one the kiosk names", async () => {
    const one = { releaseId, windowPolicy: WindowPolicy.ANY, waves: [{ percent: 100, bake: durationFromMs(3_600_000) }] };
    const sent = (await rollouts().createRollout({ ...one, target: { tags: ["attr-a"] } })).rollout!.rolloutId;
    const other = (await rollouts().createRollout({ ...one, target: { tags: ["attr-b"] } })).rollout!.rolloutId;
    await waitFor("attr-a sent its install", async () => ((await rollouts().getRollout({ rolloutId: sent })).rollout!.waveStatus[0]!.installing === 1 ? true : undefined), {
      timeout: 30_000,
    });
    const claimsBefore = await claimMetric();

    // The kiosk reports a failed install, naming the other rollout.
    kiosk.reportUpdate({ releaseId, rolloutId: other, state: UpdateStatus_State.FAILED, version: "3.0.0", fromVersion: "1.0.0", errorMessage: "claimed for another rollout" });

    // It counts for the rollout that sent it the install…
    const got = await waitFor("the failure counted for the sending rollout", async () => {
      const r = (await rollouts().getRollout({ rolloutId: sent })).rollout!;
      return r.waveStatus[0]!.failed === 1 ? r : undefined;
    });
    expect(got.waveStatus[0]!.installing).toBe(0);
    const mine = await fx.fleetClient(ReleaseService).listKioskUpdates({ rolloutId: sent });
    expect(mine.updates.map((u) => [u.kioskId, u.rolloutId])).toEqual([["attr-a", sent]]);
    // …and nothing in the rollout it named: no report listed, no target moved.
    const named = await fx.fleetClient(ReleaseService).listKioskUpdates({ rolloutId: other });
    expect(named.updates).toEqual([]);
    expect(named.stateCounts).toEqual({});
    const o = (await rollouts().getRollout({ rolloutId: other })).rollout!;
    expect(o.waveStatus[0]!.failed + o.waveStatus[0]!.installed + o.waveStatus[0]!.installing).toBe(0);
    // The false claim is counted and logged.
    expect(await claimMetric()).toBe(claimsBefore + 1);
    expect(fx.fleet.output.some((l) => l.includes("named another rollout") && l.includes(other))).toBe(true);
  }, 60_000);
});

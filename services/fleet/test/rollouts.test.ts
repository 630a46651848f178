// Rollouts on real processes (auth, fleet, link) and 201 simulated kiosks running the kiosk
// SDK's updater (download, verify, install, report, revert): a release reaches 200 kiosks in
// waves, each inside its own maintenance window, while a kiosk outside its window waits; a
// version that crashes at boot is stopped at the canary and rolled back by itself. The
// business gate (a version that sells 30 % less) is in rollouts-sales.test.ts.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import pg from "pg";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { AuditService } from "@adminkiosk/proto/adminkiosk/fleet/v1/audit_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { ReleaseKind, ReleaseService } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { RolloutService, RolloutState, WindowPolicy, type Rollout } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { closeNats, connectNats, createLogger } from "@adminkiosk/runtime";
import { waitFor } from "@adminkiosk/devstack";
import { startSimulator, type Simulator } from "@adminkiosk/kiosk-sdk/simulator";
import { Code } from "@connectrpc/connect";
import { failure, Role } from "../../../test/support/auth.js";
import { putArtifact, startFleet, type FleetFixture } from "../../../test/support/fleet.js";

const inside = 200;
// Time zones the 200 are spread over, and candidates for the one kiosk kept outside its window.
const zones = ["UTC", "Europe/Prague", "America/New_York", "Asia/Tokyo"];
const outsideCandidates = ["Pacific/Honolulu", "Asia/Dubai", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Auckland"];

const hourIn = (zone: string, at = new Date()) => Number(new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", hourCycle: "h23" }).format(at)) % 24;

/**
 * A zone whose local hour now and in the next hour is neither that of any of `zones` nor next
 * to one: the window [o + 2, o) (22 hours, wrapping) then holds every kiosk of `zones` for the
 * next hour and leaves the outside kiosk out for as long, whatever hour the test starts in.
 */
function pickWindow(): { zone: string; start: number; end: number } {
  const taken = new Set(zones.flatMap((z) => [-1, 0, 1].map((d) => (hourIn(z) + d + 24) % 24)));
  for (const zone of outsideCandidates) {
    const o = hourIn(zone);
    if (!taken.has(o) && !taken.has((o + 1) % 24)) return { zone, start: (o + 2) % 24, end: o };
  }
  throw new Error("no candidate time zone is far enough from the kiosks' zones now");
}

let fx: FleetFixture;
let sim: Simulator;
let stateDir: string;
let db: pg.Pool;
let deviceCredential = "";
const releases = new Map<string, string>();
let firstRollout = "";
const kioskIds = Array.from({ length: inside }, (_, i) => `ro-${String(i + 1).padStart(3, "0")}`);
const outsideKiosk = "ro-outside";
const window = pickWindow();

async function release(version: string): Promise<string> {
  const sha = await putArtifact(fx.fleet.url, fx.admin, randomBytes(64 * 1024));
  const { release } = await fx.fleetClient(ReleaseService).createRelease({ kind: ReleaseKind.APP, version, artifactSha256: sha, notes: `test ${version}` });
  releases.set(version, release!.releaseId);
  return release!.releaseId;
}

const rollouts = () => fx.fleetClient(RolloutService);
const get = async (rolloutId: string) => (await rollouts().getRollout({ rolloutId })).rollout!;
const appVersions = async () => {
  const out = new Map<string, string>();
  let pageToken = "";
  do {
    const page = await fx.fleetClient(KioskService).listKiosks({ pageSize: 1000, pageToken });
    for (const k of page.kiosks) out.set(k.kioskId, k.appVersion);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return out;
};

beforeAll(async () => {
  stateDir = mkdtempSync(join(os.tmpdir(), "rollouts-test-"));
  const { privateKey } = generateKeyPairSync("ed25519");
  fx = await startFleet({
    name: "rollouts",
    fleetEnv: {
      ROLLOUT_TICK_MS: "200",
      FLEET_RELEASE_SIGNING_KEY: JSON.stringify(privateKey.export({ format: "jwk" })),
      FLEET_ARTIFACT_DIR: join(stateDir, "artifacts"),
    },
  });
  db = new pg.Pool({ connectionString: fx.fleetDatabaseUrl, max: 2, options: "-c search_path=fleet" });
  const credentials = await fx.enroll([...kioskIds, outsideKiosk], { tags: ["rollout-test"] });
  deviceCredential = credentials.get(kioskIds[0]!)!;
  const kiosks = fx.fleetClient(KioskService);
  // 20 at a time: 200 at once waited past fleet's pool timeout on a loaded box (Unavailable).
  for (let i = 0; i < kioskIds.length; i += 20) {
    await Promise.all(kioskIds.slice(i, i + 20).map((kioskId, j) => kiosks.updateKiosk({ kioskId, timezone: zones[(i + j) % zones.length] })));
  }
  await kiosks.updateKiosk({ kioskId: outsideKiosk, timezone: window.zone });
  for (const v of ["1.0.0", "2.0.0", "2.1.0"]) await release(v);
  sim = startSimulator({
    linkUrl: fx.links[0]!.url,
    kiosks: [...credentials].map(([kioskId, deviceCredential]) => ({ kioskId, deviceCredential })),
    telemetryIntervalMs: 5_000,
    flappingShare: 0,
    backoff: { initialMs: 100, maxMs: 1_000 },
    appVersion: "1.0.0",
    updates: { apiBaseUrl: fx.fleet.url, stateDir: join(stateDir, "kiosks") },
    badVersions: { "2.1.0": "crash" },
  });
  // Every kiosk online before a rollout starts (installs go to connected kiosks).
  await waitFor("201 kiosks online", async () => ((await kiosks.getFleetSummary({})).summary?.online ?? 0) >= inside + 1 || undefined, { timeout: 120_000 });
}, 300_000);

afterAll(async () => {
  await sim?.stop();
  await db?.end();
  await fx?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("rollouts", () => {
  it("takes a release to 200 kiosks in waves, each inside its window in its own time zone; a kiosk outside its window waits", async () => {
    const nc = await connectNats(inject("infra").natsUrl, "rollouts-test", createLogger("rollouts-test", "silent"));
    const events: string[] = [];
    const sub = nc.subscribe("fleet.rollout.>", { callback: (_e, m) => void events.push(m.subject) });
    try {
      const { rollout } = await rollouts().createRollout({
        releaseId: releases.get("2.0.0")!,
        target: { tags: ["rollout-test"] },
        waves: [1, 10, 50, 100].map((percent) => ({ percent, bake: durationFromMs(500) })),
        maxConcurrent: 60,
        windowPolicy: WindowPolicy.EXPLICIT,
        windowStartHour: window.start,
        windowEndHour: window.end,
        gate: { maxWait: durationFromMs(500) },
        description: "2.0.0 everywhere",
      });
      const id = rollout!.rolloutId;
      firstRollout = id;
      expect(rollout!.total).toBe(inside + 1);
      // The canary is at least one kiosk, spread by the hash; the waves hold 1 %, 10 %, 50 %, 100 %.
      expect(rollout!.waveStatus.map((w) => w.kiosks)).toEqual([2, 18, 81, 100]);

      // All 200 inside their windows get it; the rollout then waits for the one outside.
      const done = await waitFor(
        "the 200 kiosks inside their windows installed, every wave passed",
        async () => {
          const r = await get(id);
          return r.waveStatus.reduce((a, w) => a + w.installed, 0) === inside && r.currentWave === 4 ? r : undefined;
        },
        { timeout: 240_000 },
      );
      expect(done.state).toBe(RolloutState.RUNNING);
      expect(done.waveStatus.map((w) => w.state)).toEqual(["gate_passed", "gate_passed", "gate_passed", "gate_passed"]);
      expect(done.waveStatus.reduce((a, w) => a + w.waitingForWindow, 0)).toBe(1);
      expect(done.waveStatus.reduce((a, w) => a + w.failed + w.reverted, 0)).toBe(0);
      // Waves one after another: each started after the previous one's gate passed.
      for (let i = 1; i < 4; i++) expect(Number(done.waveStatus[i]!.startTime!.seconds)).toBeGreaterThanOrEqual(Number(done.waveStatus[i - 1]!.gateTime!.seconds));

      // Every kiosk reports the new version, but the one outside its window.
      await waitFor("the 200 report 2.0.0", async () => {
        const v = await appVersions();
        return kioskIds.every((k) => v.get(k) === "2.0.0") || undefined;
      });
      expect((await appVersions()).get(outsideKiosk)).toBe("1.0.0");
      // Each install was sent inside the kiosk's window, in the kiosk's own time zone.
      const { rows } = await db.query<{ kiosk_id: string; timezone: string; sent_at: Date }>("SELECT kiosk_id, timezone, sent_at FROM rollout_targets WHERE rollout_id = $1 AND state = 'installed'", [id]);
      expect(rows).toHaveLength(inside);
      for (const r of rows) {
        const h = hourIn(r.timezone, r.sent_at);
        expect(h >= window.start || h < window.end, `${r.kiosk_id} at ${h}:00 ${r.timezone}`).toBe(true);
      }

      const { rollout: canceled } = await rollouts().cancelRollout({ rolloutId: id });
      expect(canceled!.state).toBe(RolloutState.CANCELED);
      await waitFor("the rollout's events", () => (events.filter((s) => s.startsWith(`fleet.rollout.${id}.`)).length >= 10 ? true : undefined));
      const kinds = events.filter((s) => s.startsWith(`fleet.rollout.${id}.`)).map((s) => s.split(".").at(-1));
      expect(kinds.filter((k) => k === "wave_started")).toHaveLength(4);
      expect(kinds.filter((k) => k === "gate_passed")).toHaveLength(4);
      expect(kinds).toContain("created");
      expect(kinds).toContain("canceled");
      const audit = await fx.fleetClient(AuditService).listAuditEvents({ subject: id, pageSize: 50 });
      expect(audit.events.map((e) => e.type)).toEqual(expect.arrayContaining(["rollout.created", "rollout.gate_passed", "rollout.canceled"]));
    } finally {
      sub.unsubscribe();
      await closeNats(Promise.resolve(nc));
    }
  }, 300_000);

  it("stops a version that crashes at the canary and rolls it back by itself", async () => {
    const { rollout } = await rollouts().createRollout({
      releaseId: releases.get("2.1.0")!,
      target: { tags: ["rollout-test"], currentVersion: "2.0.0" },
      waves: [1, 10, 50, 100].map((percent) => ({ percent, bake: durationFromMs(2_000) })),
      maxConcurrent: 60,
      windowPolicy: WindowPolicy.ANY,
      autoRollback: true,
      description: "2.1.0 (crashes)",
    });
    const id = rollout!.rolloutId;
    expect(rollout!.total).toBe(inside);
    const stopped = await waitFor("the rollout rolled back", async () => {
      const r = await get(id);
      return r.state === RolloutState.ROLLED_BACK ? r : undefined;
    });
    const canary = stopped.waveStatus[0]!;
    expect(canary.state).toBe("gate_failed");
    expect(canary.reverted).toBeGreaterThanOrEqual(1);
    // Nothing beyond the canary was sent.
    for (const w of stopped.waveStatus.slice(1)) expect(w.installed + w.installing + w.failed + w.reverted).toBe(0);
    expect(stopped.stopReason).toMatch(/^gate failed at wave 1 \(canary\): install_failure_share \(device\): updated 1\.000? /);
    expect(stopped.stopReason).toMatch(/must be <= 0\.200/);
    const metric = canary.gateMetrics.find((m) => m.name === "install_failure_share")!;
    expect(metric.passed).toBe(false);
    expect(stopped.rollbackRolloutId).not.toBe("");
    // The rollback finishes (the canary reverted by itself: nothing is left on 2.1.0) and every kiosk runs 2.0.0.
    const back: Rollout = await waitFor("the rollback completed", async () => {
      const r = await get(stopped.rollbackRolloutId);
      return r.state === RolloutState.COMPLETED ? r : undefined;
    });
    expect(back.rollbackOf).toBe(id);
    await waitFor("every kiosk back on 2.0.0", async () => {
      const v = await appVersions();
      return kioskIds.every((k) => v.get(k) === "2.0.0") || undefined;
    });
  }, 300_000);

  it("refuses bad input naming the field; viewers read rollouts but do not change them, kiosks neither", async () => {
    const base = { releaseId: releases.get("2.0.0")!, target: { tags: ["rollout-test"] }, windowPolicy: WindowPolicy.ANY };
    const refused = async (req: Parameters<ReturnType<typeof rollouts>["createRollout"]>[0], code: Code, text: string) => {
      const err = await failure(rollouts().createRollout(req));
      expect(err.code, err.message).toBe(code);
      expect(err.message).toContain(text);
    };
    await refused({ ...base, waves: [{ percent: 50 }, { percent: 40 }] }, Code.InvalidArgument, "waves[1].percent");
    await refused({ ...base, waves: [{ percent: 10 }, { percent: 90 }] }, Code.InvalidArgument, "waves[1].percent");
    await refused({ ...base, target: {} }, Code.InvalidArgument, "target");
    await refused({ ...base, target: { query: "group = " } }, Code.InvalidArgument, "target.query");
    await refused({ ...base, windowPolicy: WindowPolicy.EXPLICIT, windowStartHour: 25 }, Code.InvalidArgument, "window_start_hour");
    await refused({ ...base, maxConcurrent: -1 }, Code.InvalidArgument, "max_concurrent");
    await refused({ ...base, gate: { minSalesRatio: 2 } }, Code.InvalidArgument, "gate.min_sales_ratio");
    await refused({ ...base, releaseId: "00000000-0000-4000-8000-000000000000" }, Code.NotFound, "release");
    await refused({ ...base, target: { groupId: "no-such-group" } }, Code.FailedPrecondition, "matches no kiosk");
    // Nothing half-written: none of those left a rollout behind.
    const before = (await rollouts().listRollouts({ pageSize: 200 })).rollouts.length;
    const viewer = (await fx.auth.userWithRole(Role.VIEWER)).accessToken;
    const asViewer = fx.fleetClient(RolloutService, viewer);
    expect((await asViewer.listRollouts({ pageSize: 200 })).rollouts).toHaveLength(before);
    expect((await failure(asViewer.createRollout(base))).code).toBe(Code.PermissionDenied);
    const any = (await asViewer.listRollouts({ pageSize: 1 })).rollouts[0]!;
    expect((await failure(asViewer.pauseRollout({ rolloutId: any.rolloutId }))).code).toBe(Code.PermissionDenied);
    expect((await failure(fx.fleetClient(RolloutService, deviceCredential).listRollouts({}))).code).toBe(Code.PermissionDenied);
    // A finished rollout cannot be paused.
    const err = await failure(rollouts().pauseRollout({ rolloutId: any.rolloutId }));
    expect(err.code).toBe(Code.FailedPrecondition);
  });

  it("rolls a finished rollout back: every kiosk it updated goes back to the version it ran before", async () => {
    // The first rollout (canceled with 200 kiosks on 2.0.0); the crash rollout since left them on 2.0.0.
    const { rollout } = await rollouts().rollbackRollout({ rolloutId: firstRollout });
    expect(rollout!.state).toBe(RolloutState.ROLLED_BACK);
    expect(rollout!.stopReason).toContain("rolled back (by ");
    const back = await waitFor("the rollback completed", async () => {
      const r = await get(rollout!.rollbackRolloutId);
      return r.state === RolloutState.COMPLETED ? r : undefined;
    }, { timeout: 120_000 });
    expect(back.total).toBe(inside);
    expect(back.rollbackOf).toBe(firstRollout);
    await waitFor("every kiosk back on 1.0.0", async () => {
      const v = await appVersions();
      return kioskIds.every((k) => v.get(k) === "1.0.0") || undefined;
    });
    // A rollback is not rolled back.
    expect((await failure(rollouts().rollbackRollout({ rolloutId: back.rolloutId }))).code).toBe(Code.FailedPrecondition);
  }, 300_000);
});

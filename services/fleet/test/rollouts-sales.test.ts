// The business gate on real processes: auth, catalog, payments with its provider simulator,
// orders, fleet (its sales projection reads orders' events) and link; 40 simulated kiosks run
// the SDK's updater and sell through orders at a high speed-up, customers evenly spaced
// (steady), so a cohort's sales in a window are its rate × the window. fleet's per-kiosk counts
// (kiosk_facts) use 1-second buckets, so the gate's windows are seconds long at that speed-up:
// the baseline and the canary's bake are sized to hold 1.5 × min_samples of the canary's sales. A version that "works"
// — installs, boots, reports fine — but makes a kiosk sell exactly 30 % less is stopped at
// the canary by sales_per_kiosk_hour while the control cohort sells as before, and rolled back.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it, inject } from "vitest";
import pg from "pg";
import { durationFromMs, timestampDate } from "@bufbuild/protobuf/wkt";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { ReleaseKind, ReleaseService } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { RolloutService, RolloutState, WindowPolicy } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { createDatabase, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { startSimulator, type Simulator } from "@adminkiosk/kiosk-sdk/simulator";
import { startSelling, type Selling } from "../../../packages/kiosk-sdk/src/selling.js";
import { defaultProducts } from "../../ai/src/generator.js";
import { startSale, type SaleFixture } from "../../orders/test/fixture.js";
import { clientFor } from "../../../test/support/auth.js";
import { putArtifact } from "../../../test/support/fleet.js";

const count = 40;
// Kiosk numbers pick the generator's sites: any 40 do; the gate compares each cohort with its own earlier sales.
const kioskIds = Array.from({ length: count }, (_, i) => `rs-${String(i + 1).padStart(4, "0")}`);
// At ×160 a kiosk sells ~0.15-0.45 a second at 14:00 UTC, the hour the kiosks' demand is pinned
// to (at night most of them sell nothing; a faster clock saturates a loaded box: every kiosk
// then sells at the services' pace, whatever its version). The baseline
// and the bake are sized from the rate measured before the rollout, so the 20 canary kiosks (a
// half-and-half split: the most sales per window for both cohorts) see 1.5 × min_samples in each.
const speedup = 160;
const canaryKiosks = 20;
const minSamples = 50;
let baselineMs = 0;
const t0 = Date.now();
const phase = (name: string) => console.log(`rollouts-sales: ${name} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);

let f: SaleFixture;
let fleet: StartedService;
let link: StartedService;
let sim: Simulator | undefined;
let selling: Selling | undefined;
let db: pg.Pool;
let stateDir: string;
const releases = new Map<string, string>();

beforeAll(async () => {
  stateDir = mkdtempSync(join(os.tmpdir(), "rollouts-sales-"));
  f = await startSale();
  const infra = inject("infra");
  const shared = { REDIS_URL: f.auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${f.auth.service.url}/.well-known/jwks.json`, SHUTDOWN_GRACE_MS: "3000" };
  const { privateKey } = generateKeyPairSync("ed25519");
  const suffix = randomBytes(3).toString("hex");
  const fleetDatabaseUrl = await createDatabase(infra.databaseUrl, "fleet");
  [fleet, link] = await Promise.all([
    startTestService("fleet", {
      ...shared,
      DATABASE_URL: fleetDatabaseUrl,
      AUTH_URL: f.auth.service.url,
      LINK_EVENTS_CONSUMER: `fleet-rs-${suffix}`,
      LINK_EVENTS_SINCE_START: "true",
      ORDERS_EVENTS_CONSUMER: `fleet-rs-orders-${suffix}`,
      PRESENCE_SWEEP_MS: "1000",
      COMMAND_SWEEP_MS: "300",
      ROLLOUT_TICK_MS: "200",
      FLEET_FACTS_BUCKET_SECONDS: "1",
      FLEET_RELEASE_SIGNING_KEY: JSON.stringify(privateKey.export({ format: "jwk" })),
      FLEET_ARTIFACT_DIR: join(stateDir, "artifacts"),
    }),
    startTestService("link", { ...shared, LINK_REPLICA_ID: `rs-link-${suffix}` }),
  ]);
  db = new pg.Pool({ connectionString: fleetDatabaseUrl, max: 2, options: "-c search_path=fleet" });
  const admin = f.tokens.admin;
  const kiosks = clientFor(KioskService, fleet.url, admin);
  for (const kioskId of kioskIds) await kiosks.createKiosk({ kiosk: { kioskId, name: `Kiosk ${kioskId}`, tags: ["sales-test"], hardwareModel: "AK-SIM-1" } });
  const credentials = await Promise.all(kioskIds.map(async (kioskId) => ({ kioskId, deviceCredential: await f.device(kioskId) })));
  // The generator's products, plenty of each at every kiosk (nothing sells out during the test).
  const stock = Object.fromEntries(kioskIds.map((k) => [k, 100_000n]));
  for (const p of defaultProducts) await f.product(p.sku, BigInt(p.listPriceMinor), stock);
  for (const version of ["2.0.0", "2.2.0"]) {
    const sha256 = await putArtifact(fleet.url, admin, randomBytes(32 * 1024));
    const { release } = await clientFor(ReleaseService, fleet.url, admin).createRelease({ kind: ReleaseKind.APP, version, artifactSha256: sha256 });
    releases.set(version, release!.releaseId);
  }
  sim = startSimulator({
    linkUrl: link.url,
    kiosks: credentials,
    telemetryIntervalMs: 5_000,
    flappingShare: 0,
    backoff: { initialMs: 100, maxMs: 1_000 },
    appVersion: "2.0.0",
    updates: { apiBaseUrl: fleet.url, stateDir: join(stateDir, "kiosks") },
    badVersions: { "2.2.0": "low-sales" },
  });
  await waitFor("40 kiosks online", async () => ((await kiosks.getFleetSummary({})).summary?.online ?? 0) >= count || undefined, { timeout: 60_000 });
  const running = sim;
  selling = startSelling({
    ordersUrl: f.orders.url,
    catalogUrl: f.catalog.url,
    kiosks: credentials,
    historyStart: new Date(Date.now() - 90 * 86_400_000).toISOString().slice(0, 10),
    speedup,
    concurrency: 8,
    steady: true,
    demandHourUtc: 14,
    rateFactor: (kioskId) => running.salesFactor(kioskId),
  });
  phase("started");
}, 300_000);

afterAll(async () => {
  await selling?.stop();
  await sim?.stop();
  await db?.end();
  await Promise.all([fleet?.stop(), link?.stop()]);
  await f?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

it("stops a version that lowers sales by 30 % at the canary by the business gate, the control selling as before, and rolls it back", async () => {
  // The baseline: the cohorts' own sales before the rollout (fleet's projection of orders' events).
  // Warmed up first (every kiosk selling), then a whole baseline window of steady sales.
  await waitFor("every kiosk selling", async () => {
    const { rows } = await db.query<{ n: number }>("SELECT count(DISTINCT kiosk_id)::int AS n FROM kiosk_sales WHERE kiosk_id = ANY($1)", [kioskIds]);
    return rows[0]!.n === count ? true : undefined;
  }, { timeout: 180_000 });
  phase("every kiosk selling");
  const steadyFrom = Date.now();
  await waitFor("10 s of sales", () => (Date.now() - steadyFrom >= 10_000 ? true : undefined), { timeout: 20_000, interval: 500 });
  const { rows: rate } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM kiosk_sales WHERE kiosk_id = ANY($1) AND completed_at >= $2", [kioskIds, new Date(steadyFrom)]);
  const perKioskPerMs = rate[0]!.n / count / (Date.now() - steadyFrom);
  baselineMs = Math.min(120_000, Math.max(15_000, Math.ceil((1.5 * minSamples) / (canaryKiosks * perKioskPerMs))));
  const bakeMs = baselineMs;
  console.log(`rollouts-sales: ${(perKioskPerMs * 1000).toFixed(3)} sales a second per kiosk: baseline and bake ${baselineMs} ms`);
  await waitFor("a baseline window of sales", () => (Date.now() - steadyFrom >= baselineMs ? true : undefined), { timeout: baselineMs + 10_000, interval: 500 });

  const rollouts = clientFor(RolloutService, fleet.url, f.tokens.admin);
  const { rollout } = await rollouts.createRollout({
    releaseId: releases.get("2.2.0")!,
    target: { tags: ["sales-test"] },
    waves: [
      { percent: 50, bake: durationFromMs(bakeMs) },
      { percent: 100, bake: durationFromMs(1_000) },
    ],
    maxConcurrent: 40,
    windowPolicy: WindowPolicy.ANY,
    gate: { minSalesRatio: 0.85, minSamples, baseline: durationFromMs(baselineMs), maxWait: durationFromMs(60_000) },
    autoRollback: true,
    description: "2.2.0 (sells less)",
  });
  const id = rollout!.rolloutId;
  expect(rollout!.waveStatus.map((w) => w.kiosks)).toEqual([canaryKiosks, count - canaryKiosks]);

  let last: Awaited<ReturnType<typeof rollouts.getRollout>>["rollout"];
  const stopped = await waitFor(
    "the rollout stopped by its gate",
    async () => {
      const r = (last = (await rollouts.getRollout({ rolloutId: id })).rollout!);
      return r.state === RolloutState.ROLLED_BACK || r.state === RolloutState.PAUSED ? r : undefined;
    },
    { timeout: 240_000 },
  ).catch((err: unknown) => {
    // What it did instead: its state and each wave's.
    const waves = last?.waveStatus.map((w) => ({ state: w.state, installed: w.installed, installing: w.installing, pending: w.pending, metrics: w.gateMetrics }));
    console.log(`rollout ${RolloutState[last?.state ?? 0]}: ${last?.stopReason}; waves ${JSON.stringify(waves, (_, v: unknown) => (typeof v === "bigint" ? Number(v) : v))}`);
    throw err;
  });
  phase("stopped");
  expect(stopped.state).toBe(RolloutState.ROLLED_BACK);
  const canary = stopped.waveStatus[0]!;
  expect(canary.state).toBe("gate_failed");
  // The canary installed fine: the version "works".
  expect(canary.installed).toBe(canaryKiosks);
  expect(canary.failed + canary.reverted).toBe(0);
  expect(stopped.waveStatus[1]!.installed + stopped.waveStatus[1]!.installing).toBe(0);
  const sales = canary.gateMetrics.find((m) => m.name === "sales_per_kiosk_hour")!;
  expect(sales.judged).toBe(true);
  expect(sales.passed).toBe(false);
  expect(sales.updated).toBeLessThan(sales.threshold);
  // The device signals are fine: only the business gate stopped it.
  for (const m of canary.gateMetrics.filter((x) => x.signal === "device")) expect(m.passed, m.name).toBe(true);
  // The stop reason names the metric and both values.
  expect(stopped.stopReason).toContain("gate failed at wave 1 (canary): sales_per_kiosk_hour (business): updated ");
  expect(stopped.stopReason).toMatch(/updated [\d.]+ vs control [\d.]+, must be >= [\d.]+/);
  console.log(`stop reason: ${stopped.stopReason}`);

  // The control cohort sold as before the rollout, the canary about 30 % less (per kiosk-hour, against each cohort's own baseline).
  // The canary's kiosks have their rows (wave 0 started); the control's wave never started (no rows: its plan).
  const { rows } = await db.query<{ updated: boolean; before: number; after: number }>(
    `SELECT t.kiosk_id IS NOT NULL AS updated,
            count(*) FILTER (WHERE s.completed_at < $2)::float8 / $3 AS before,
            count(*) FILTER (WHERE s.completed_at >= $4)::float8 / $5 AS after
     FROM kiosk_sales s LEFT JOIN rollout_targets t ON t.kiosk_id = s.kiosk_id AND t.rollout_id = $1 AND (t.state IN ('installed', 'reverted') OR t.wave = 0)
     WHERE s.kiosk_id = ANY($6::text[]) AND s.completed_at >= $2::timestamptz - make_interval(secs => $3)
     GROUP BY 1`,
    [id, timestampDate(stopped.createTime!), baselineMs / 1000, timestampDate(canary.bakeStartTime!), (timestampDate(canary.gateTime!).getTime() - timestampDate(canary.bakeStartTime!).getTime()) / 1000, kioskIds],
  );
  const control = rows.find((r) => !r.updated)!;
  const updated = rows.find((r) => r.updated)!;
  expect(control.after / control.before).toBeGreaterThan(0.85);
  expect(control.after / control.before).toBeLessThan(1.15);
  // The canary's own drop, relative to the control's over the same hours: 0.7 by the knob, seen here with the
  // noise of a loaded box (0.75–0.80 in runs), well apart from the control either way.
  expect(updated.after / updated.before).toBeLessThan((control.after / control.before) * 0.9);

  // Rolled back: the canary kiosks run 2.0.0 again and sell as before.
  const back = await waitFor("the rollback completed", async () => {
    const r = (await rollouts.getRollout({ rolloutId: stopped.rollbackRolloutId })).rollout!;
    return r.state === RolloutState.COMPLETED ? r : undefined;
  }, { timeout: 120_000 });
  expect(back.total).toBe(canaryKiosks);
  await waitFor("every kiosk on 2.0.0", async () => {
    const { kiosks } = await clientFor(KioskService, fleet.url, f.tokens.admin).listKiosks({ pageSize: 100, tag: "sales-test" });
    return kiosks.length === count && kiosks.every((k) => k.appVersion === "2.0.0") ? true : undefined;
  });
  expect(kioskIds.every((k) => sim!.salesFactor(k) === 1)).toBe(true);
  phase("rolled back");
}, 600_000);

// The Rollouts pages end to end in Debian's chromium (issue 17): auth, fleet, link and four
// simulated kiosks running the kiosk SDK's updater, behind devstack's web server. An admin
// previews and starts a rollout from the form and watches it complete live (WatchRollout);
// a rollout of a version that crashes shows why it stopped and that it was rolled back.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { ReleaseKind, ReleaseService } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { RolloutService, WindowPolicy } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { createDatabase, ensureWebBuild, repoRoot, startTestService, startWebServer, waitFor, webDistDir, type StartedService, type WebServer } from "@adminkiosk/devstack";
import { provision, startSimulator, type SimKiosk, type Simulator } from "@adminkiosk/kiosk-sdk/simulator";
import { adminEmail, adminPassword, clientFor, startAuth, type AuthFixture } from "../support/auth.js";
import { launchBrowser, signInAs } from "../support/browser.js";
import { putArtifact } from "../support/fleet.js";

const slow = { timeout: 60_000 };

let auth: AuthFixture;
let fleet: StartedService;
let link: StartedService;
let simulator: Simulator;
let kiosks: SimKiosk[];
let web: WebServer;
let browser: Browser;
const dirs: string[] = [];
const releases = new Map<string, string>();

beforeAll(async () => {
  const infra = inject("infra");
  const built = ensureWebBuild(repoRoot);
  built.catch(() => {}); // awaited below
  auth = await startAuth();
  const shared = { REDIS_URL: auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json` };
  const artifactDir = mkdtempSync(join(tmpdir(), "rollouts-e2e-store-"));
  const stateDir = mkdtempSync(join(tmpdir(), "rollouts-e2e-kiosks-"));
  dirs.push(artifactDir, stateDir);
  [fleet, link] = await Promise.all([
    createDatabase(infra.databaseUrl, "fleet").then((db) =>
      startTestService("fleet", {
        ...shared,
        DATABASE_URL: db,
        AUTH_URL: auth.service.url,
        LINK_EVENTS_CONSUMER: `fleet-rollouts-e2e-${process.pid}`,
        LINK_EVENTS_SINCE_START: "true",
        ROLLOUT_TICK_MS: "200",
        FLEET_RELEASE_SIGNING_KEY: JSON.stringify(generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" })),
        FLEET_ARTIFACT_DIR: artifactDir,
      }),
    ),
    startTestService("link", { ...shared, LINK_REPLICA_ID: "link-rollouts-e2e" }),
  ]);
  kiosks = await provision({ idPrefix: "rollouts", authUrl: auth.service.url, fleetUrl: fleet.url, count: 4, stateFile: join(infra.tmpDir, `rollouts-e2e-sim-${process.pid}.json`), admin: { email: adminEmail, password: adminPassword } });
  simulator = startSimulator({ linkUrl: link.url, kiosks, telemetryIntervalMs: 2_000, flappingShare: 0, updates: { apiBaseUrl: fleet.url, stateDir }, badVersions: { "7.2.0": "crash" } });
  const admin = await auth.adminToken();
  for (const version of ["7.1.0", "7.2.0"]) {
    const sha256 = await putArtifact(fleet.url, admin, randomBytes(16 * 1024));
    const { release } = await clientFor(ReleaseService, fleet.url, admin).createRelease({ kind: ReleaseKind.APP, version, artifactSha256: sha256, notes: `app ${version}` });
    releases.set(version, release!.releaseId);
  }
  const fleetKiosks = clientFor(KioskService, fleet.url, admin);
  await waitFor("four kiosks online", async () => ((await fleetKiosks.getFleetSummary({})).summary?.online ?? 0) >= 4 || undefined, { timeout: 60_000 });
  await built;
  web = await startWebServer({ distDir: webDistDir(repoRoot), upstreams: { auth: auth.service.url, fleet: fleet.url }, port: 0 });
  browser = await launchBrowser();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await web?.close();
  await simulator?.stop();
  await Promise.all([fleet?.stop(), link?.stop()]);
  await auth?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("the Rollouts pages", () => {
  it("previews and starts a rollout, shows its waves live until it completes, and why a crashing version stopped", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
    await page.goto(`${web.url}/`);
    await signInAs(page, adminEmail, adminPassword);

    await page.getByRole("link", { name: "Rollouts" }).click();
    await page.getByRole("heading", { name: "Rollouts", level: 1 }).waitFor();
    await page.getByRole("button", { name: "New rollout" }).click();
    await expect.poll(() => page.getByLabel("Release").locator("option").count(), slow).toBe(3);
    await page.getByLabel("Release").selectOption(releases.get("7.1.0")!);
    await page.getByLabel("Description").fill("App 7.1 to the simulated kiosks");
    await page.getByLabel("Hardware model").fill("AK-SIM-1");
    await page.getByLabel("Waves (cumulative %)").fill("50, 100");
    await page.getByLabel("Bake per wave (minutes)").fill("0");
    await page.getByLabel("Maintenance window").selectOption({ label: "Any time (emergency)" });
    await page.getByRole("button", { name: "Preview" }).click();
    await expect.poll(() => page.getByTestId("rollout-preview").textContent(), slow).toContain("4 kiosks in 2 waves (2 / 2); 4 inside their window now");

    await page.getByRole("button", { name: "Start rollout" }).click();
    await page.waitForURL(/\/rollouts\/[0-9a-f-]{36}$/, slow);
    await page.getByRole("heading", { name: "App 7.1 to the simulated kiosks", level: 1 }).waitFor();
    // Live: the page follows WatchRollout until every kiosk has it.
    await expect.poll(() => page.getByTestId("rollout-state").getAttribute("data-state"), slow).toBe("completed");
    const waves = page.getByTestId("wave-row");
    expect(await waves.count()).toBe(2);
    for (const state of await waves.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-state")))) expect(state).toBe("gate_passed");
    expect(await page.getByTestId("gate-card").count()).toBe(2);

    // A version that crashes: stopped at the canary, the reason on the page, rolled back.
    const { rollout } = await clientFor(RolloutService, fleet.url, await auth.adminToken()).createRollout({
      releaseId: releases.get("7.2.0")!,
      target: { hardwareModel: "AK-SIM-1" },
      waves: [{ percent: 25, bake: durationFromMs(0) }, { percent: 100, bake: durationFromMs(0) }],
      windowPolicy: WindowPolicy.ANY,
      autoRollback: true,
      description: "App 7.2 (crashes)",
    });
    await page.goto(`${web.url}/rollouts/${rollout!.rolloutId}`);
    await expect.poll(() => page.getByTestId("rollout-state").getAttribute("data-state"), slow).toBe("rolled-back");
    await expect.poll(() => page.getByTestId("rollout-stop-reason").textContent(), slow).toContain("gate failed at wave 1 (canary): install_failure_share");
    await expect.poll(() => page.getByTestId("gate-metric").first().getAttribute("data-verdict"), slow).toBe("failed");
    await page.close();
  });
});

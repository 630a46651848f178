// The Releases page end to end in Debian's chromium (issue 17): auth, fleet (signing key,
// artifact directory), link and two simulated kiosks running the kiosk SDK's updater, behind
// devstack's web server (which forwards /v1/artifacts to fleet). An admin uploads an artifact
// (the progress bar ends at its size and the page shows its SHA-256), creates a release, opens
// it, and watches both kiosks install it after SendCommand(InstallRelease).
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CommandService } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { ReleaseService } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { createDatabase, ensureWebBuild, repoRoot, startTestService, startWebServer, webDistDir, type StartedService, type WebServer } from "@adminkiosk/devstack";
import { provision, startSimulator, type SimKiosk, type Simulator } from "@adminkiosk/kiosk-sdk/simulator";
import { adminEmail, adminPassword, clientFor, startAuth, type AuthFixture } from "../support/auth.js";
import { launchBrowser, signInAs } from "../support/browser.js";

const slow = { timeout: 30_000 };

let auth: AuthFixture;
let fleet: StartedService;
let link: StartedService;
let simulator: Simulator;
let kiosks: SimKiosk[];
let web: WebServer;
let browser: Browser;
const dirs: string[] = [];

beforeAll(async () => {
  const infra = inject("infra");
  const built = ensureWebBuild(repoRoot);
  built.catch(() => {}); // awaited below
  auth = await startAuth();
  const shared = { REDIS_URL: auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json` };
  const artifactDir = mkdtempSync(join(tmpdir(), "releases-e2e-store-"));
  const stateDir = mkdtempSync(join(tmpdir(), "releases-e2e-kiosks-"));
  dirs.push(artifactDir, stateDir);
  [fleet, link] = await Promise.all([
    createDatabase(infra.databaseUrl, "fleet").then((db) =>
      startTestService("fleet", {
        ...shared,
        DATABASE_URL: db,
        AUTH_URL: auth.service.url,
        LINK_EVENTS_CONSUMER: `fleet-releases-e2e-${process.pid}`,
        LINK_EVENTS_SINCE_START: "true",
        FLEET_RELEASE_SIGNING_KEY: JSON.stringify(generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" })),
        FLEET_ARTIFACT_DIR: artifactDir,
      }),
    ),
    startTestService("link", { ...shared, LINK_REPLICA_ID: "link-releases-e2e" }),
  ]);
  kiosks = await provision({ idPrefix: "releases", authUrl: auth.service.url, fleetUrl: fleet.url, count: 2, stateFile: join(infra.tmpDir, `releases-e2e-sim-${process.pid}.json`), admin: { email: adminEmail, password: adminPassword } });
  simulator = startSimulator({ linkUrl: link.url, kiosks, telemetryIntervalMs: 2_000, flappingShare: 0, updates: { apiBaseUrl: fleet.url, stateDir } });
  await built;
  web = await startWebServer({ distDir: webDistDir(repoRoot), upstreams: { auth: auth.service.url, fleet: fleet.url }, port: 0 });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await web?.close();
  await simulator?.stop();
  await Promise.all([fleet?.stop(), link?.stop()]);
  await auth?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("the Releases page", () => {
  it("uploads an artifact with a progress bar, creates a release and shows the kiosks installing it", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
    await page.goto(`${web.url}/`);
    await signInAs(page, adminEmail, adminPassword);

    await page.getByRole("link", { name: "Releases" }).click();
    await page.getByRole("heading", { name: "Releases", level: 1 }).waitFor();
    await page.getByRole("button", { name: "New release" }).click();
    const bytes = randomBytes(3 * 1024 * 1024);
    await page.getByLabel("Artifact").setInputFiles({ name: "kiosk-app-4.2.0.tar", mimeType: "application/octet-stream", buffer: bytes });
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    await expect.poll(() => page.getByTestId("artifact-sha256").textContent().catch(() => ""), slow).toBe(sha256);
    expect(await page.getByRole("progressbar", { name: "Upload" }).getAttribute("aria-valuenow")).toBe(String(bytes.length));

    await page.getByLabel("Version").fill("4.2.0");
    await page.getByLabel("Hardware models").fill("AK-SIM-1");
    await page.getByLabel("Release notes").fill("Faster checkout");
    await page.getByRole("button", { name: "Create release" }).click();
    await page.getByTestId("kiosk-updates").waitFor(slow);
    await expect.poll(() => page.getByTestId("release-row").first().textContent(), slow).toContain("4.2.0");

    const { releases } = await clientFor(ReleaseService, fleet.url, await auth.adminToken()).listReleases({});
    const releaseId = releases[0]!.releaseId;
    expect(releases[0]).toMatchObject({ version: "4.2.0", artifactSha256: sha256, hardwareModels: ["AK-SIM-1"], notes: "Faster checkout" });
    const commands = clientFor(CommandService, fleet.url, await auth.adminToken());
    for (const k of kiosks) await commands.sendCommand({ kioskId: k.kioskId, action: { kind: { case: "installRelease", value: { releaseId } } } });
    // The page reads the install states again while kiosks are on their way.
    await expect.poll(() => page.getByTestId("update-counts").textContent(), { timeout: 60_000 }).toContain("Installed 2");
    expect(await page.getByTestId("kiosk-update-row").count()).toBe(2);
    await page.close();
  });
});

// Releases on real processes (auth, fleet, link) and simulated kiosks running the kiosk SDK's
// updater: an admin uploads an artifact and creates a release; SendCommand(InstallRelease)
// takes it to kiosks, which download (ranged, resumable), verify the hash and the manifest's
// signature against the keys they pinned, install into their inactive slot, restart into it
// and report; fleet shows each kiosk's state and the version its Hello reported. A tampered
// artifact or manifest is refused by the kiosk and shown; a version that crashes at boot is
// reverted by the kiosk itself.
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { AuditService } from "@adminkiosk/proto/adminkiosk/fleet/v1/audit_pb";
import { CommandService, CommandState } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { JobService } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { ReleaseKind, ReleaseService } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { eventually, waitFor } from "@adminkiosk/devstack";
import { downloadResumable } from "@adminkiosk/kiosk-sdk";
import { startSimulator, type Simulator } from "@adminkiosk/kiosk-sdk/simulator";
import { failure, Role } from "../../../test/support/auth.js";
import { putArtifact, startFleet, uploadArtifact, type FleetFixture } from "../../../test/support/fleet.js";

let fx: FleetFixture;
let sim: Simulator;
let db: pg.Pool;
let artifactDir: string;
let stateDir: string;
let credentials: Map<string, string>;
const kioskIds = ["rel-1", "rel-2", "rel-3", "rel-4", "rel-5"];

beforeAll(async () => {
  artifactDir = mkdtempSync(join(os.tmpdir(), "releases-artifacts-"));
  stateDir = mkdtempSync(join(os.tmpdir(), "releases-kiosks-"));
  fx = await startFleet({
    name: "releases",
    fleetEnv: {
      FLEET_RELEASE_SIGNING_KEY: JSON.stringify(generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" })),
      FLEET_ARTIFACT_DIR: artifactDir,
      FLEET_ARTIFACT_MAX_BYTES: String(4 * 1024 * 1024),
    },
  });
  db = new pg.Pool({ connectionString: fx.fleetDatabaseUrl, max: 2, options: "-c search_path=fleet" });
  credentials = await fx.enroll(kioskIds);
  sim = startSimulator({
    linkUrl: fx.links[0]!.url,
    kiosks: kioskIds.map((kioskId) => ({ kioskId, deviceCredential: credentials.get(kioskId)! })),
    telemetryIntervalMs: 500,
    flappingShare: 0,
    backoff: { initialMs: 100, maxMs: 1_000 },
    appVersion: "1.0.0",
    firmwareVersion: "1.0.0",
    updates: { apiBaseUrl: fx.fleet.url, stateDir },
    badVersions: { "6.6.6": "crash" },
  });
  await waitFor("the simulated kiosks to be online", async () => {
    const { kiosks } = await fx.fleetClient(KioskService).listKiosks({ pageSize: 100 });
    return kiosks.filter((k) => kioskIds.includes(k.kioskId) && k.appVersion === "1.0.0").length === kioskIds.length || undefined;
  });
});

afterAll(async () => {
  await sim?.stop();
  await db?.end();
  await fx?.stop();
  rmSync(artifactDir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
});

async function upload(bytes: Buffer, token = fx.admin) {
  return uploadArtifact(fx.fleet.url, token, bytes);
}

async function release(version: string, bytes: Buffer = randomBytes(200 * 1024)) {
  const res = await upload(bytes);
  expect(res.status).toBe(201);
  const { sha256, size } = (await res.json()) as { sha256: string; size: number };
  expect(sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
  expect(size).toBe(bytes.length);
  const { release } = await fx.fleetClient(ReleaseService).createRelease({ kind: ReleaseKind.APP, version, artifactSha256: sha256, notes: `Release ${version}`, hardwareModels: ["AK-SIM-1"] });
  return release!;
}

const install = (kioskId: string, releaseId: string) =>
  fx.fleetClient(CommandService).sendCommand({ kioskId, action: { kind: { case: "installRelease", value: { releaseId } } } });

const updatesOf = async (releaseId: string) => fx.fleetClient(ReleaseService).listKioskUpdates({ releaseId, pageSize: 100 });

const download = (sha256: string, headers: Record<string, string> = {}, token = credentials.get("rel-1")!) =>
  fetch(`${fx.fleet.url}/v1/artifacts/${sha256}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

describe("releases", () => {
  it("a release sent with SendCommand(InstallRelease) is installed by each kiosk, which then reports the new version", async () => {
    const r = await release("2.0.0");
    expect(r).toMatchObject({ version: "2.0.0", kind: ReleaseKind.APP, sizeBytes: 200n * 1024n, artifactUrl: `/v1/artifacts/${r.artifactSha256}` });
    expect(r.manifestSignature.length).toBe(64);
    const commands = await Promise.all(["rel-1", "rel-2", "rel-3"].map(async (id) => (await install(id, r.releaseId)).command!));
    const done = await waitFor("three kiosks to report INSTALLED", async () => {
      const page = await updatesOf(r.releaseId);
      return page.stateCounts["installed"] === 3 ? page : undefined;
    });
    expect(done.updates.map((u) => [u.kioskId, u.state, u.version, u.fromVersion, u.bytesDone])).toEqual([
      ["rel-1", "installed", "2.0.0", "1.0.0", 200n * 1024n],
      ["rel-2", "installed", "2.0.0", "1.0.0", 200n * 1024n],
      ["rel-3", "installed", "2.0.0", "1.0.0", 200n * 1024n],
    ]);
    // The new version's Hello: fleet's registry shows what the kiosk runs.
    await expect
      .poll(async () => (await Promise.all(["rel-1", "rel-2", "rel-3"].map(async (kioskId) => (await fx.fleetClient(KioskService).getKiosk({ kioskId })).kiosk!.appVersion))), eventually)
      .toEqual(["2.0.0", "2.0.0", "2.0.0"]);
    await expect
      .poll(async () => (await Promise.all(commands.map(async (c) => (await fx.fleetClient(CommandService).getCommand({ commandId: c.commandId })).command!.state))), eventually)
      .toEqual([CommandState.SUCCEEDED, CommandState.SUCCEEDED, CommandState.SUCCEEDED]);
    // The kiosk sent the release fleet stored, whatever the request held besides its id.
    expect(commands[0]!.action?.kind.case).toBe("installRelease");
    expect(commands[0]!.action?.kind.value).toMatchObject({ version: "2.0.0", keyId: r.keyId, artifactUrl: r.artifactUrl });
    const { events } = await fx.fleetClient(AuditService).listAuditEvents({ pageSize: 100 });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["artifact.uploaded", "release.created"]));
  });

  it("a tampered artifact is refused by the kiosk (REJECTED, nothing installed) and fleet shows why", async () => {
    const r = await release("2.1.0");
    // Someone with access to the store swaps the bytes (same size).
    const file = join(artifactDir, "objects", r.artifactSha256.slice(0, 2), r.artifactSha256);
    const bytes = readFileSync(file);
    bytes[1000] = bytes[1000]! ^ 0xff;
    writeFileSync(file, bytes);
    await install("rel-4", r.releaseId);
    const page = await waitFor("rel-4 to reject the artifact", async () => {
      const p = await updatesOf(r.releaseId);
      return p.updates[0]?.state === "rejected" ? p : undefined;
    });
    expect(page.updates[0]!.errorMessage).toContain("does not match the manifest");
    expect((await fx.fleetClient(KioskService).getKiosk({ kioskId: "rel-4" })).kiosk!.appVersion).toBe("1.0.0");
  });

  it("a tampered manifest is refused by the kiosk (REJECTED before any download) and fleet shows why", async () => {
    const r = await release("2.2.0");
    // The stored manifest altered (a larger size, say) without the key: the signature no longer matches.
    await db.query("UPDATE releases SET manifest = overlay(manifest placing '\\x00'::bytea from 3 for 1) WHERE release_id = $1", [r.releaseId]);
    await install("rel-5", r.releaseId);
    const page = await waitFor("rel-5 to reject the manifest", async () => {
      const p = await updatesOf(r.releaseId);
      return p.updates[0]?.state === "rejected" ? p : undefined;
    });
    expect(page.updates[0]!.errorMessage).toContain("signature does not verify");
    expect(page.updates[0]!.bytesDone).toBe(0n);
    expect((await fx.fleetClient(KioskService).getKiosk({ kioskId: "rel-5" })).kiosk!.appVersion).toBe("1.0.0");
  });

  it("a version that crashes at boot is reverted by the kiosk itself, which says so and runs the old version again", async () => {
    const r = await release("6.6.6");
    await install("rel-4", r.releaseId);
    const page = await waitFor("rel-4 to revert", async () => {
      const p = await updatesOf(r.releaseId);
      return p.updates[0]?.state === "reverted" ? p : undefined;
    });
    expect(page.updates[0]).toMatchObject({ fromVersion: "1.0.0", version: "6.6.6" });
    expect(page.updates[0]!.errorMessage).toContain("crashed at boot");
    expect(page.updates[0]!.revertTime).toBeDefined();
    await expect.poll(async () => (await fx.fleetClient(KioskService).getKiosk({ kioskId: "rel-4" })).kiosk!.appVersion, eventually).toBe("1.0.0");
  });
});

describe("artifact downloads", () => {
  it("serve byte ranges (206), refuse one past the end (416) and resume an interrupted download to the right bytes", async () => {
    const bytes = randomBytes(1024 * 1024 + 17);
    const sha256 = await putArtifact(fx.fleet.url, fx.admin, bytes);
    const whole = await download(sha256);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("etag")).toBe(`"${sha256}"`);
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);

    const part = await download(sha256, { range: "bytes=100-199" });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-199/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200))).toBe(true);
    const tail = await download(sha256, { range: "bytes=-17" });
    expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 17))).toBe(true);

    const past = await download(sha256, { range: `bytes=${bytes.length}-` });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe(`bytes */${bytes.length}`);
    // If-Range naming something else: the whole artifact, not the range.
    const other = await download(sha256, { range: "bytes=0-9", "if-range": '"another"' });
    expect(other.status).toBe(200);
    await other.arrayBuffer();

    // The kiosk's download, cut off after its first bytes and resumed from its partial file.
    const dest = join(stateDir, "resume-test.part");
    const cut = new AbortController();
    let before = 0;
    await expect(
      downloadResumable(`${fx.fleet.url}/v1/artifacts/${sha256}`, dest, {
        credential: credentials.get("rel-2")!,
        sha256,
        size: bytes.length,
        signal: cut.signal,
        onProgress: (done) => {
          before = done;
          if (done > 0 && done < bytes.length) cut.abort();
        },
      }),
    ).rejects.toThrow();
    const kept = readFileSync(dest).length;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(bytes.length);
    expect(before).toBeGreaterThan(0);
    let resumedFrom = -1;
    await downloadResumable(`${fx.fleet.url}/v1/artifacts/${sha256}`, dest, {
      credential: credentials.get("rel-2")!,
      sha256,
      size: bytes.length,
      onProgress: (done) => (resumedFrom = resumedFrom < 0 ? done : resumedFrom),
    });
    expect(resumedFrom).toBeGreaterThan(kept - 1);
    expect(readFileSync(dest).equals(bytes)).toBe(true);
  });

  it("are for kiosks and signed-in people only; unknown artifacts are 404", async () => {
    const sha256 = await putArtifact(fx.fleet.url, fx.admin, randomBytes(1000));
    expect((await fetch(`${fx.fleet.url}/v1/artifacts/${sha256}`)).status).toBe(401);
    expect((await download(sha256, {}, "not-a-token")).status).toBe(401);
    const viewer = (await fx.auth.userWithRole(Role.VIEWER)).accessToken;
    expect((await download(sha256, {}, viewer)).status).toBe(200);
    expect((await download("0".repeat(64))).status).toBe(404);
    expect((await download("not-a-sha")).status).toBe(400);
  });
});

describe("who may do what, and bad input", () => {
  it("a kiosk cannot upload artifacts or create releases; a viewer cannot either", async () => {
    const device = credentials.get("rel-1")!;
    expect((await upload(randomBytes(10), device)).status).toBe(403);
    const viewer = (await fx.auth.userWithRole(Role.VIEWER)).accessToken;
    expect((await upload(randomBytes(10), viewer)).status).toBe(403);
    const sha256 = await putArtifact(fx.fleet.url, fx.admin, randomBytes(10));
    for (const token of [device, viewer]) {
      const err = await failure(fx.fleetClient(ReleaseService, token).createRelease({ kind: ReleaseKind.APP, version: "9.0.0", artifactSha256: sha256 }));
      expect(err.code).toBe(Code.PermissionDenied);
    }
    // A kiosk may read the keys it pins.
    const { keys } = await fx.fleetClient(ReleaseService, device).getReleaseKeys({});
    expect(keys).toHaveLength(1);
    expect(keys[0]!.current).toBe(true);
  });

  it("an upload over FLEET_ARTIFACT_MAX_BYTES is refused and nothing is kept", async () => {
    const res = await upload(randomBytes(4 * 1024 * 1024 + 1));
    expect(res.status).toBe(413);
    const { rows } = await db.query("SELECT count(*)::int AS n FROM artifacts WHERE size_bytes > $1", [4 * 1024 * 1024]);
    expect(rows[0].n).toBe(0);
  });

  it("CreateRelease names the field it refuses", async () => {
    const sha256 = await putArtifact(fx.fleet.url, fx.admin, randomBytes(10));
    const cases: [Parameters<ReturnType<typeof fx.fleetClient<typeof ReleaseService>>["createRelease"]>[0], string, Code][] = [
      [{ kind: ReleaseKind.APP, version: "3.0.0", artifactSha256: "ab".repeat(32) }, "artifact_sha256", Code.InvalidArgument],
      [{ kind: ReleaseKind.APP, version: "3.0.0", artifactSha256: "nope" }, "artifact_sha256", Code.InvalidArgument],
      [{ kind: ReleaseKind.APP, version: "v3", artifactSha256: sha256 }, "version", Code.InvalidArgument],
      [{ kind: ReleaseKind.APP, version: "3.0.0", minVersion: "4.0.0", artifactSha256: sha256 }, "min_version", Code.InvalidArgument],
      [{ kind: ReleaseKind.UNSPECIFIED, version: "3.0.0", artifactSha256: sha256 }, "kind", Code.InvalidArgument],
    ];
    for (const [req, field, code] of cases) {
      const err = await failure(fx.fleetClient(ReleaseService).createRelease(req));
      expect(err.code, field).toBe(code);
      expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe(field);
    }
    await fx.fleetClient(ReleaseService).createRelease({ kind: ReleaseKind.FIRMWARE, version: "3.0.0", artifactSha256: sha256 });
    expect((await failure(fx.fleetClient(ReleaseService).createRelease({ kind: ReleaseKind.FIRMWARE, version: "3.0.0", artifactSha256: sha256 }))).code).toBe(Code.AlreadyExists);
    const err = await failure(install("rel-1", "00000000-0000-4000-8000-000000000000"));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("action.install_release.release_id");
    // A job would send the request's own fields, unsigned: releases go out as rollouts.
    const { releases } = await fx.fleetClient(ReleaseService).listReleases({});
    const job = await failure(
      fx.fleetClient(JobService).createJob({ action: { kind: { case: "installRelease", value: { releaseId: releases[0]!.releaseId } } }, target: { kioskIds: ["rel-1"] }, ratePerMinute: 60 }),
    );
    expect(job.code).toBe(Code.InvalidArgument);
    expect(job.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("action.install_release");
  });
});

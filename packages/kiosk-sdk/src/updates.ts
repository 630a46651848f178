// Software updates on the kiosk (issue 17): the InstallRelease command, as reference firmware
// carries it out.
//   1. The manifest's Ed25519 signature is checked against the keys the kiosk pinned (from
//      fleet's GetReleaseKeys at enrollment, or its configuration), then the manifest is
//      decoded and must name the release, kind and version of the command. Anything else is
//      REJECTED and nothing is downloaded.
//   2. Incompatible (hardware model not listed, running below min_version): FAILED.
//   3. The artifact is downloaded from the kiosk's API base (fleet, or the edge) into
//      <stateDir>/downloads/<sha256>.part, resumed with Range + If-Range after an
//      interruption (what is already there is kept); DOWNLOADING reports carry the bytes.
//   4. VERIFYING: size and SHA-256 against the manifest; a mismatch is REJECTED and the
//      partial file is deleted (a tampered artifact is never installed).
//   5. INSTALLING into the inactive slot (<stateDir>/slots/<kind>/a|b), then a restart into
//      it: a new stream whose Hello reports the new version. `boot` decides whether the new
//      version came up; when it throws, the kiosk switches back to the previous slot by
//      itself, restarts again and reports REVERTED with the reason.
//   6. INSTALLED. The command's result is the outcome (FAILED with the reason otherwise).
import { createHash } from "node:crypto";
import { createPublicKey, verify } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fromBinary, type JsonObject } from "@bufbuild/protobuf";
import { GetReleaseKeysRequestSchema, GetReleaseKeysResponseSchema, ReleaseKind, ReleaseManifestSchema, type ReleaseManifest } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import type { InstallRelease } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { UpdateStatus_State } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import type { KioskClient } from "./client.js";
import { unary } from "./grpc.js";

export type ReleaseKindName = "app" | "firmware";

/** A public key the kiosk trusts manifests from: key id → raw 32-byte Ed25519 key. */
export type TrustedKeys = Map<string, Uint8Array>;

/** The keys fleet publishes now (GetReleaseKeys), to pin at enrollment. */
export async function fetchReleaseKeys(fleetAddress: string, credential: string): Promise<TrustedKeys> {
  const res = await unary(fleetAddress, "/adminkiosk.fleet.v1.ReleaseService/GetReleaseKeys", GetReleaseKeysRequestSchema, GetReleaseKeysResponseSchema, {}, { credential });
  return new Map(res.keys.map((k) => [k.keyId, k.publicKey]));
}

export interface BootInfo {
  kind: ReleaseKindName;
  version: string;
  fromVersion: string;
  /** The slot's directory: the artifact is <dir>/artifact. */
  dir: string;
}

export interface UpdaterOptions {
  client: KioskClient;
  /** Where artifact_url is resolved: fleet's base URL or the edge's ("http://host:port"). */
  apiBaseUrl: string;
  /** The device credential (asked each time: it may have been renewed). */
  credential: () => string;
  /** The kiosk's own directory: partial downloads and the A/B slots. */
  stateDir: string;
  hardwareModel: string;
  /** The pinned keys, or how to get them (asked at each install; e.g. once at enrollment, then kept). */
  trustedKeys: TrustedKeys | (() => Promise<TrustedKeys>);
  /**
   * Starts the version just installed; throwing (or rejecting) means it did not come up and
   * the kiosk reverts. Default: it comes up.
   */
  boot?: (info: BootInfo) => void | Promise<void>;
  /** Download attempts before the install FAILS (each resumes where the last stopped). Default 5. */
  downloadAttempts?: number;
  /** A DOWNLOADING report at most every this many bytes (default 1 MiB) besides the first and last. */
  progressEveryBytes?: number;
  log?: (line: string) => void;
}

/** Why an install ended without the new version running; `state` is what was reported. */
export class InstallFailed extends Error {
  constructor(
    readonly state: "failed" | "rejected" | "reverted",
    message: string,
  ) {
    super(`${state}: ${message}`);
  }
}

const kindName = (kind: ReleaseKind): ReleaseKindName | undefined => (kind === ReleaseKind.APP ? "app" : kind === ReleaseKind.FIRMWARE ? "firmware" : undefined);

/** Verifies an Ed25519 signature with a raw public key; false for anything malformed. */
export function verifySignature(data: Uint8Array, signature: Uint8Array, rawKey: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(rawKey).toString("base64url") }, format: "jwk" });
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}

const versionPattern = /^(\d{1,9})(?:\.(\d{1,9})){0,3}(?:-([0-9A-Za-z][0-9A-Za-z.-]{0,31}))?$/;
/** As fleet orders versions (services/fleet/src/releases/versions.ts); text that is not a version sorts first. */
export function compareVersions(a: string, b: string): number {
  const va = versionPattern.test(a), vb = versionPattern.test(b);
  if (!va || !vb) return va === vb ? (a < b ? -1 : a > b ? 1 : 0) : va ? 1 : -1;
  const parts = (v: string) => {
    const dash = v.indexOf("-");
    const nums = (dash < 0 ? v : v.slice(0, dash)).split(".").map(Number);
    while (nums.length < 4) nums.push(0);
    return { nums, pre: dash < 0 ? "" : v.slice(dash + 1) };
  };
  const pa = parts(a), pb = parts(b);
  for (let i = 0; i < 4; i++) if (pa.nums[i] !== pb.nums[i]) return pa.nums[i]! - pb.nums[i]!;
  if (pa.pre === pb.pre) return 0;
  return pa.pre === "" ? 1 : pb.pre === "" ? -1 : pa.pre < pb.pre ? -1 : 1;
}

/**
 * Downloads `url` into `dest`, resuming from what `dest` already holds (Range, with If-Range
 * on the expected ETag so a partial copy of other bytes is started over). Resolves once the
 * file has `size` bytes; `onProgress` gets the bytes so far. Rejects on a network error (the
 * partial file stays for the next attempt) or an HTTP error.
 */
export async function downloadResumable(
  url: string,
  dest: string,
  o: { credential: string; sha256: string; size: number; signal?: AbortSignal; onProgress?: (done: number) => void },
): Promise<void> {
  let have = 0;
  try {
    have = (await stat(dest)).size;
  } catch {
    // nothing yet
  }
  if (have > o.size) {
    await rm(dest, { force: true });
    have = 0;
  }
  if (have === o.size) return;
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${o.credential}`, ...(have > 0 ? { range: `bytes=${have}-`, "if-range": `"${o.sha256}"` } : {}) },
    signal: o.signal,
  });
  if (res.status === 416) {
    // What we have is already all of it (or not this file): start over next time if the sizes differ.
    await rm(dest, { force: true });
    throw new Error("the server refused the range (416); starting over");
  }
  if (res.status !== 200 && res.status !== 206) throw new Error(`GET ${url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  if (!res.body) throw new Error(`GET ${url}: no body`);
  const append = res.status === 206;
  let done = append ? have : 0;
  // Each chunk is on disk before it counts: what onProgress reports is what a resume keeps.
  const file = await open(dest, append ? "a" : "w");
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      await file.write(chunk);
      done += chunk.length;
      o.onProgress?.(done);
    }
  } finally {
    await file.close();
  }
  if (done !== o.size) throw new Error(`GET ${url}: ended at ${done} of ${o.size} bytes`);
}

async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest("hex"), size };
}

interface SlotState {
  active: "a" | "b";
  versions: { a: string; b: string };
}

/**
 * Handles InstallRelease on `client` (registers the command handler) and answers what each
 * kind of software runs now. One install at a time; a second waits for the first.
 */
export class Updater {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: UpdaterOptions) {
    o.client.onCommand("installRelease", (cmd) => {
      const run = this.queue.then(() => this.install(cmd));
      this.queue = run.catch(() => {});
      return run;
    });
  }

  private log(line: string) {
    this.o.log?.(line);
  }

  private version(kind: ReleaseKindName): string {
    const v = this.o.client.versions;
    return kind === "app" ? v.appVersion : v.firmwareVersion;
  }

  private slotsDir(kind: ReleaseKindName) {
    return join(this.o.stateDir, "slots", kind);
  }

  private async slots(kind: ReleaseKindName): Promise<SlotState> {
    try {
      return JSON.parse(await readFile(join(this.slotsDir(kind), "slots.json"), "utf8")) as SlotState;
    } catch {
      return { active: "a", versions: { a: this.version(kind), b: "" } };
    }
  }

  private async saveSlots(kind: ReleaseKindName, s: SlotState) {
    const file = join(this.slotsDir(kind), "slots.json");
    await mkdir(this.slotsDir(kind), { recursive: true });
    await writeFile(`${file}.tmp`, JSON.stringify(s));
    await rename(`${file}.tmp`, file);
  }

  private async switchTo(kind: ReleaseKindName, version: string) {
    this.o.client.setVersions(kind === "app" ? { appVersion: version } : { firmwareVersion: version });
    // The restart: a new stream, whose Hello reports what now runs.
    await this.o.client.restart();
  }

  /** Carries out one InstallRelease; resolves with the result payload, throws InstallFailed. */
  async install(cmd: InstallRelease): Promise<JsonObject> {
    const { client } = this.o;
    const kind = kindName(cmd.kind);
    const fromVersion = kind ? this.version(kind) : "";
    const base = { releaseId: cmd.releaseId, rolloutId: cmd.rolloutId, version: cmd.version, fromVersion };
    const report = (state: UpdateStatus_State, extra: { bytesDone?: number; bytesTotal?: number; errorMessage?: string } = {}) =>
      client.reportUpdate({ ...base, state, bytesDone: BigInt(extra.bytesDone ?? 0), bytesTotal: BigInt(extra.bytesTotal ?? 0), errorMessage: extra.errorMessage ?? "" });
    const end = (state: "failed" | "rejected" | "reverted", message: string, bytes?: { bytesDone?: number; bytesTotal?: number }): never => {
      report(state === "failed" ? UpdateStatus_State.FAILED : state === "rejected" ? UpdateStatus_State.REJECTED : UpdateStatus_State.REVERTED, { ...bytes, errorMessage: message });
      this.log(`install of ${cmd.version} ${state}: ${message}`);
      throw new InstallFailed(state, message);
    };

    // 1. The manifest: signed by a pinned key, and about this command.
    let trusted: TrustedKeys;
    try {
      trusted = typeof this.o.trustedKeys === "function" ? await this.o.trustedKeys() : this.o.trustedKeys;
    } catch (err) {
      return end("failed", `the pinned release keys are not available: ${err instanceof Error ? err.message : String(err)}`);
    }
    const key = trusted.get(cmd.keyId);
    if (!key) return end("rejected", `manifest signed with key ${cmd.keyId || "(none)"}, which this kiosk does not trust`);
    if (!verifySignature(cmd.manifest, cmd.manifestSignature, key)) return end("rejected", "the manifest's signature does not verify");
    let manifest: ReleaseManifest;
    try {
      manifest = fromBinary(ReleaseManifestSchema, cmd.manifest);
    } catch {
      return end("rejected", "the manifest does not decode");
    }
    if (manifest.releaseId !== cmd.releaseId || manifest.version !== cmd.version || manifest.kind !== cmd.kind || !kind)
      return end("rejected", "the manifest describes another release than the command");
    if (!/^[0-9a-f]{64}$/.test(manifest.sha256) || !cmd.artifactUrl.endsWith(manifest.sha256)) return end("rejected", "the artifact URL is not the manifest's artifact");
    const size = Number(manifest.sizeBytes);

    // 2. Compatible?
    if (manifest.hardwareModels.length > 0 && !manifest.hardwareModels.includes(this.o.hardwareModel))
      return end("failed", `hardware model ${this.o.hardwareModel} is not one of ${manifest.hardwareModels.join(", ")}`);
    if (manifest.minVersion && compareVersions(fromVersion, manifest.minVersion) < 0) return end("failed", `needs at least ${kind} ${manifest.minVersion} (runs ${fromVersion})`);
    if (fromVersion === manifest.version) {
      report(UpdateStatus_State.INSTALLED, { bytesDone: size, bytesTotal: size });
      return { version: manifest.version, state: "installed", alreadyRunning: true };
    }

    // 3. Download, resuming.
    const downloads = join(this.o.stateDir, "downloads");
    await mkdir(downloads, { recursive: true });
    const partial = join(downloads, `${manifest.sha256}.part`);
    const every = this.o.progressEveryBytes ?? 1024 * 1024;
    let lastReported = -1;
    const progress = (done: number) => {
      if (done === size || lastReported < 0 || done - lastReported >= every) {
        lastReported = done;
        report(UpdateStatus_State.DOWNLOADING, { bytesDone: done, bytesTotal: size });
      }
    };
    progress(0);
    const url = new URL(cmd.artifactUrl, this.o.apiBaseUrl.replace(/\/?$/, "/")).toString();
    const attempts = this.o.downloadAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        await downloadResumable(url, partial, { credential: this.o.credential(), sha256: manifest.sha256, size, onProgress: progress });
        break;
      } catch (err) {
        if (attempt >= attempts) return end("failed", `download failed: ${err instanceof Error ? err.message : String(err)}`);
        await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** attempt)));
      }
    }

    // 4. Verify.
    report(UpdateStatus_State.VERIFYING, { bytesDone: size, bytesTotal: size });
    const got = await sha256File(partial);
    if (got.size !== size || got.sha256 !== manifest.sha256) {
      await rm(partial, { force: true });
      return end("rejected", `the artifact does not match the manifest (sha256 ${got.sha256}, ${got.size} bytes; expected ${manifest.sha256}, ${size} bytes)`, { bytesDone: got.size, bytesTotal: size });
    }

    // 5. Install into the inactive slot, restart into it.
    report(UpdateStatus_State.INSTALLING, { bytesDone: size, bytesTotal: size });
    const slots = await this.slots(kind);
    const target = slots.active === "a" ? "b" : "a";
    const dir = join(this.slotsDir(kind), target);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await rename(partial, join(dir, "artifact"));
    const previous = slots.active;
    slots.versions[previous] ||= fromVersion;
    slots.versions[target] = manifest.version;
    slots.active = target;
    await this.saveSlots(kind, slots);
    await this.switchTo(kind, manifest.version);
    try {
      await this.o.boot?.({ kind, version: manifest.version, fromVersion, dir });
    } catch (err) {
      // A bad boot: back to the previous slot by itself.
      slots.active = previous;
      await this.saveSlots(kind, slots);
      await this.switchTo(kind, fromVersion);
      return end("reverted", `${manifest.version} did not come up (${err instanceof Error ? err.message : String(err)}); back on ${fromVersion}`, { bytesDone: size, bytesTotal: size });
    }
    report(UpdateStatus_State.INSTALLED, { bytesDone: size, bytesTotal: size });
    this.log(`installed ${kind} ${manifest.version} (was ${fromVersion})`);
    return { version: manifest.version, fromVersion, state: "installed", slot: target };
  }
}

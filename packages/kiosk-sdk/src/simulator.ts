// A fleet of simulated kiosks on the real SDK: provisioning (registry at fleet,
// enrollment at auth, credentials saved to a 0600 JSON file for later runs) and a
// run loop with plausible telemetry, occasional printer trouble and a few kiosks
// whose network flaps.
import { randomBytes } from "node:crypto";
import { chmod, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService, DeviceService, UserService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { Role } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import type { BackoffOptions } from "./backoff.js";
import { KioskClient, type TelemetrySampleInit } from "./client.js";
import { enroll } from "./enroll.js";
import { fetchReleaseKeys, Updater, type TrustedKeys } from "./updates.js";

export const simFirmwareVersion = "sim-1.4.2";
export const simAppVersion = "sim-7.0.0";
const hardwareModel = "AK-SIM-1";

export interface SimKiosk {
  kioskId: string;
  deviceCredential: string;
}

interface StateFile {
  version: 1;
  kiosks: Record<string, { deviceCredential: string; enrollTime: string }>;
  /** The simulated route driver's operator account (selling.ts restocks as it). */
  restocker?: { email: string; password: string };
}

/** The simulated route driver's sign-in at auth (an operator). */
export const restockerEmail = "sim-restocker@adminkiosk.local";

export const simKioskId = (n: number, prefix = "sim") => `${prefix}-${String(n).padStart(4, "0")}`;

const cities = [
  { city: "Prague", latitude: 50.0755, longitude: 14.4378, timezone: "Europe/Prague", group: "cz" },
  { city: "Brno", latitude: 49.1951, longitude: 16.6068, timezone: "Europe/Prague", group: "cz" },
  { city: "Vienna", latitude: 48.2082, longitude: 16.3738, timezone: "Europe/Vienna", group: "at" },
  { city: "Berlin", latitude: 52.52, longitude: 13.405, timezone: "Europe/Berlin", group: "de" },
  { city: "Warsaw", latitude: 52.2297, longitude: 21.0122, timezone: "Europe/Warsaw", group: "pl" },
] as const;
const venues = ["Main Station", "Airport", "City Mall", "Old Town", "Stadium", "University", "Museum Quarter", "Riverside"];

async function loadState(path: string): Promise<StateFile> {
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as Partial<StateFile>;
    return { version: 1, kiosks: parsed.kiosks ?? {}, ...(parsed.restocker ? { restocker: parsed.restocker } : {}) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, kiosks: {} };
    throw new Error(`${path}: not a simulator state file (${(err as Error).message})`);
  }
}

/** Written to a temporary file and renamed, so a crash never leaves half a file; 0600 (it holds credentials). */
async function saveState(path: string, state: StateFile) {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

export interface ProvisionOptions {
  authUrl: string;
  fleetUrl: string;
  count: number;
  stateFile: string;
  /** Needed only when the state file lacks some of the kiosks (or the route driver's account). */
  admin?: { email: string; password: string };
  /** Also make the simulated route driver's operator account (selling.ts restocks as it), once. */
  restocker?: boolean;
  log?: (line: string) => void;
  /**
   * The kiosks' ids are `<idPrefix>-0001`…; "sim" by default. Simulated fleets that share a NATS
   * (test files running side by side) need their own, or each fleet hears the others' kiosks.
   */
  idPrefix?: string;
}

/**
 * Returns credentials for sim-0001…sim-<count> (or another `idPrefix`). Kiosks already in the state file are reused as
 * they are; the others are registered at fleet (unless they exist), enrolled, and saved.
 * With `restocker` and admin credentials it also makes the simulated route driver's operator
 * account once (saved with the kiosks); without one saved, `restocker` is undefined.
 */
export async function provision(options: ProvisionOptions): Promise<SimKiosk[] & { restocker?: { email: string; password: string } }> {
  const log = options.log ?? (() => {});
  const state = await loadState(options.stateFile);
  const ids = Array.from({ length: options.count }, (_, i) => simKioskId(i + 1, options.idPrefix));
  const missing = ids.filter((id) => !state.kiosks[id]);
  if (missing.length > 0 && !options.admin) throw new Error(`ADMIN_EMAIL and ADMIN_PASSWORD are needed to provision ${missing.length} kiosk(s) missing from ${options.stateFile}`);
  if (options.restocker && options.admin && !state.restocker) {
    // Optional: without it nothing is restocked, and the kiosks still run.
    try {
      state.restocker = await makeRestocker(options.authUrl, options.admin);
      await saveState(options.stateFile, state);
      log(`provisioned the simulated route driver ${restockerEmail} (an operator)`);
    } catch (err) {
      log(`restocking off: making the simulated route driver's account failed: ${ConnectError.from(err).message}`);
    }
  }
  if (missing.length > 0 && options.admin) {
    const login = await createClient(AuthService, createGrpcTransport({ baseUrl: options.authUrl })).login(options.admin);
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${login.tokens?.accessToken ?? ""}`);
      return next(req);
    };
    const fleet = createClient(KioskService, createGrpcTransport({ baseUrl: options.fleetUrl, interceptors: [bearer] }));
    const devices = createClient(DeviceService, createGrpcTransport({ baseUrl: options.authUrl, interceptors: [bearer] }));
    // A few at a time; the state file is saved after each kiosk, so an interrupted run resumes.
    const queue = [...missing];
    let saving = Promise.resolve();
    const worker = async () => {
      for (let id = queue.shift(); id; id = queue.shift()) {
        const n = Number(id.slice(id.lastIndexOf("-") + 1));
        const place = cities[n % cities.length]!;
        const venue = venues[Math.floor(n / cities.length) % venues.length]!;
        try {
          await fleet.createKiosk({
            kiosk: {
              kioskId: id,
              name: `${place.city} ${venue} #${n}`,
              location: {
                latitude: place.latitude + (Math.random() - 0.5) * 0.1,
                longitude: place.longitude + (Math.random() - 0.5) * 0.15,
                address: `${venue}, ${place.city}`,
              },
              timezone: place.timezone,
              tags: ["simulated", `city:${place.city.toLowerCase()}`, n % 3 === 0 ? "tickets" : "retail"],
              groupId: `sim-${place.group}`,
              hardwareModel,
            },
          });
        } catch (err) {
          if (ConnectError.from(err).code !== Code.AlreadyExists) throw err;
        }
        const { code } = await devices.createEnrollmentCode({ kioskId: id, ttlSeconds: 600 });
        const { deviceCredential } = await enroll({ authAddress: options.authUrl, code, firmwareVersion: simFirmwareVersion, hardwareModel });
        state.kiosks[id] = { deviceCredential, enrollTime: new Date().toISOString() };
        saving = saving.then(() => saveState(options.stateFile, state));
        await saving;
        log(`provisioned ${id}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, missing.length) }, worker));
  }
  const kiosks = ids.map((kioskId) => ({ kioskId, deviceCredential: state.kiosks[kioskId]!.deviceCredential }));
  return Object.assign(kiosks, state.restocker ? { restocker: state.restocker } : {});
}

/** The simulated route driver's operator account, made (or given a new password) with the admin's credentials. */
async function makeRestocker(authUrl: string, admin: { email: string; password: string }): Promise<{ email: string; password: string }> {
  const login = await createClient(AuthService, createGrpcTransport({ baseUrl: authUrl })).login(admin);
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${login.tokens?.accessToken ?? ""}`);
    return next(req);
  };
  const users = createClient(UserService, createGrpcTransport({ baseUrl: authUrl, interceptors: [bearer] }));
  const password = randomBytes(18).toString("base64url");
  try {
    await users.createUser({ email: restockerEmail, displayName: "Simulated route driver", role: Role.OPERATOR, password });
  } catch (err) {
    if (ConnectError.from(err).code !== Code.AlreadyExists) throw err;
    // Made by an earlier run whose state file is gone: give it a new password.
    const { users: found } = await users.listUsers({ query: restockerEmail, pageSize: 10 });
    const user = found.find((u) => u.email === restockerEmail);
    if (!user) throw err;
    await users.setPassword({ userId: user.userId, password });
  }
  return { email: restockerEmail, password };
}

/**
 * How a bad version misbehaves on a simulated kiosk (SimulatorOptions.badVersions):
 * - "crash": the app crashes at boot; the kiosk goes back to its previous version by itself
 *   (REVERTED, with the crash as the error) and reconnects;
 * - "low-sales": the kiosk runs and reports fine but sells exactly 30 % fewer
 *   (Simulator.salesFactor 0.7; startSelling's rateFactor);
 * - "no-printing": receipt printing fails: printer FAULT and a "receipt-print" error in telemetry.
 */
export type BadVersionKind = "crash" | "low-sales" | "no-printing";

/** The share of sales a kiosk running a "low-sales" version keeps. */
export const lowSalesFactor = 0.7;

/** One kiosk's hardware, drifting between samples. */
export class SimulatedKiosk {
  private paper: number;
  private cash: number;
  private printer = DeviceStatus.OK;
  /** Set while the kiosk runs a "no-printing" version. */
  receiptPrintingBroken = false;

  constructor(private readonly random: () => number = Math.random) {
    this.paper = 40 + random() * 60;
    this.cash = Math.round(random() * 200_000);
  }

  sample(): TelemetrySampleInit {
    const r = this.random;
    // Paper runs down with sales and is refilled once low (not always at once).
    this.paper = Math.max(0, this.paper - r() * 1.5);
    if (this.paper < 8 && r() < 0.2) this.paper = 100;
    // Cash builds up and is collected once high.
    this.cash += Math.round(r() * 3_000);
    if (this.cash > 500_000 && r() < 0.2) this.cash = 0;
    // The printer has bad moments and recovers.
    const roll = r();
    if (this.printer === DeviceStatus.OK) this.printer = roll < 0.005 ? DeviceStatus.FAULT : roll < 0.025 ? DeviceStatus.WARNING : DeviceStatus.OK;
    else if (roll < 0.3) this.printer = DeviceStatus.OK;
    const printer = this.printer === DeviceStatus.OK && this.paper < 10 ? DeviceStatus.WARNING : this.printer;
    const errors = [
      ...(this.printer === DeviceStatus.FAULT ? ["printer: paper jam"] : []),
      ...(this.paper === 0 ? ["printer: out of paper"] : []),
    ];
    const spike = r() < 0.05 ? 40 : 0;
    if (this.receiptPrintingBroken) errors.push("receipt-print: the receipt printer does not answer");
    return {
      cpuPercent: round(Math.min(100, 12 + r() * 18 + spike)),
      temperatureCelsius: round(38 + r() * 6 + spike / 10),
      paperLevelPercent: round(this.paper),
      cashLevelMinor: BigInt(this.cash),
      printer: this.receiptPrintingBroken ? DeviceStatus.FAULT : printer,
      scanner: DeviceStatus.OK,
      errors,
    };
  }
}

const round = (x: number) => Math.round(x * 10) / 10;

export interface SimulatorOptions {
  linkUrl: string;
  kiosks: SimKiosk[];
  telemetryIntervalMs: number;
  /** Share of kiosks whose connection flaps now and then (default 0.1). */
  flappingShare?: number;
  backoff?: Partial<BackoffOptions>;
  random?: () => number;
  log?: (line: string) => void;
  /**
   * Software updates (InstallRelease): each kiosk downloads from `apiBaseUrl` (fleet's URL,
   * or the edge's) into <stateDir>/<kiosk id>, verifying against `trustedKeys` (default: fleet's
   * GetReleaseKeys at `apiBaseUrl`, asked once with the first kiosk's credential and pinned).
   * Without it InstallRelease is answered UNSUPPORTED.
   */
  updates?: { apiBaseUrl: string; stateDir: string; trustedKeys?: TrustedKeys };
  /** Versions (app or firmware) that misbehave when a kiosk runs them, and how (BadVersionKind). */
  badVersions?: Record<string, BadVersionKind>;
  /** Every simulated kiosk's hardware model (default AK-SIM-1, as provisioned). */
  hardwareModel?: string;
  /** The versions the kiosks start on (default sim-7.0.0 and sim-1.4.2). */
  appVersion?: string;
  firmwareVersion?: string;
}

export interface Simulator {
  clients: Map<string, KioskClient>;
  /**
   * The share of its normal sales a kiosk makes now: 0.7 while it runs a "low-sales" version,
   * else 1 (give it to startSelling as rateFactor).
   */
  salesFactor(kioskId: string): number;
  /** What the kiosk runs now. */
  versions(kioskId: string): { appVersion: string; firmwareVersion: string } | undefined;
  stop(): Promise<void>;
}

export function startSimulator(options: SimulatorOptions): Simulator {
  const random = options.random ?? Math.random;
  const log = options.log ?? (() => {});
  const timers = new Set<NodeJS.Timeout>();
  const clients = new Map<string, KioskClient>();
  let stopped = false;
  const later = (ms: number, fn: () => void) => {
    if (stopped) return;
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const bad = options.badVersions ?? {};
  const badness = (client: KioskClient): BadVersionKind | undefined => bad[client.versions.appVersion] ?? bad[client.versions.firmwareVersion];
  let pinned: Promise<TrustedKeys> | undefined;
  const firstCredential = options.kiosks[0]?.deviceCredential ?? "";
  const trustedKeys = (): Promise<TrustedKeys> => {
    if (options.updates?.trustedKeys) return Promise.resolve(options.updates.trustedKeys);
    pinned ??= fetchReleaseKeys(options.updates!.apiBaseUrl, firstCredential).catch((err: unknown) => {
      pinned = undefined;
      throw err;
    });
    return pinned;
  };

  for (const { kioskId, deviceCredential } of options.kiosks) {
    const hardware = new SimulatedKiosk(random);
    const flaps = random() < (options.flappingShare ?? 0.1);
    const client = new KioskClient({
      linkAddress: options.linkUrl,
      credential: deviceCredential,
      firmwareVersion: options.firmwareVersion ?? simFirmwareVersion,
      appVersion: options.appVersion ?? simAppVersion,
      random,
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
    /** Drops the connection and comes back after `ms` (the outbox keeps collecting meanwhile). */
    const goAway = (ms: number) => {
      void client.stop().then(() => later(ms, () => !stopped && client.start()));
    };
    client
      .on("connected", (w) => log(`${kioskId} connected to ${w.linkReplica}`))
      .on("disconnected", (reason) => log(`${kioskId} disconnected: ${reason}`))
      .on("revoked", () => log(`${kioskId} revoked: no longer reconnecting`))
      .onCommand("reboot", () => goAway(3_000))
      .onCommand("restartApp", () => goAway(1_000))
      .onCommand("displayMessage", (m) => log(`${kioskId} shows "${m.text}"`))
      .onCommand("refreshCatalog", () => {})
      .onCommand("openServiceDoor", (d) => log(`${kioskId} opens its service door for ${d.technician || "a technician"}`))
      .onCommand("applyConfig", () => {})
      .onCommand("collectDiagnostics", (d) => {
        // Now and then the kiosk is busy, as real ones are.
        if (random() < 0.05) throw new Error("diagnostics already running");
        return { uptimeSeconds: Math.round(process.uptime()), logsIncluded: d.includeLogs, freeDiskMb: Math.round(2_000 + random() * 6_000) };
      })
      .onConfig((config, version) => log(`${kioskId} applies configuration v${version} (${Object.keys(config).length} keys)`));
    clients.set(kioskId, client);
    if (options.updates) {
      const updates = options.updates;
      new Updater({
        client,
        apiBaseUrl: updates.apiBaseUrl,
        credential: () => deviceCredential,
        stateDir: join(updates.stateDir, kioskId),
        hardwareModel: options.hardwareModel ?? hardwareModel,
        trustedKeys,
        boot: (info) => {
          hardware.receiptPrintingBroken = badness(client) === "no-printing";
          if (bad[info.version] === "crash") {
            hardware.receiptPrintingBroken = false;
            throw new Error(`the app crashed at boot (SIGSEGV in ${info.version})`);
          }
        },
        log: (line) => log(`${kioskId} ${line}`),
      });
    }
    hardware.receiptPrintingBroken = badness(client) === "no-printing";

    const tick = () => {
      if (stopped) return;
      client.recordTelemetry(hardware.sample());
      if (flaps && client.isConnected && random() < 0.1) goAway(2_000 + random() * 15_000);
      later(options.telemetryIntervalMs * (0.9 + random() * 0.2), tick);
    };
    client.start();
    // Spread the first samples over one interval, so the fleet does not report in lockstep.
    client.recordTelemetry(hardware.sample());
    later(random() * options.telemetryIntervalMs, tick);
  }

  return {
    clients,
    salesFactor: (kioskId) => {
      const client = clients.get(kioskId);
      return client && badness(client) === "low-sales" ? lowSalesFactor : 1;
    },
    versions: (kioskId) => clients.get(kioskId)?.versions,
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all([...clients.values()].map((c) => c.stop()));
    },
  };
}

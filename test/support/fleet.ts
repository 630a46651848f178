// A fleet on real processes for scenario tests: auth, fleet on its own database, one
// or more link replicas, and kiosks enrolled the way an admin enrolls them, driven by
// the kiosk SDK (the reference firmware).
import { inject } from "vitest";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import type { DescService } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { createDatabase, startTestService, type StartedService } from "@adminkiosk/devstack";
import { KioskClient, type KioskClientOptions } from "@adminkiosk/kiosk-sdk";
import { clientFor, startAuth, type AuthFixture } from "./auth.js";

export interface FleetFixture {
  auth: AuthFixture;
  fleet: StartedService;
  links: StartedService[];
  /** catalog, which fleet reads ticketed events from as itself (with `catalog: true`). */
  catalog?: StartedService;
  fleetDatabaseUrl: string;
  fleetEnv: Record<string, string>;
  admin: string;
  /** A fleet client as `token`'s holder (the admin by default). */
  fleetClient<S extends DescService>(service: S, token?: string): Client<S>;
  /** Registers kiosks in fleet and enrolls them at auth; returns their device credentials. */
  enroll(kioskIds: string[], fields?: { groupId?: string; tags?: string[] }): Promise<Map<string, string>>;
  /** A kiosk SDK client on the links (first address first). Stopped by stop(). */
  kiosk(credential: string, options?: Partial<KioskClientOptions>): KioskClient;
  startLink(replica: string, env?: Record<string, string>): Promise<StartedService>;
  restartFleet(how?: "SIGTERM" | "SIGKILL"): Promise<void>;
  stop(): Promise<void>;
}

export async function startFleet(options: { name: string; links?: number; fleetEnv?: Record<string, string>; linkEnv?: Record<string, string>; catalog?: boolean }): Promise<FleetFixture> {
  const infra = inject("infra");
  const auth = await startAuth();
  const shared = { REDIS_URL: auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`, SHUTDOWN_GRACE_MS: "3000" };
  const fleetDatabaseUrl = await createDatabase(infra.databaseUrl, "fleet");
  const catalog = options.catalog ? await startTestService("catalog", { ...shared, DATABASE_URL: await createDatabase(infra.databaseUrl, "catalog"), HEALTH_PROBE_INTERVAL_MS: "300" }) : undefined;
  const fleetEnv = {
    ...shared,
    ...(catalog ? { CATALOG_URL: catalog.url, ...auth.serviceEnv("fleet") } : {}),
    DATABASE_URL: fleetDatabaseUrl,
    AUTH_URL: auth.service.url,
    LINK_EVENTS_CONSUMER: `fleet-${options.name}-${process.pid}`,
    LINK_EVENTS_SINCE_START: "true",
    PRESENCE_SWEEP_MS: "1000",
    COMMAND_SWEEP_MS: "300",
    COMMAND_RESEND_MS: "3000",
    JOB_TICK_MS: "100",
    ...options.fleetEnv,
  };
  const startLink = (replica: string, env: Record<string, string> = {}) =>
    startTestService("link", { ...shared, LINK_REPLICA_ID: replica, ...options.linkEnv, ...env });
  let fleet = await startTestService("fleet", fleetEnv);
  const links = await Promise.all(Array.from({ length: options.links ?? 1 }, (_, i) => startLink(`${options.name}-link-${i}`)));
  const admin = await auth.adminToken();
  const clients: KioskClient[] = [];
  const fixture: FleetFixture = {
    auth,
    get fleet() {
      return fleet;
    },
    links,
    catalog,
    fleetDatabaseUrl,
    fleetEnv,
    admin,
    fleetClient: (service, token = admin) => clientFor(service, fleet.url, token),
    async enroll(kioskIds, fields = {}) {
      const kiosks = clientFor(KioskService, fleet.url, admin);
      const devices = auth.client(DeviceService, admin);
      const out = new Map<string, string>();
      // A few at a time: auth's enrollment limit is per IP.
      for (let i = 0; i < kioskIds.length; i += 20) {
        await Promise.all(
          kioskIds.slice(i, i + 20).map(async (kioskId) => {
            await kiosks.createKiosk({ kiosk: { kioskId, name: `Kiosk ${kioskId}`, groupId: fields.groupId ?? "", tags: fields.tags ?? [] } });
            const { code } = await devices.createEnrollmentCode({ kioskId });
            out.set(kioskId, (await auth.client(DeviceService).enrollDevice({ code })).deviceCredential);
          }),
        );
      }
      return out;
    },
    kiosk(credential, o = {}) {
      const client = new KioskClient({
        linkAddress: links.map((l) => l.url),
        credential,
        firmwareVersion: "1.0.0",
        appVersion: "1.0.0",
        backoff: { initialMs: 100, maxMs: 1_000 },
        ...o,
      });
      clients.push(client);
      return client;
    },
    startLink,
    async restartFleet(how = "SIGTERM") {
      if (how === "SIGKILL") {
        fleet.child.kill("SIGKILL");
        await fleet.exited;
      } else await fleet.stop();
      fleet = await startTestService("fleet", fleetEnv);
    },
    async stop() {
      await Promise.all(clients.map((c) => c.stop()));
      await Promise.all([fleet.stop(), ...links.map((l) => l.stop())]);
      await catalog?.stop();
      await auth.stop();
    },
  };
  return fixture;
}

/** Uploads an artifact to fleet's content-addressed store (PUT /v1/artifacts, `token`'s holder); the answer as it came (for tests of refusals). */
export function uploadArtifact(fleetUrl: string, token: string, bytes: Uint8Array): Promise<Response> {
  return fetch(`${fleetUrl}/v1/artifacts`, { method: "PUT", headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" }, body: bytes });
}

/** Uploads an artifact (an admin's token) and answers its sha256; a refusal fails the test with fleet's status and answer. */
export async function putArtifact(fleetUrl: string, token: string, bytes: Uint8Array): Promise<string> {
  const res = await uploadArtifact(fleetUrl, token, bytes);
  const body = await res.text();
  if (res.status >= 300) throw new Error(`PUT /v1/artifacts answered ${res.status}: ${body}`);
  return (JSON.parse(body) as { sha256: string }).sha256;
}

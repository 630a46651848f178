// The authorization matrix: every RPC in proto/ (found in the generated descriptors, so
// a new RPC is covered without writing a test), called on the real service process by
// every kind of principal, gets exactly what its (adminkiosk.common.v1.access) option
// says: no credential → Unauthenticated unless public; a person below the least role, a
// kiosk device where devices are not allowed, a service not named → PermissionDenied;
// everyone the rule admits gets past authorization (whatever the empty request then
// earns: InvalidArgument, NotFound, an answer). A device acting for another kiosk is
// refused or finds nothing.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Role } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";
import { createDatabase, repoRoot, startTestService, type StartedService } from "@adminkiosk/devstack";
import { accessRuleOf } from "@adminkiosk/runtime";
import { startSale, type SaleFixture } from "../../services/orders/test/fixture.js";
import { bearer, freshToken } from "../support/auth.js";

type Who = "nobody" | "viewer" | "operator" | "admin" | "device (own kiosk)" | "device (another kiosk)" | "service orders" | "service fleet";
const everyone: Who[] = ["nobody", "viewer", "operator", "admin", "device (own kiosk)", "device (another kiosk)", "service orders", "service fleet"];
const roles: Partial<Record<Who, Role>> = { viewer: Role.VIEWER, operator: Role.OPERATOR, admin: Role.ADMIN };
const ownKiosk = "matrix-a";

/**
 * Packages no single process owns: the runtime mounts their services in several processes,
 * and each of those is checked. adminkiosk.ops.v1 (DeadLetterService) is served by every
 * service that runs a durable JetStream consumer.
 */
const sharedPackages: Record<string, string[]> = { ops: ["fleet", "orders", "ai", "notifications", "customers"] };

/** Every service in the generated code, once per process that serves it (adminkiosk.<process>.v1, or sharedPackages). */
async function servicesInProto(): Promise<{ process: string; service: DescService }[]> {
  const root = join(repoRoot, "packages/proto/src/gen/adminkiosk");
  const found: { process: string; service: DescService }[] = [];
  for (const dir of readdirSync(root)) {
    const versionDir = join(root, dir, "v1");
    let files: string[];
    try {
      files = readdirSync(versionDir).filter((f) => f.endsWith("_pb.ts"));
    } catch {
      continue;
    }
    for (const file of files) {
      const mod = (await import(pathToFileURL(join(versionDir, file)).href)) as Record<string, unknown>;
      for (const value of Object.values(mod)) {
        const desc = value as Partial<DescService>;
        if (!desc || desc.kind !== "service" || !desc.typeName?.startsWith("adminkiosk.")) continue;
        const pkg = desc.typeName.split(".")[1]!;
        for (const process of sharedPackages[pkg] ?? [pkg]) found.push({ process, service: desc as DescService });
      }
    }
  }
  return found;
}

/** What the rule says `who` gets. */
function admitted(method: DescMethod, who: Who): boolean {
  const rule = accessRuleOf(method);
  if (!rule) return false;
  if (rule.public) return true;
  if (who === "nobody") return false;
  if (who.startsWith("device")) return rule.allowDevice;
  if (who.startsWith("service")) return rule.services.includes(who.slice("service ".length));
  return rule.minRole !== Role.UNSPECIFIED && roles[who]! >= rule.minRole;
}

/** The code a call ends with (OK when it answers; a server stream counts as answered at its first message). */
async function outcome(client: Client<DescService>, method: DescMethod, who: Who): Promise<Code | "ok"> {
  // Devices ask for the own kiosk's data (the other device thereby for another kiosk's);
  // everyone else names a kiosk that does not exist, so an admitted admin's RevokeDevice
  // or DeleteKiosk changes nothing the other calls rely on.
  const hasKioskField = method.input.fields.some((f) => f.name === "kiosk_id");
  const request = hasKioskField ? { kioskId: who.startsWith("device") ? ownKiosk : "matrix-nowhere" } : {};
  const call = (client as unknown as Record<string, (...args: unknown[]) => unknown>)[method.localName]!;
  const abort = new AbortController();
  const options = { timeoutMs: 30_000, signal: abort.signal };
  try {
    if (method.methodKind === "unary") await call(request, options);
    // A client stream (ai's ImportHistory) sends no message and answers once.
    else if (method.methodKind === "client_streaming") await call((async function* () {})(), options);
    else {
      const input = method.methodKind === "server_streaming" ? request : (async function* () {})();
      for await (const _ of call(input, options) as AsyncIterable<unknown>) {
        abort.abort();
        break;
      }
    }
    return "ok";
  } catch (err) {
    const e = ConnectError.from(err);
    return abort.signal.aborted && e.code === Code.Canceled ? "ok" : e.code;
  }
}

let f: SaleFixture;
let fleet: StartedService;
let link: StartedService;
let notifications: StartedService;
let ai: StartedService;
let customers: StartedService;
const urls: Record<string, string> = {};
const tokens: Partial<Record<Who, () => Promise<string>>> = {};

beforeAll(async () => {
  const infra = inject("infra");
  f = await startSale();
  const shared = { REDIS_URL: f.auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${f.auth.service.url}/.well-known/jwks.json`, SHUTDOWN_GRACE_MS: "3000" };
  [fleet, link, ai, customers] = await Promise.all([
    createDatabase(infra.databaseUrl, "fleet").then((db) =>
      startTestService("fleet", { ...shared, DATABASE_URL: db, AUTH_URL: f.auth.service.url, LINK_EVENTS_CONSUMER: `fleet-matrix-${process.pid}`, LINK_EVENTS_SINCE_START: "true" }),
    ),
    startTestService("link", { ...shared, LINK_REPLICA_ID: "link-matrix" }),
    createDatabase(infra.databaseUrl, "ai").then((db) => startTestService("ai", { ...shared, DATABASE_URL: db })),
    createDatabase(infra.databaseUrl, "customers").then((db) =>
      startTestService("customers", { ...shared, DATABASE_URL: db, ORDERS_EVENTS_CONSUMER: `customers-matrix-${process.pid}`, CATALOG_EVENTS_CONSUMER: `customers-catalog-matrix-${process.pid}`, EVENTS_SINCE_START: "true" }),
    ),
  ]);
  notifications = await createDatabase(infra.databaseUrl, "notifications").then((db) =>
    startTestService("notifications", { ...shared, DATABASE_URL: db, SMTP_URL: "smtp://127.0.0.1:9", LINK_EVENTS_CONSUMER: `notifications-matrix-${process.pid}`, LINK_EVENTS_SINCE_START: "true" }),
  );
  urls["notifications"] = notifications.url;
  Object.assign(urls, { auth: f.auth.service.url, fleet: fleet.url, link: link.url, catalog: f.catalog.url, orders: f.orders.url, payments: f.payments.url, ai: ai.url, customers: customers.url });
  const [viewer, operator, own, other] = await Promise.all([f.auth.userWithRole(Role.VIEWER), f.auth.userWithRole(Role.OPERATOR), f.device(ownKiosk), f.device("matrix-b")]);
  Object.assign(tokens, {
    viewer: viewer.token,
    operator: operator.token,
    admin: f.auth.adminToken,
    "device (own kiosk)": async () => own,
    "device (another kiosk)": async () => other,
    "service orders": freshToken(() => f.auth.serviceToken("orders")),
    "service fleet": freshToken(() => f.auth.serviceToken("fleet")),
  });
}, 180_000);

afterAll(async () => {
  await notifications?.stop();
  await Promise.all([fleet?.stop(), link?.stop(), ai?.stop(), customers?.stop()]);
  await f?.stop();
});

describe("the authorization matrix", () => {
  it("covers every RPC in proto/, each by every kind of principal, as its access option says", async () => {
    const services = await servicesInProto();
    expect(services.length).toBeGreaterThanOrEqual(20);
    const wrong: string[] = [];
    let calls = 0;
    for (const { process, service } of services) {
      const url = urls[process];
      expect(url, `a process serving ${service.typeName}`).toBeDefined();
      for (const method of service.methods) {
        const rule = accessRuleOf(method);
        expect(rule, `${service.typeName}/${method.name} has an access rule`).toBeDefined();
        for (const who of everyone) {
          const token = tokens[who];
          const transport = createGrpcTransport({ baseUrl: url!, interceptors: token ? [bearer(token)] : [] });
          const got = await outcome(createClient(service, transport), method, who);
          calls++;
          const name = `${service.typeName.split(".")[1]}.${service.name}/${method.name} on ${process} as ${who}`;
          const refused = got === Code.Unauthenticated || got === Code.PermissionDenied;
          if (rule!.public) {
            if (got === Code.PermissionDenied) wrong.push(`${name}: public, but PermissionDenied`);
          } else if (!admitted(method, who)) {
            const expected = who === "nobody" ? Code.Unauthenticated : Code.PermissionDenied;
            if (got !== expected) wrong.push(`${name}: expected ${Code[expected]}, got ${got === "ok" ? "an answer" : Code[got]}`);
          } else if (who === "device (another kiosk)" && method.input.fields.some((fd) => fd.name === "kiosk_id")) {
            // Admitted by the rule, but asking for another kiosk's data: refused, or nothing there.
            if (got !== Code.PermissionDenied && got !== Code.NotFound) wrong.push(`${name}: acting for ${ownKiosk}, expected PermissionDenied or NotFound, got ${got === "ok" ? "an answer" : Code[got]}`);
          } else if (refused) wrong.push(`${name}: admitted by its rule, but ${Code[got as Code]}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(calls).toBe(services.reduce((n, s) => n + s.service.methods.length, 0) * everyone.length);
  }, 600_000);
});

// customers with the services around it as real processes: catalog restocking a product at a
// kiosk turns a back-in-stock request into exactly one email at the local SMTP server (the dev
// mailbox notifications sends to) — also a restock at a kiosk near the one asked at, or of its
// group, when the request says so (kiosks' places from fleet's registry) — and a kiosk's call for
// help (the kiosk online on link through the kiosk SDK's client) reaches its group's operators as
// a help_requested alert (and its email), acknowledged and resolved like any alert.
import pg from "pg";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { InventoryService, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { BackInStockService, BackInStockState, HelpCaller, HelpService } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { AlertService, AlertState, RuleService, Severity } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { createDatabase, eventually, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { KioskClient } from "@adminkiosk/kiosk-sdk";
import { clientFor, failure } from "../../../test/support/auth.js";
import { startNotifications, type NotificationsFixture } from "../../notifications/test/fixture.js";
import { startCustomers, type CustomersFixture } from "./fixture.js";

const run = `${process.pid}-${Date.now().toString(36)}`;
let n: NotificationsFixture;
let c: CustomersFixture;
let catalog: StartedService;

beforeAll(async () => {
  const unique = (name: string) => `${name}-${run}`;
  n = await startNotifications({
    TELEMETRY_EVENTS_CONSUMER: unique("n-telemetry"),
    CATALOG_EVENTS_CONSUMER: unique("n-catalog"),
    PAYMENTS_EVENTS_CONSUMER: unique("n-payments"),
    ORDERS_EVENTS_CONSUMER: unique("n-orders"),
    SILENT_FAILURE_EVENTS_CONSUMER: unique("n-silent"),
    SERVICE_HEALTH_CONSUMER: unique("n-health"),
    CUSTOMERS_EVENTS_CONSUMER: unique("n-customers"),
    COMMERCE_EVENTS_SINCE_START: "true",
  }, { link: { HEARTBEAT_INTERVAL_SECONDS: "1", SILENT_TIMEOUT_SECONDS: "10" } });
  const infra = inject("infra");
  [c, catalog] = await Promise.all([
    startCustomers({}, n.auth),
    createDatabase(infra.databaseUrl, "catalog").then((db) =>
      startTestService("catalog", { DATABASE_URL: db, REDIS_URL: n.auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${n.auth.service.url}/.well-known/jwks.json`, SHUTDOWN_GRACE_MS: "2000" }),
    ),
  ]);
}, 180_000);
afterAll(async () => {
  await Promise.all([c?.stop(), catalog?.stop()]);
  await n?.stop();
});

describe("back in stock", () => {
  it("sends exactly one email at the local SMTP server once catalog restocks the product at that kiosk", async () => {
    const kiosk = `bis-${run}`;
    const other = `bis-other-${run}`;
    const sku = `juice-${run}`;
    const buyer = `buyer-${run}@example.com`;
    await clientFor(ProductService, catalog.url, n.tokens.admin).createProduct({
      product: { sku, name: "Orange juice", category: "drinks", priceMinor: 250n, currency: "EUR", taxRateBasisPoints: 2100, active: true },
    });
    const inventory = clientFor(InventoryService, catalog.url, n.tokens.operator);
    const device = await c.device(kiosk);
    const atKiosk = c.as(BackInStockService, device);
    const { request } = await atKiosk.requestBackInStock({ sku, email: buyer });
    expect(request).toMatchObject({ kioskId: kiosk, state: BackInStockState.WAITING });
    expect(request!.email).toBe(`b***@example.com`);
    // Asking twice keeps one request.
    expect((await atKiosk.requestBackInStock({ sku, email: buyer })).request!.requestId).toBe(request!.requestId);
    // Bad contacts are refused naming the field.
    const badEmail = await failure(atKiosk.requestBackInStock({ sku, email: "buyer@" }));
    expect([badEmail.code, badEmail.rawMessage]).toEqual([Code.InvalidArgument, expect.stringMatching(/^email:/)]);
    const badPhone = await failure(atKiosk.requestBackInStock({ sku, phone: "12345" }));
    expect([badPhone.code, badPhone.rawMessage]).toEqual([Code.InvalidArgument, expect.stringMatching(/^phone:/)]);
    // A kiosk asks for itself only.
    expect((await failure(atKiosk.requestBackInStock({ kioskId: other, sku, email: buyer }))).code).toBe(Code.PermissionDenied);

    // A restock at another kiosk is not this one's.
    await inventory.restock({ kioskId: other, sku, quantity: 5n, reason: "delivery" });
    // The restock here: one email; a second restock right after sends nothing more.
    await inventory.restock({ kioskId: kiosk, sku, quantity: 3n, reason: "delivery" });
    await inventory.restock({ kioskId: kiosk, sku, quantity: 2n, reason: "delivery" });
    const mails = () => n.mailbox.messages().filter((m) => m.to.includes(buyer));
    await expect.poll(() => mails().length, eventually).toBe(1);
    expect(mails()[0]!.subject).toBe(`${sku} is back at kiosk ${kiosk}`);
    expect(mails()[0]!.text).toContain(`${sku} is back in stock at kiosk ${kiosk}`);
    // customers forgot the address once it handed the request over.
    const listed = await c.as(BackInStockService, n.tokens.viewer).listBackInStockRequests({ kioskId: kiosk, sku });
    expect(listed.requests.map((r) => [r.requestId, r.state, r.email])).toEqual([[request!.requestId, BackInStockState.NOTIFIED, ""]]);
    // Still one, after a later restock and after another request's email went out (the delivery worker has moved on).
    const later = `later-${run}@example.com`;
    await atKiosk.requestBackInStock({ sku, email: later });
    await inventory.restock({ kioskId: kiosk, sku, quantity: 1n, reason: "delivery" });
    await expect.poll(() => n.mailbox.messages().filter((m) => m.to.includes(later)).length, eventually).toBe(1);
    expect(mails()).toHaveLength(1);
  });

  it("a request at kiosk A for nearby kiosks or A's group is met once by a restock at a kiosk in scope, the email naming it; a far kiosk's restock sends nothing", async () => {
    const [a, near, far, grouped] = ["a", "near", "far", "grouped"].map((k) => `bis-${k}-${run}`) as [string, string, string, string];
    const group = `bis-group-${run}`;
    const registry = clientFor(KioskService, n.fleet.url, n.tokens.admin);
    // Prague's Old Town Square, a kiosk 1.8 km away, one in Brno (185 km) and one of A's group in Ostrava (280 km).
    await registry.createKiosk({ kiosk: { kioskId: a, name: a, groupId: group, location: { latitude: 50.0875, longitude: 14.4213, address: "Staroměstské nám. 1, Praha" } } });
    await registry.createKiosk({ kiosk: { kioskId: near, name: near, location: { latitude: 50.0755, longitude: 14.4378, address: "Václavské nám. 68, Praha" } } });
    await registry.createKiosk({ kiosk: { kioskId: far, name: far, location: { latitude: 49.1951, longitude: 16.6068, address: "nám. Svobody 1, Brno" } } });
    await registry.createKiosk({ kiosk: { kioskId: grouped, name: grouped, groupId: group, location: { latitude: 49.8209, longitude: 18.2625, address: "Masarykovo nám. 1, Ostrava" } } });
    // customers keeps kiosks' places from fleet's events: wait until it holds the four.
    const db = new pg.Pool({ connectionString: c.databaseUrl, max: 1 });
    try {
      await waitFor("customers to know the kiosks' places", async () =>
        (await db.query("SELECT count(*)::int AS n FROM customers.kiosk_places WHERE kiosk_id = ANY($1) AND latitude IS NOT NULL", [[a, near, far, grouped]])).rows[0].n === 4 ? true : undefined,
      );
    } finally {
      await db.end();
    }
    const [snack, drink] = [`snack-${run}`, `drink-${run}`];
    for (const sku of [snack, drink])
      await clientFor(ProductService, catalog.url, n.tokens.admin).createProduct({ product: { sku, name: sku, category: "food", priceMinor: 150n, currency: "EUR", taxRateBasisPoints: 2100, active: true } });
    const atA = c.as(BackInStockService, await c.device(a));
    const badScope = await failure(atA.requestBackInStock({ sku: snack, email: "x@example.com", nearbyKm: 51 }));
    expect([badScope.code, badScope.rawMessage]).toEqual([Code.InvalidArgument, expect.stringMatching(/^nearby_km:/)]);
    const nearbyBuyer = `nearby-${run}@example.com`;
    const groupBuyer = `group-${run}@example.com`;
    const { request } = await atA.requestBackInStock({ sku: snack, email: nearbyBuyer, nearbyKm: 5 });
    expect(request).toMatchObject({ kioskId: a, nearbyKm: 5, sameGroup: false });
    await atA.requestBackInStock({ sku: drink, email: groupBuyer, sameGroup: true });

    const inventory = clientFor(InventoryService, catalog.url, n.tokens.operator);
    // Far away (and not of the group) first, then the kiosk nearby / of the group, then A itself:
    // restocks are applied in order, so an email naming the second kiosk means the first met nothing.
    for (const sku of [snack, drink]) await inventory.restock({ kioskId: far, sku, quantity: 4n, reason: "delivery" });
    await inventory.restock({ kioskId: near, sku: snack, quantity: 4n, reason: "delivery" });
    await inventory.restock({ kioskId: grouped, sku: drink, quantity: 4n, reason: "delivery" });
    for (const sku of [snack, drink]) await inventory.restock({ kioskId: a, sku, quantity: 4n, reason: "delivery" });
    const to = (address: string) => n.mailbox.messages().filter((m) => m.to.includes(address));
    await expect.poll(() => to(nearbyBuyer).length, eventually).toBe(1);
    await expect.poll(() => to(groupBuyer).length, eventually).toBe(1);
    expect(to(nearbyBuyer)[0]!.subject).toBe(`${snack} is back at kiosk ${near}`);
    expect(to(nearbyBuyer)[0]!.text).toContain(`${snack} is back in stock at kiosk ${near} (Václavské nám. 68, Praha), 1.8 km from kiosk ${a} where you asked`);
    expect(to(groupBuyer)[0]!.subject).toBe(`${drink} is back at kiosk ${grouped}`);
    expect(to(groupBuyer)[0]!.text).toContain(`at kiosk ${grouped} (Masarykovo nám. 1, Ostrava)`);
    const listed = await c.as(BackInStockService, n.tokens.viewer).listBackInStockRequests({ kioskId: a, sku: snack });
    expect(listed.requests.map((r) => [r.state, r.notifiedKioskId])).toEqual([[BackInStockState.NOTIFIED, near]]);
    // The restock at A after it sent nothing more (the request was met once).
    const after = `after-${run}@example.com`;
    await atA.requestBackInStock({ sku: snack, email: after });
    await inventory.restock({ kioskId: a, sku: snack, quantity: 1n, reason: "delivery" });
    await expect.poll(() => to(after).length, eventually).toBe(1);
    expect([to(nearbyBuyer).length, to(groupBuyer).length]).toEqual([1, 1]);
  });
});

describe("call for help", () => {
  it("reaches the operators of the kiosk's group as an alert with the kiosk's live state, acknowledged and resolved like any alert", async () => {
    const group = `help-${run}`;
    const kiosk = `help-${run}`;
    const outside = `help-outside-${run}`;
    const operators = `ops-${run}@example.com`;
    const registry = clientFor(KioskService, n.fleet.url, n.tokens.admin);
    await registry.createKiosk({ kiosk: { kioskId: outside, name: outside, groupId: `elsewhere-${run}` } });
    await registry.createKiosk({ kiosk: { kioskId: kiosk, name: kiosk, groupId: group } });
    const { rule } = await n.as(RuleService, n.tokens.admin).createRule({
      definition: { name: `help ${group}`, severity: Severity.CRITICAL, kind: { case: "helpRequested", value: {} }, matcher: { groupIds: [group] }, receivers: { emails: [operators] } },
    });
    // notifications knows the kiosk's group (fleet's events) and telemetry (link's) once a low-paper
    // rule on the group fires for it: only then is the call's alert a matter of customers' event.
    const paper = await n.as(RuleService, n.tokens.admin).createRule({
      definition: { name: `paper ${group}`, severity: Severity.INFO, kind: { case: "lowPaper", value: { belowPercent: 50, forDuration: { seconds: 0n, nanos: 1_000_000 } } }, matcher: { groupIds: [group] }, receivers: { emails: [`paper-${run}@example.com`] } },
    });
    // The kiosk is online on link with its one device credential (enrolling another would revoke it
    // and end the stream), through the kiosk SDK's client heartbeating as link's welcome says
    // (every second here; link drops a kiosk silent for 10 s), and has reported telemetry.
    const device = await c.device(kiosk);
    const online = new KioskClient({ linkAddress: n.link.url, credential: device, firmwareVersion: "1.0.0", appVersion: "1.0.0", backoff: { initialMs: 100, maxMs: 1_000 } });
    online.start();
    await n.publishTelemetry(kiosk, { paperLevelPercent: 42 });
    const alerts = n.as(AlertService, n.tokens.operator);
    await waitFor("notifications to know the kiosk's group and telemetry", async () => (await alerts.listAlerts({ ruleId: paper.rule!.ruleId, states: [AlertState.FIRING] })).alerts[0]);
    // Another kiosk's call (outside the group) alerts nobody on this rule; a call naming another kiosk is refused.
    await c.as(HelpService, await c.device(outside)).callForHelp({ caller: HelpCaller.BUYER });
    expect((await failure(c.as(HelpService, device).callForHelp({ kioskId: outside, caller: HelpCaller.BUYER }))).code).toBe(Code.PermissionDenied);
    const missingCaller = await failure(c.as(HelpService, device).callForHelp({}));
    expect([missingCaller.code, missingCaller.rawMessage]).toEqual([Code.InvalidArgument, expect.stringMatching(/^caller:/)]);

    const called = Date.now();
    await c.as(HelpService, device).callForHelp({ caller: HelpCaller.BUYER, message: "The card reader ate my card" });
    const alert = await waitFor("the help alert to fire", async () => (await alerts.listAlerts({ ruleId: rule!.ruleId, states: [AlertState.FIRING] })).alerts[0]);
    const firedAfterMs = Date.now() - called;
    console.log(`call for help → firing alert listed after ${firedAfterMs} ms: ${alert.summary}`);
    expect(alert.kioskId).toBe(kiosk);
    expect(alert.groupId).toBe(group);
    expect(alert.summary).toContain("help requested by a buyer");
    expect(alert.summary).toContain("The card reader ate my card");
    expect(alert.summary).toMatch(/live state: online since .*paper 42 %/);
    const mail = await waitFor("the operators' email", async () => n.mailbox.messages().find((m) => m.to.includes(operators)));
    expect(mail.text).toContain(kiosk);
    expect(mail.subject).toMatch(/help/);
    // Only the group's kiosk alerted.
    expect((await alerts.listAlerts({ ruleId: rule!.ruleId })).alerts.map((a) => a.kioskId)).toEqual([kiosk]);
    // Acknowledged and resolved like other alerts.
    const { alert: acked } = await alerts.acknowledgeAlert({ alertId: alert.alertId });
    expect(acked!.state).toBe(AlertState.ACKNOWLEDGED);
    const { alert: resolved } = await alerts.resolveAlert({ alertId: alert.alertId });
    expect(resolved!.state).toBe(AlertState.RESOLVED);
    await online.stop();
  });
});

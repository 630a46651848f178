// customers with the services around it as real processes: catalog restocking a product at a
// kiosk turns a back-in-stock request into exactly one email at the local SMTP server (the dev
// mailbox notifications sends to), and a kiosk's call for help reaches its group's operators as a
// help_requested alert (and its email), acknowledged and resolved like any alert.
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { InventoryService, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { BackInStockService, BackInStockState, HelpCaller, HelpService } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { LinkService, type ConnectRequestSchema } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { AlertService, AlertState, RuleService, Severity } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { createDatabase, eventually, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { bearer, clientFor, failure } from "../../../test/support/auth.js";
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
  });
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
    // and end the stream), heartbeating (link drops a silent kiosk), and has reported telemetry.
    const device = await c.device(kiosk);
    const online = connectKiosk(n.link.url, device);
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
    online.stop();
  });
});

/** A kiosk's stream to link with `credential`: hello, then a heartbeat every 300 ms until stopped. */
function connectKiosk(linkUrl: string, credential: string): { stop(): void } {
  const abort = new AbortController();
  async function* up(): AsyncGenerator<MessageInitShape<typeof ConnectRequestSchema>> {
    yield { body: { case: "hello", value: { firmwareVersion: "1.0.0", appVersion: "1.0.0" } } };
    while (!abort.signal.aborted) {
      await new Promise((r) => setTimeout(r, 300));
      yield { body: { case: "heartbeat", value: {} } };
    }
  }
  const client = createClient(LinkService, createGrpcTransport({ baseUrl: linkUrl, interceptors: [bearer(credential)] }));
  void (async () => {
    try {
      for await (const _ of client.connect(up(), { signal: abort.signal }));
    } catch {
      // Ended by stop() (or by the test's end).
    }
  })();
  return { stop: () => abort.abort() };
}

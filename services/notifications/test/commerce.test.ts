// notifications beside a real sale path: auth, catalog, payments with its provider simulator
// and orders (orders' test fixture), notifications reading their events, a real SMTP server
// (the dev mailbox), the SMS simulator process and a local Web Push service (web-push-testing).
// Buyer receipts by email, the low_stock, payment_failure_rate, orders_stuck and silent_failure
// rule kinds, SMS with retries, Web Push.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { simpleParser } from "mailparser";
import webpush from "web-push";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SilentFailureEventSchema } from "@adminkiosk/proto/adminkiosk/ai/v1/maintenance_events_pb";
import { KioskRegistryEventSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/events_pb";
import { InventoryService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { AlertService, AlertState, Channel, DeliveryService, DeliveryState, RuleService, Severity, type Alert } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { SubscriptionService } from "@adminkiosk/proto/adminkiosk/notifications/v1/policy_pb";
import { PushService } from "@adminkiosk/proto/adminkiosk/notifications/v1/push_pb";
import { ReceiptRequestState, ReceiptService } from "@adminkiosk/proto/adminkiosk/notifications/v1/receipts_pb";
import { createDatabase, eventually, freePort, startTestProgram, startTestService, waitFor, waitForPort, type StartedService } from "@adminkiosk/devstack";
import { inject } from "vitest";
import { aiSubjects, ensureStream, fleetSubjects } from "@adminkiosk/runtime";
import { clientFor } from "../../../test/support/auth.js";
import { startSale, type SaleFixture } from "../../orders/test/fixture.js";
import { startMailbox, type Mailbox } from "../src/dev-mailbox/mailbox.js";

let f: SaleFixture;
let notifications: StartedService;
let mailbox: Mailbox;
let sms: StartedService;
let pushService: { url: string; stop(): Promise<void> };
const smsKey = randomBytes(24).toString("hex");
const vapid = webpush.generateVAPIDKeys();
const suffix = randomBytes(4).toString("hex");

/** web-push-testing's server (a real local push service) as its own process. */
async function startPushService(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const entry = join(dirname(createRequire(import.meta.url).resolve("web-push-testing/package.json")), "src/bin/server.js");
  const child = spawn(process.execPath, [entry, String(port)], { stdio: "ignore" });
  await waitForPort(port, 30_000, "web-push-testing");
  return {
    url: `http://localhost:${port}`,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

beforeAll(async () => {
  const infra = inject("infra");
  [f, mailbox, pushService] = await Promise.all([startSale({ payments: { PAYMENT_CONFIRM_TIMEOUT: "20s" } }), startMailbox(), startPushService()]);
  sms = await startTestProgram("sms-sim", "services/notifications/src/sms-sim/main.ts", "SMS_SIM_PORT", { SMS_API_KEY: smsKey });
  notifications = await startTestService("notifications", {
    DATABASE_URL: await createDatabase(infra.databaseUrl, "notifications"),
    REDIS_URL: f.auth.redisUrl,
    NATS_URL: infra.natsUrl,
    AUTH_JWKS_URL: `${f.auth.service.url}/.well-known/jwks.json`,
    ...f.auth.serviceEnv("notifications"),
    ORDERS_URL: f.orders.url,
    SMTP_URL: `smtp://127.0.0.1:${mailbox.smtpPort}`,
    SMS_PROVIDER_URL: sms.url,
    SMS_API_KEY: smsKey,
    WEB_PUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
    WEB_PUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
    LINK_EVENTS_CONSUMER: `n-link-${suffix}`,
    LINK_EVENTS_SINCE_START: "true",
    FLEET_EVENTS_CONSUMER: `n-fleet-${suffix}`,
    FLEET_EVENTS_SINCE_START: "true",
    AI_EVENTS_CONSUMER: `n-ai-${suffix}`,
    AI_EVENTS_SINCE_START: "true",
    TELEMETRY_EVENTS_CONSUMER: `n-telemetry-${suffix}`,
    CATALOG_EVENTS_CONSUMER: `n-catalog-${suffix}`,
    PAYMENTS_EVENTS_CONSUMER: `n-payments-${suffix}`,
    ORDERS_EVENTS_CONSUMER: `n-orders-${suffix}`,
    SILENT_FAILURE_EVENTS_CONSUMER: `n-silent-${suffix}`,
    COMMERCE_EVENTS_SINCE_START: "true",
    GROUP_WAIT: "500ms",
    GROUP_INTERVAL: "500ms",
    SWEEP_MS: "200",
    DELIVERY_MAX_ATTEMPTS: "4",
    DELIVERY_RETRY_INITIAL: "100ms",
    DELIVERY_RETRY_MAX: "400ms",
    DELIVERY_TIMEOUT: "3s",
    HEALTH_PROBE_INTERVAL_MS: "300",
    SHUTDOWN_GRACE_MS: "2000",
  });
  await waitFor("notifications to verify tokens", async () => (await as(RuleService, f.tokens.admin).listRules({ pageSize: 1 }), true), {
    timeout: 60_000,
    interval: 300,
    retry: (err) => ConnectError.from(err).code === Code.Unavailable,
  });
}, 180_000);

afterAll(async () => {
  await notifications?.stop();
  await sms?.stop();
  await pushService?.stop();
  await mailbox?.close();
  await f?.stop();
});

const as = <S extends Parameters<typeof clientFor>[0]>(service: S, token: string) => clientFor(service, notifications.url, token);
const seconds = (s: number) => ({ seconds: BigInt(s), nanos: 0 });

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}

/** The rule's alerts for one kiosk. */
async function alertsOf(ruleId: string, kioskId: string): Promise<Alert[]> {
  return (await as(AlertService, f.tokens.viewer).listAlerts({ ruleId, pageSize: 100 })).alerts.filter((a) => a.kioskId === kioskId);
}

async function mailTo(address: string) {
  const m = await waitFor(`mail to ${address}`, () => mailbox.messages().find((x) => x.to.includes(address)));
  const parsed = await simpleParser(m.raw);
  return { subject: parsed.subject ?? "", text: parsed.text ?? "" };
}

async function sale(kioskId: string, credential: string, items: { sku: string; quantity: bigint }[], seats: { eventId: string; seatId: string }[] = []) {
  const { order } = await f.ordersAs(credential).createOrder({ idempotencyKey: randomUUID(), items, seats, paymentMethod: "pm_card_visa" });
  return order!;
}

describe("buyer receipts", () => {
  it("a receipt email with the sale's lines and tickets arrives at the address given at the kiosk; the address is then masked", async () => {
    const kiosk = await f.device("kiosk-receipt");
    await f.product(`gum-${suffix}`, 150n, { "kiosk-receipt": 10n });
    const { eventId, seatIds } = await f.event(2);
    const order = await sale("kiosk-receipt", kiosk, [{ sku: `gum-${suffix}`, quantity: 2n }], [{ eventId, seatId: seatIds[0]! }]);
    const done = await f.waitFor(kiosk, order.orderId, [OrderState.COMPLETED]);

    const receipts = as(ReceiptService, kiosk);
    expect((await refusal(receipts.requestReceipt({ orderId: order.orderId, email: "not an address" }))).message).toContain("email");
    expect((await refusal(receipts.requestReceipt({ orderId: "nope", email: "buyer@example.com" }))).message).toContain("order_id");
    // Another kiosk cannot ask for this kiosk's order.
    const other = await f.device("kiosk-receipt-other");
    expect((await refusal(as(ReceiptService, other).requestReceipt({ orderId: order.orderId, email: "thief@example.com" }))).code).toBe(Code.NotFound);

    const answer = await receipts.requestReceipt({ orderId: order.orderId, email: "Buyer.One@Example.com" });
    expect(answer.state).toBe(ReceiptRequestState.SENDING);
    const mail = await mailTo("buyer.one@example.com");
    expect(mail.subject).toContain(done.receipt!.receiptNumber);
    expect(mail.text).toContain(`gum-${suffix}`);
    expect(mail.text).toContain(done.tickets[0]!.ticketId);
    expect(mail.text).toContain(done.tickets[0]!.qrPayload);
    expect(mailbox.messages().some((m) => m.to.includes("thief@example.com"))).toBe(false);

    // Sent: the delivery log keeps the attempt, not the address.
    await expect
      .poll(async () => (await as(DeliveryService, f.tokens.viewer).listDeliveries({ channel: Channel.EMAIL, pageSize: 100 })).deliveries.find((d) => d.orderId === order.orderId), eventually)
      .toMatchObject({ state: DeliveryState.DELIVERED, target: "b***@example.com", ruleId: "" });
  }, 60_000);

  it("asked while the payment is pending, the receipt goes once orders publishes the completion", async () => {
    const kiosk = await f.device("kiosk-receipt-early");
    await f.product(`tea-${suffix}`, 300n, { "kiosk-receipt-early": 5n });
    await f.nextCharges("delay_webhook", { delay_ms: 2_500 });
    const order = await sale("kiosk-receipt-early", kiosk, [{ sku: `tea-${suffix}`, quantity: 1n }]);
    const answer = await as(ReceiptService, kiosk).requestReceipt({ orderId: order.orderId, email: "early@example.com" });
    expect(answer.state).toBe(ReceiptRequestState.WAITING);
    expect(mailbox.messages().some((m) => m.to.includes("early@example.com"))).toBe(false);
    await f.waitFor(kiosk, order.orderId, [OrderState.COMPLETED]);
    const mail = await mailTo("early@example.com");
    expect(mail.text).toContain(`tea-${suffix}`);
    expect(mail.text).toContain(order.orderId);
  }, 60_000);
});

describe("rule kinds from catalog, payments and orders", () => {
  it("low_stock alerts per product from catalog's events, by email and SMS (the provider failing twice first), and resolves on restock", async () => {
    const rules = as(RuleService, f.tokens.admin);
    // Validation names the field.
    for (const [kind, field] of [
      [{ case: "paymentFailureRate", value: { threshold: 100, window: seconds(600) } }, "definition.payment_failure_rate.threshold"],
      [{ case: "paymentFailureRate", value: { threshold: 20, window: seconds(-60) } }, "definition.payment_failure_rate.window"],
      [{ case: "ordersStuck", value: { forDuration: seconds(-1) } }, "definition.orders_stuck.for_duration"],
      [{ case: "lowStock", value: { sku: "a.b" } }, "definition.low_stock.sku"],
    ] as const) {
      const err = await refusal(rules.createRule({ definition: { name: "bad", severity: Severity.WARNING, kind: kind as never } }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.message).toContain(field);
    }
    const badPhone = await refusal(rules.createRule({ definition: { name: "bad", severity: Severity.WARNING, kind: { case: "lowStock", value: {} }, receivers: { phoneNumbers: ["0601 234"] } } }));
    expect(badPhone.message).toContain("definition.receivers.phone_numbers[0]");

    const sku = `cola-${suffix}`;
    const { rule } = await rules.createRule({
      definition: { name: "low stock", severity: Severity.WARNING, kind: { case: "lowStock", value: { sku } }, receivers: { emails: ["stock@example.com"], phoneNumbers: ["+420 601 234 567"] } },
    });
    await fetch(`${sms.url}/control/fail`, { method: "POST", headers: { authorization: `Bearer ${smsKey}`, "content-type": "application/json" }, body: JSON.stringify({ count: 2 }) });
    await f.product(sku, 100n, { "kiosk-stock": 3n });
    await f.catalogAs(InventoryService, f.tokens.operator).setLowStockThreshold({ kioskId: "kiosk-stock", sku, lowStockThreshold: 5n });

    await expect.poll(async () => (await alertsOf(rule!.ruleId, "kiosk-stock")).map((a) => [a.state, a.labels["sku"]]), eventually).toEqual([[AlertState.FIRING, sku]]);
    const mail = await mailTo("stock@example.com");
    expect(mail.text).toContain(`product ${sku} is low on stock (3 on hand, threshold 5)`);
    // SMS: failed twice at the provider, then sent once (the Idempotency-Key keeps a retry one message).
    const sent = await waitFor("the SMS", async () => {
      const res = await fetch(`${sms.url}/v1/messages?to=%2B420601234567`, { headers: { authorization: `Bearer ${smsKey}` } });
      const { data } = (await res.json()) as { data: { text: string }[] };
      return data.length > 0 ? data : undefined;
    });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.text).toContain(sku);
    await expect
      .poll(async () => (await as(DeliveryService, f.tokens.viewer).listDeliveries({ ruleId: rule!.ruleId, channel: Channel.SMS })).deliveries.map((d) => [d.state, d.attempts, d.target]), eventually)
      .toEqual([[DeliveryState.DELIVERED, 3, "+420601234567"]]);

    await f.catalogAs(InventoryService, f.tokens.operator).restock({ kioskId: "kiosk-stock", sku, quantity: 10n, reason: "refill" });
    await expect.poll(async () => (await alertsOf(rule!.ruleId, "kiosk-stock")).map((a) => a.state), eventually).toEqual([AlertState.RESOLVED]);
  }, 60_000);

  it("a person's subscription routes an alert to their phone by SMS (the SMS simulator receives it)", async () => {
    const me = as(SubscriptionService, f.tokens.operator);
    // Not E.164: refused naming the field.
    const bad = await refusal(me.setMySubscription({ subscription: { phoneNumber: "0777 000", routes: [{ channel: Channel.SMS }] } }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.message).toContain("subscription.phone_number");
    const sku = `sub-water-${suffix}`;
    await me.setMySubscription({ subscription: { phoneNumber: "+420 777 000 111", routes: [{ channel: Channel.SMS, severities: [Severity.CRITICAL] }] } });
    // A rule without receivers of its own: only the subscription reaches anyone.
    const { rule } = await as(RuleService, f.tokens.admin).createRule({ definition: { name: "water low", severity: Severity.CRITICAL, kind: { case: "lowStock", value: { sku } } } });
    await f.product(sku, 100n, { "kiosk-sub": 2n });
    await f.catalogAs(InventoryService, f.tokens.operator).setLowStockThreshold({ kioskId: "kiosk-sub", sku, lowStockThreshold: 5n });

    const sent = await waitFor("the subscriber's SMS", async () => {
      const res = await fetch(`${sms.url}/v1/messages?to=%2B420777000111`, { headers: { authorization: `Bearer ${smsKey}` } });
      const { data } = (await res.json()) as { data: { text: string }[] };
      return data.find((m) => m.text.includes(sku));
    });
    expect(sent.text).toContain("water low");
    await expect
      .poll(async () => (await as(DeliveryService, f.tokens.viewer).listDeliveries({ ruleId: rule!.ruleId })).deliveries.map((d) => [d.channel, d.target, d.state, d.recipient.startsWith("user:")]), eventually)
      .toEqual([[Channel.SMS, "+420777000111", DeliveryState.DELIVERED, true]]);
    await me.setMySubscription({ subscription: { routes: [] } });
  }, 60_000);

  it("payment_failure_rate fires when more than the threshold of a kiosk's payments fail within the window", async () => {
    const { rule } = await as(RuleService, f.tokens.admin).createRule({
      definition: { name: "payments failing", severity: Severity.CRITICAL, kind: { case: "paymentFailureRate", value: { threshold: 50, window: seconds(600), minPayments: 3 } } },
    });
    const kiosk = await f.device("kiosk-pay");
    await f.product(`chips-${suffix}`, 200n, { "kiosk-pay": 20n });
    const buy = async () => {
      const order = await sale("kiosk-pay", kiosk, [{ sku: `chips-${suffix}`, quantity: 1n }]);
      return f.waitFor(kiosk, order.orderId, [OrderState.COMPLETED, OrderState.FAILED]);
    };
    expect((await buy()).state).toBe(OrderState.COMPLETED);
    await f.nextCharges("decline", { count: 1 });
    expect((await buy()).state).toBe(OrderState.FAILED);
    // 1 of 2 failed: under the minimum of 3 payments anyway.
    await f.nextCharges("decline", { count: 1 });
    expect((await buy()).state).toBe(OrderState.FAILED);
    // 2 of 3 failed (67 % > 50 %).
    await expect.poll(async () => (await alertsOf(rule!.ruleId, "kiosk-pay")).map((a) => a.state), eventually).toEqual([AlertState.FIRING]);
    expect((await alertsOf(rule!.ruleId, "kiosk-pay"))[0]!.summary).toContain("2 of 3 payments failed");
    // Two more successes: 2 of 5 (40 %) clears it.
    expect((await buy()).state).toBe(OrderState.COMPLETED);
    expect((await buy()).state).toBe(OrderState.COMPLETED);
    await expect.poll(async () => (await alertsOf(rule!.ruleId, "kiosk-pay")).map((a) => a.state), eventually).toEqual([AlertState.RESOLVED]);
  }, 60_000);

  it("orders_stuck fires for an order neither completed nor failed in time and resolves when it completes", async () => {
    const { rule } = await as(RuleService, f.tokens.admin).createRule({
      definition: { name: "orders stuck", severity: Severity.WARNING, kind: { case: "ordersStuck", value: { forDuration: seconds(1) } } },
    });
    const kiosk = await f.device("kiosk-stuck");
    await f.product(`water-${suffix}`, 100n, { "kiosk-stuck": 5n });
    // The provider confirms only after 6 s: the order waits in PENDING_PAYMENT past the rule's second.
    await f.nextCharges("delay_webhook", { delay_ms: 6_000 });
    const order = await sale("kiosk-stuck", kiosk, [{ sku: `water-${suffix}`, quantity: 1n }]);
    await expect.poll(async () => (await alertsOf(rule!.ruleId, "kiosk-stuck")).map((a) => [a.state, a.summary]), eventually).toEqual([[AlertState.FIRING, expect.stringContaining(order.orderId)]]);
    expect((await f.ordersAs(kiosk).getOrder({ orderId: order.orderId })).order?.state).toBe(OrderState.PENDING_PAYMENT);
    await f.waitFor(kiosk, order.orderId, [OrderState.COMPLETED]);
    await expect.poll(async () => (await alertsOf(rule!.ruleId, "kiosk-stuck")).map((a) => a.state), eventually).toEqual([AlertState.RESOLVED]);
  }, 60_000);
});

describe("fleet's labels", () => {
  it("a low_stock rule for tagged kiosks alerts once fleet tags a kiosk already low on stock, and resolves when the tag goes", async () => {
    const sku = `juice-${suffix}`;
    const { rule } = await as(RuleService, f.tokens.admin).createRule({
      definition: { name: "vip stock", severity: Severity.WARNING, kind: { case: "lowStock", value: { sku } }, matcher: { tags: ["vip"] } },
    });
    // The same condition for every kiosk: once it fires, notifications knows the stock is low.
    const { rule: everyKiosk } = await as(RuleService, f.tokens.admin).createRule({
      definition: { name: "any stock", severity: Severity.INFO, kind: { case: "lowStock", value: { sku } } },
    });
    await f.product(sku, 100n, { "kiosk-vip": 1n });
    await f.catalogAs(InventoryService, f.tokens.operator).setLowStockThreshold({ kioskId: "kiosk-vip", sku, lowStockThreshold: 3n });
    await expect.poll(async () => (await alertsOf(everyKiosk!.ruleId, "kiosk-vip")).map((a) => a.state), eventually).toEqual([AlertState.FIRING]);
    expect(await alertsOf(rule!.ruleId, "kiosk-vip")).toEqual([]);
    const nc = await connect({ servers: inject("infra").natsUrl });
    try {
      await ensureStream(nc, fleetSubjects.stream);
      const label = async (tags: string[]) => {
        const event = create(KioskRegistryEventSchema, { kioskId: "kiosk-vip", groupId: "g1", tags, time: timestampFromDate(new Date()) });
        await jetstream(nc).publish(fleetSubjects.kiosk("kiosk-vip", "updated"), toBinary(KioskRegistryEventSchema, event));
      };
      // Tagged now: the rule selects the kiosk, which is low already.
      await label(["vip"]);
      await expect.poll(async () => (await alertsOf(rule!.ruleId, "kiosk-vip")).map((a) => [a.state, a.labels["sku"], a.groupId]), eventually).toEqual([[AlertState.FIRING, sku, "g1"]]);
      await label([]);
      await expect
        .poll(async () => (await alertsOf(rule!.ruleId, "kiosk-vip")).map((a) => [a.state, a.resolveReason]), eventually)
        .toEqual([[AlertState.RESOLVED, "kiosk no longer selected by the rule"]]);
    } finally {
      await nc.close();
    }
  }, 60_000);
});

describe("ai's silent failures", () => {
  it("silent_failure fires on ai's detection and resolves on its clearance", async () => {
    const { rule } = await as(RuleService, f.tokens.admin).createRule({
      definition: { name: "silent", severity: Severity.WARNING, kind: { case: "silentFailure", value: {} }, receivers: { emails: ["silent@example.com"] } },
    });
    const nc = await connect({ servers: inject("infra").natsUrl });
    try {
      await ensureStream(nc, aiSubjects.stream);
      const publish = async (kind: "detected" | "cleared") => {
        const event = create(SilentFailureEventSchema, {
          failure: { kioskId: "kiosk-silent", detected: kind === "detected", probability: 0.0004, observedUnits: 1n, expectedUnits: 24.5, modelVersion: 1n },
          threshold: 0.001,
          clearReason: kind === "cleared" ? "sales recovered" : "",
          time: timestampFromDate(new Date()),
        });
        const subject = kind === "detected" ? aiSubjects.silentFailureDetected("kiosk-silent") : aiSubjects.silentFailureCleared("kiosk-silent");
        await jetstream(nc).publish(subject, toBinary(SilentFailureEventSchema, event));
      };
      await publish("detected");
      await expect.poll(async () => (await alertsOf(rule!.ruleId, "kiosk-silent")).map((a) => a.state), eventually).toEqual([AlertState.FIRING]);
      expect((await mailTo("silent@example.com")).text).toContain("kiosk kiosk-silent sells far less than forecast: 1 units sold, 24.5 expected");
      await publish("cleared");
      await expect.poll(async () => (await alertsOf(rule!.ruleId, "kiosk-silent")).map((a) => [a.state, a.resolveReason]), eventually).toEqual([[AlertState.RESOLVED, "sales recovered"]]);
    } finally {
      await nc.close();
    }
  }, 60_000);
});

describe("Web Push", () => {
  it("a browser's saved subscription gets the alert, encrypted for it, from a local push service", async () => {
    const push = as(PushService, f.tokens.viewer);
    expect((await push.getPushConfig({})).vapidPublicKey).toBe(vapid.publicKey);
    // What a browser's PushManager.subscribe() does, against the local push service.
    const res = await fetch(`${pushService.url}/subscribe`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      // (web-push-testing takes the flag as a string, as from a form.)
      body: JSON.stringify({ userVisibleOnly: "true", applicationServerKey: vapid.publicKey }),
    });
    const { data: subscription } = (await res.json()) as { data: { endpoint: string; keys: { p256dh: string; auth: string }; clientHash: string } };
    expect((await refusal(push.savePushSubscription({ endpoint: "ftp://x", keys: subscription.keys }))).message).toContain("endpoint");
    expect((await refusal(push.savePushSubscription({ endpoint: subscription.endpoint, keys: { p256dh: "short", auth: subscription.keys.auth } }))).message).toContain("keys.p256dh");
    await push.savePushSubscription({ endpoint: subscription.endpoint, keys: subscription.keys });

    const sku = `soda-${suffix}`;
    const { rule } = await as(RuleService, f.tokens.admin).createRule({
      definition: { name: "push me", severity: Severity.CRITICAL, kind: { case: "lowStock", value: { sku } }, receivers: { webPush: true } },
    });
    await f.product(sku, 100n, { "kiosk-push": 1n });
    await f.catalogAs(InventoryService, f.tokens.operator).setLowStockThreshold({ kioskId: "kiosk-push", sku, lowStockThreshold: 2n });
    const messages = await waitFor("the push message", async () => {
      const r = await fetch(`${pushService.url}/get-notifications`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ clientHash: subscription.clientHash }) });
      const { data } = (await r.json()) as { data: { messages: string[] } };
      return data.messages.length > 0 ? data.messages : undefined;
    });
    const payload = JSON.parse(messages[0]!) as { title: string; body: string; ruleId: string; status: string };
    expect(payload).toMatchObject({ ruleId: rule!.ruleId, status: "firing" });
    expect(payload.title).toContain("push me");
    expect(payload.body).toContain(sku);
    // The delivery log shows the push service's origin, not the endpoint's capability path.
    const [delivery] = (await as(DeliveryService, f.tokens.viewer).listDeliveries({ ruleId: rule!.ruleId, channel: Channel.WEB_PUSH })).deliveries;
    expect(delivery?.target).toBe(`${new URL(subscription.endpoint).origin}/…`);
  }, 60_000);
});

// Dry runs of the kinds judged from other services' events (RuleService.DryRunRule): catalog's
// low-stock events and payments' decided payments, published on the real JetStream as catalog
// and payments publish them, with the times they would have carried over the last hour; kiosks'
// groups from the real fleet registry. Nothing is saved: no rule exists, no alert opens.
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { StockLowEventSchema, StockReplenishedEventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/events_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { AlertService, RuleService, Severity, type RuleDefinitionSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { PaymentFailedEventSchema, PaymentSucceededEventSchema } from "@adminkiosk/proto/adminkiosk/payments/v1/events_pb";
import { eventually, freePort, startNats, type ManagedProcess } from "@adminkiosk/devstack";
import { catalogSubjects, linkSubjects, paymentsSubjects } from "@adminkiosk/runtime";
import { clientFor } from "../../../test/support/auth.js";
import { startNotifications, type NotificationsFixture } from "./fixture.js";

const run = Date.now().toString(36);
const suffix = `${process.pid}-${run}`;
let f: NotificationsFixture;
let nc: NatsConnection;
let js: JetStreamClient;
// A NATS of this file's own: the dry run counts every event of the hour (eventsEvaluated), and
// the run's other files' telemetry would count on the shared one.
let nats: ManagedProcess;
beforeAll(async () => {
  nats = await startNats(mkdtempSync(join(inject("infra").tmpDir, "nats-dry-kinds-")), await freePort());
  [f, nc] = await Promise.all([
    startNotifications({
      TELEMETRY_EVENTS_CONSUMER: `n-telemetry-${suffix}`,
      CATALOG_EVENTS_CONSUMER: `n-catalog-${suffix}`,
      PAYMENTS_EVENTS_CONSUMER: `n-payments-${suffix}`,
      ORDERS_EVENTS_CONSUMER: `n-orders-${suffix}`,
      SILENT_FAILURE_EVENTS_CONSUMER: `n-silent-${suffix}`,
      SERVICE_HEALTH_CONSUMER: `n-health-${suffix}`,
      COMMERCE_EVENTS_SINCE_START: "true",
    }, { natsUrl: nats.url }),
    connect({ servers: nats.url }),
  ]);
  js = jetstream(nc);
}, 120_000);
afterAll(async () => {
  await nc?.close();
  await f?.stop();
  await nats?.stop();
});

type Definition = MessageInitShape<typeof RuleDefinitionSchema>;
const now = Date.now();
const minutesAgo = (m: number) => new Date(now - m * 60_000);
const minutes = (m: number) => ({ seconds: BigInt(m * 60), nanos: 0 });
const group = `dk-${run}`;
const kiosk = (name: string) => `dk-${run}-${name}`;

async function register(...kioskIds: string[]) {
  const registry = clientFor(KioskService, f.fleet.url, f.tokens.admin);
  for (const kioskId of kioskIds) await registry.createKiosk({ kiosk: { kioskId, name: kioskId, groupId: group } });
}

async function stock(kioskId: string, sku: string, kind: "low" | "replenished", at: Date) {
  const init = { kioskId, sku, onHand: kind === "low" ? 2n : 40n, lowStockThreshold: 5n, time: timestampFromDate(at) };
  if (kind === "low") await js.publish(catalogSubjects.stockLow(kioskId), toBinary(StockLowEventSchema, create(StockLowEventSchema, init)));
  else await js.publish(catalogSubjects.stockReplenished(kioskId), toBinary(StockReplenishedEventSchema, create(StockReplenishedEventSchema, init)));
}

let paymentN = 0;
async function payment(kioskId: string, outcome: "failed" | "succeeded", at: Date) {
  const intent = { paymentIntentId: `pi-${run}-${++paymentN}`, kioskId, amountMinor: 250n, currency: "EUR" };
  const subject = paymentsSubjects.intent(intent.paymentIntentId, outcome);
  if (outcome === "failed") await js.publish(subject, toBinary(PaymentFailedEventSchema, create(PaymentFailedEventSchema, { paymentIntent: intent, failureCode: "card_declined", time: timestampFromDate(at) })));
  else await js.publish(subject, toBinary(PaymentSucceededEventSchema, create(PaymentSucceededEventSchema, { paymentIntent: intent, time: timestampFromDate(at) })));
}

async function telemetry(kioskId: string, at: Date, sample: { printer?: DeviceStatus; errors?: string[] }) {
  const id = `${kioskId}-${at.getTime()}`;
  const event = create(KioskTelemetryEventSchema, {
    kioskId,
    receiveTime: timestampFromDate(at),
    batch: { batchId: `b-${id}`, samples: [{ sampleId: `s-${id}`, time: timestampFromDate(at), paperLevelPercent: 80, printer: sample.printer ?? DeviceStatus.OK, scanner: DeviceStatus.OK, errors: sample.errors ?? [] }] },
  });
  await js.publish(linkSubjects.telemetry(kioskId), toBinary(KioskTelemetryEventSchema, event));
}

const ms = (t: { seconds: bigint; nanos: number } | undefined) => (t ? timestampDate(t as never).getTime() : undefined);

describe("DryRunRule of the newer kinds", () => {
  it("low_stock: each product's low spell of the last hour counts once it lasted the for-duration, filtered by SKU", async () => {
    const [a, b, c] = [kiosk("stock-a"), kiosk("stock-b"), kiosk("stock-c")];
    await register(a, b, c);
    await stock(a, "cola", "low", minutesAgo(50)); // low for 10 min
    await stock(a, "cola", "replenished", minutesAgo(40));
    await stock(b, "chips", "low", minutesAgo(30)); // still low
    await stock(c, "cola", "low", minutesAgo(20)); // low for 2 min
    await stock(c, "cola", "replenished", minutesAgo(18));
    await stock(kiosk("stock-elsewhere"), "cola", "low", minutesAgo(30)); // not in the group

    const rules = f.as(RuleService, f.tokens.admin);
    const lowStock = (sku: string, forMinutes: number): Definition => ({
      name: "low",
      severity: Severity.WARNING,
      kind: { case: "lowStock", value: { sku, forDuration: minutes(forMinutes) } },
      matcher: { groupIds: [group] },
    });
    const count = async (d: Definition) => (await rules.dryRunRule({ definition: d })).alertCount;
    await expect.poll(async () => Promise.all([lowStock("", 0), lowStock("", 5), lowStock("cola", 5)].map(count)), eventually).toEqual([3, 2, 1]);

    const r = await rules.dryRunRule({ definition: lowStock("", 5) });
    expect(r.alertsByGroup).toEqual({ [group]: 2 });
    expect(r.kiosksMatched).toBe(3);
    expect(r.eventsEvaluated).toBe(6n); // the other group's included: the events of the hour the kind reads
    // Latest first: b's chips (fired 25 min ago, still low), then a's cola (fired 45 min ago, replenished 40 min ago).
    expect(r.samples.map((s) => [s.kioskId, s.labels["sku"], ms(s.fireTime), ms(s.resolveTime)])).toEqual([
      [b, "chips", minutesAgo(25).getTime(), undefined],
      [a, "cola", minutesAgo(45).getTime(), minutesAgo(40).getTime()],
    ]);
    expect(r.samples[0]!.summary).toBe(`kiosk ${b}: product chips is low on stock (2 on hand, threshold 5)`);
    // Nothing saved.
    expect((await f.as(AlertService, f.tokens.viewer).listAlerts({})).alerts).toEqual([]);
  });

  it("payment_failure_rate: judged at each payment over the window ending then (payments before the hour count), cleared as failures leave the window", async () => {
    const [p1, p2, p3] = [kiosk("pay-1"), kiosk("pay-2"), kiosk("pay-3")];
    await register(p1, p2, p3);
    // p1: 3 of 4 failed by 37 min ago (75 %); with three successes later the window holds 2 of 4 at 30 min ago.
    await payment(p1, "failed", minutesAgo(40));
    await payment(p1, "failed", minutesAgo(39));
    await payment(p1, "failed", minutesAgo(38));
    await payment(p1, "succeeded", minutesAgo(37));
    await payment(p1, "succeeded", minutesAgo(30));
    await payment(p1, "succeeded", minutesAgo(29));
    // p2: every payment succeeded.
    for (const m of [20, 19, 18, 17]) await payment(p2, "succeeded", minutesAgo(m));
    // p3: two failures before the hour, in the window of the failure and success at 58 and 57 min ago
    // (3 of 4); nothing after, so it clears when the first old failure leaves the window (52 min ago).
    await payment(p3, "failed", minutesAgo(62));
    await payment(p3, "failed", minutesAgo(61));
    await payment(p3, "failed", minutesAgo(58));
    await payment(p3, "succeeded", minutesAgo(57));

    const rules = f.as(RuleService, f.tokens.admin);
    const rate = (threshold: number, minPayments: number): Definition => ({
      name: "payments failing",
      severity: Severity.CRITICAL,
      kind: { case: "paymentFailureRate", value: { threshold, window: minutes(10), minPayments } },
      matcher: { groupIds: [group] },
    });
    const count = async (d: Definition) => (await rules.dryRunRule({ definition: d })).alertCount;
    // 50 % over at least 4; 80 % (none reaches it); over at least 5 payments (none has 5 in a window of 3 failures).
    await expect.poll(async () => Promise.all([rate(50, 4), rate(80, 4), rate(50, 5)].map(count)), eventually).toEqual([2, 0, 0]);

    const r = await rules.dryRunRule({ definition: rate(50, 4) });
    expect(r.samples.map((s) => [s.kioskId, ms(s.fireTime), ms(s.resolveTime)])).toEqual([
      [p1, minutesAgo(37).getTime(), minutesAgo(30).getTime()],
      [p3, minutesAgo(57).getTime(), minutesAgo(52).getTime()],
    ]);
    expect(r.samples[0]!.summary).toBe(`kiosk ${p1}: 3 of 4 payments failed in the last 10 min (75 %, above 50 %)`);
    expect(r.kiosksMatched).toBe(3);
    // The hour's payments only (p3's two older ones were read for its window, not counted).
    expect(r.eventsEvaluated).toBe(12n);
  });

  it("alerting_status and telemetry_errors: replay the samples that changed whether the kiosk was ALERTING or reported errors", async () => {
    const [t1, t2] = [kiosk("tel-1"), kiosk("tel-2")];
    await register(t1, t2);
    const rules = f.as(RuleService, f.tokens.admin);
    const def = (k: "alertingStatus" | "telemetryErrors", forMinutes: number): Definition => ({
      name: "t",
      severity: Severity.WARNING,
      kind: { case: k, value: { forDuration: minutes(forMinutes) } },
      matcher: { groupIds: [group] },
    });
    const count = async (d: Definition) => (await rules.dryRunRule({ definition: d })).alertCount;
    // The first samples applied before the later ones are published (the consumer applies two at
    // once, so a sample can be applied after a newer one; the count of events kept is exact only
    // in order).
    await telemetry(t1, minutesAgo(30), { printer: DeviceStatus.FAULT }); // ALERTING for 10 min
    await telemetry(t2, minutesAgo(15), { errors: ["coin jam"] }); // errors (so ALERTING) for 1 min
    await expect.poll(() => count(def("alertingStatus", 1)), eventually).toBe(2);
    await telemetry(t1, minutesAgo(25), { printer: DeviceStatus.FAULT }); // no change: not kept
    await telemetry(t1, minutesAgo(20), {});
    await telemetry(t2, minutesAgo(14), {});
    await expect.poll(async () => Promise.all([def("alertingStatus", 5), def("alertingStatus", 1), def("telemetryErrors", 1), def("telemetryErrors", 2)].map(count)), eventually).toEqual([1, 2, 1, 0]);
    const r = await rules.dryRunRule({ definition: def("telemetryErrors", 1) });
    expect(r.samples.map((s) => [s.kioskId, s.summary, ms(s.fireTime), ms(s.resolveTime)])).toEqual([[t2, `kiosk ${t2} reports errors: coin jam`, minutesAgo(14).getTime(), minutesAgo(14).getTime()]]);
    expect(r.eventsEvaluated).toBe(4n);
  });
});

// The fleet query language's stock("SKU") and alerts with real catalog, notifications and
// fleet processes: catalog publishes every stock level change through its outbox,
// notifications opens and resolves a low_stock alert from catalog's events, fleet projects
// both (durable consumers) and answers queries over them; events seen again change nothing.
import { randomBytes, randomUUID } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { InventoryService, ReservationService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { StockLevelChangedEventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/events_pb";
import { FleetQueryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { AlertChangedEventSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/events_pb";
import { AlertService, AlertState, RuleService, Severity, type Alert } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { createDatabase, eventually, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { catalogSubjects, notificationsSubjects } from "@adminkiosk/runtime";
import { clientFor } from "../../../test/support/auth.js";
import { createProduct, startCatalog, type CatalogFixture } from "../../catalog/test/fixture.js";

const suffix = randomBytes(4).toString("hex");
const sku = `FQ-${suffix}`;
const kiosk = (k: string) => `fq-${suffix}-${k}`;
let f: CatalogFixture;
let notifications: StartedService;
let fleet: StartedService;
let nc: NatsConnection;

beforeAll(async () => {
  const infra = inject("infra");
  f = await startCatalog();
  const shared = { REDIS_URL: f.auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${f.auth.service.url}/.well-known/jwks.json`, SHUTDOWN_GRACE_MS: "2000" };
  [notifications, fleet] = await Promise.all([
    createDatabase(infra.databaseUrl, "notifications").then((db) =>
      startTestService("notifications", {
        ...shared,
        DATABASE_URL: db,
        // No rule here has a receiver: nothing is sent.
        SMTP_URL: "smtp://127.0.0.1:1",
        LINK_EVENTS_CONSUMER: `fq-n-link-${suffix}`,
        LINK_EVENTS_SINCE_START: "true",
        FLEET_EVENTS_CONSUMER: `fq-n-fleet-${suffix}`,
        FLEET_EVENTS_SINCE_START: "true",
        AI_EVENTS_CONSUMER: `fq-n-ai-${suffix}`,
        AI_EVENTS_SINCE_START: "true",
        TELEMETRY_EVENTS_CONSUMER: `fq-n-telemetry-${suffix}`,
        CATALOG_EVENTS_CONSUMER: `fq-n-catalog-${suffix}`,
        PAYMENTS_EVENTS_CONSUMER: `fq-n-payments-${suffix}`,
        ORDERS_EVENTS_CONSUMER: `fq-n-orders-${suffix}`,
        SILENT_FAILURE_EVENTS_CONSUMER: `fq-n-silent-${suffix}`,
        COMMERCE_EVENTS_SINCE_START: "true",
        SWEEP_MS: "200",
      }),
    ),
    createDatabase(infra.databaseUrl, "fleet").then((db) =>
      startTestService("fleet", {
        ...shared,
        DATABASE_URL: db,
        AUTH_URL: f.auth.service.url,
        LINK_EVENTS_CONSUMER: `fq-link-${suffix}`,
        LINK_EVENTS_SINCE_START: "true",
        ORDERS_EVENTS_CONSUMER: `fq-orders-${suffix}`,
        CATALOG_EVENTS_CONSUMER: `fq-catalog-${suffix}`,
        NOTIFICATIONS_EVENTS_CONSUMER: `fq-alerts-${suffix}`,
      }),
    ),
  ]);
  await waitFor("notifications to verify tokens", async () => (await clientFor(RuleService, notifications.url, f.tokens.admin).listRules({ pageSize: 1 }), true), {
    timeout: 60_000,
    interval: 300,
    retry: (err) => ConnectError.from(err).code === Code.Unavailable,
  });
  const kiosks = clientFor(KioskService, fleet.url, f.tokens.admin);
  for (const k of ["a", "b", "c", "d"]) await kiosks.createKiosk({ kiosk: { kioskId: kiosk(k), name: `Kiosk ${k}`, groupId: k === "d" ? "other" : "fq" } });
  nc = await connect({ servers: infra.natsUrl });
}, 180_000);

afterAll(async () => {
  await nc?.close();
  await fleet?.stop();
  await notifications?.stop();
  await f?.stop();
});

const query = (q: string) => clientFor(FleetQueryService, fleet.url, f.tokens.viewer).queryKiosks({ query: q });
const ids = async (q: string) => (await query(q)).kiosks.map((k) => k.kioskId);
const inventory = () => f.as(InventoryService, f.tokens.operator);
const openAlerts = async (ruleId: string) => (await clientFor(AlertService, notifications.url, f.tokens.admin).listAlerts({ ruleId, pageSize: 100 })).alerts;

/** Publishes as if JetStream delivered an event again: a new message (its own id), so only the projection can tell. */
const publishAgain = (subject: string, data: Uint8Array) => jetstream(nc).publish(subject, data, { msgID: randomUUID() });

describe("stock and alerts from catalog and notifications", () => {
  let rule: string;
  let alerts: Alert[];

  it("a kiosk whose stock of a SKU drops below N appears in stock(SKU) < N; a low_stock alert shows in alerts and alert(x)", async () => {
    await createProduct(f, sku);
    rule = (await clientFor(RuleService, notifications.url, f.tokens.admin).createRule({ definition: { name: `fq low ${suffix}`, severity: Severity.CRITICAL, kind: { case: "lowStock", value: { sku } } } })).rule!
      .ruleId;
    for (const [k, units] of [["a", 10n], ["b", 10n], ["c", 2n]] as const) {
      await inventory().restock({ kioskId: kiosk(k), sku, quantity: units, reason: "first fill" });
      await inventory().setLowStockThreshold({ kioskId: kiosk(k), sku, lowStockThreshold: 4n });
    }
    await expect.poll(() => ids(`stock("${sku}") >= 0`), eventually).toEqual([kiosk("a"), kiosk("b"), kiosk("c")]);
    expect(await ids(`stock("${sku}") < 5`)).toEqual([kiosk("c")]);
    expect(await ids(`not stock("${sku}") < 5`)).toEqual([kiosk("a"), kiosk("b")]); // d has none of it: no value, matches neither

    // A sale at a (orders reserves and commits) takes 7 of its 10 units.
    const orders = f.asOrders(ReservationService);
    const { reservation } = await orders.reserve({ reservationId: randomUUID(), kioskId: kiosk("a"), items: [{ sku, quantity: 7n }] });
    await orders.commitReservation({ reservationId: reservation!.reservationId });
    await expect.poll(() => ids(`stock("${sku}") < 5`), eventually).toEqual([kiosk("a"), kiosk("c")]);
    const res = await query(`stock("${sku}") >= 0 | sort stock("${sku}") desc | stats count(), min(stock("${sku}")), sum(stock("${sku}")) by group`);
    expect(res.kiosks.map((k) => k.kioskId)).toEqual([kiosk("b"), kiosk("a"), kiosk("c")]);
    expect(res.stats!.groups.map((g) => [...g.keys, ...g.values.map((v) => v.value)])).toEqual([["fq", 3, 2, 15]]);

    // notifications fired low_stock for c (threshold raised over its 2) and a (the sale): fleet counts them.
    await expect.poll(async () => (await openAlerts(rule)).map((a) => [a.kioskId, a.state, a.ruleKind]).sort(), eventually).toEqual([
      [kiosk("a"), AlertState.FIRING, "low_stock"],
      [kiosk("c"), AlertState.FIRING, "low_stock"],
    ]);
    alerts = await openAlerts(rule);
    await expect.poll(() => ids("alerts > 0"), eventually).toEqual([kiosk("a"), kiosk("c")]);
    expect(await ids("alert(low_stock)")).toEqual([kiosk("a"), kiosk("c")]);
    expect(await ids("alerts(critical) = 1 and group = fq")).toEqual([kiosk("a"), kiosk("c")]);
    expect(await ids("alert(warning) or alert(low_paper)")).toEqual([]);
    expect(await ids("alerts = 0")).toEqual([kiosk("b"), kiosk("d")]);
    const byCount = await query("| stats count() by alerts | sort alerts");
    expect(byCount.stats!.groups.map((g) => [g.keys[0], g.values[0]!.value])).toEqual([
      ["0", 2],
      ["1", 2],
    ]);
  }, 90_000);

  it("a resolved alert leaves alerts > 0; events seen again (an alert fired again, an older stock level) change nothing", async () => {
    // Restocking c takes it above its threshold: notifications resolves c's alert.
    await inventory().restock({ kioskId: kiosk("c"), sku, quantity: 10n, reason: "refill" });
    await expect.poll(() => ids("alerts > 0"), eventually).toEqual([kiosk("a")]);
    expect(await ids(`stock("${sku}") < 5`)).toEqual([kiosk("a")]);

    // Both alerts' "fired" once more (a resolved one must stay resolved, an open one count once),
    // and b's level as it was before the restocks; then a marker each stream's consumer applies after them.
    for (const a of alerts) await publishAgain(notificationsSubjects.alert(a.alertId, "fired"), toBinary(AlertChangedEventSchema, create(AlertChangedEventSchema, { alert: a })));
    const stale = { kioskId: kiosk("b"), sku, onHand: 0n, reserved: 0n, available: 0n, lowStockThreshold: 4n, low: true, updateTime: timestampFromDate(new Date(Date.now() - 3_600_000)) };
    await publishAgain(catalogSubjects.stockLevel(kiosk("b")), toBinary(StockLevelChangedEventSchema, create(StockLevelChangedEventSchema, { level: stale })));
    const marker = { ...alerts[0]!, alertId: randomUUID(), kioskId: kiosk("d"), severity: Severity.INFO, ruleKind: "low_paper" };
    await publishAgain(notificationsSubjects.alert(marker.alertId, "fired"), toBinary(AlertChangedEventSchema, create(AlertChangedEventSchema, { alert: marker })));
    const level = { ...stale, kioskId: kiosk("d"), onHand: 1n, updateTime: timestampFromDate(new Date()) };
    await publishAgain(catalogSubjects.stockLevel(kiosk("d")), toBinary(StockLevelChangedEventSchema, create(StockLevelChangedEventSchema, { level })));

    await expect.poll(() => ids(`alert(low_paper) and stock("${sku}") = 1`), eventually).toEqual([kiosk("d")]);
    expect(await ids("alerts > 0")).toEqual([kiosk("a"), kiosk("d")]);
    expect(await ids("alerts > 1")).toEqual([]);
    expect(await ids(`stock("${sku}") = 10`)).toEqual([kiosk("b")]);
  }, 90_000);
});

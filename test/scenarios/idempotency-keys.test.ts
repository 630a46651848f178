// One idempotency contract (runtime idempotency.ts, docs/api.md "Idempotency keys"): the
// same misuse gets the same answer at every service that takes keys. A key used again for
// a different request is InvalidArgument naming idempotency_key, at payments, orders and
// fleet alike, also when the first request was refused (orders' stored refusal).
import { randomUUID } from "node:crypto";
import { Code, type ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CommandService } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { createDatabase, startTestService, type StartedService } from "@adminkiosk/devstack";
import { startSale, type SaleFixture } from "../../services/orders/test/fixture.js";
import { clientFor, failure } from "../support/auth.js";

let f: SaleFixture;
let fleet: StartedService;

beforeAll(async () => {
  f = await startSale();
  const infra = inject("infra");
  fleet = await startTestService("fleet", {
    DATABASE_URL: await createDatabase(infra.databaseUrl, "fleet"),
    REDIS_URL: f.auth.redisUrl,
    NATS_URL: infra.natsUrl,
    LINK_EVENTS_CONSUMER: `fleet-idempotency-${process.pid}`,
    LINK_EVENTS_SINCE_START: "true",
    AUTH_JWKS_URL: `${f.auth.service.url}/.well-known/jwks.json`,
    AUTH_URL: f.auth.service.url,
  });
});
afterAll(async () => {
  await fleet?.stop();
  await f?.stop();
});

/** The one answer to a reused key: code, field and message. */
function expectKeyReused(err: ConnectError, where: string) {
  expect([where, err.code]).toEqual([where, Code.InvalidArgument]);
  expect([where, err.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)]).toEqual([where, ["idempotency_key"]]);
  expect(err.rawMessage).toBe("idempotency_key: was already used for a different request; use a new key for a new request");
}

describe("a key used again for a different request", () => {
  it("is the same InvalidArgument naming idempotency_key at payments, orders and fleet", async () => {
    const key = `reuse-${randomUUID()}`;

    const payments = f.paymentsAs(await f.auth.serviceToken("orders"));
    const intent = { idempotencyKey: key, orderId: `order-${randomUUID()}`, kioskId: "kiosk-a", amountMinor: 100n, currency: "EUR" };
    await payments.createPaymentIntent(intent);
    expectKeyReused(await failure(payments.createPaymentIntent({ ...intent, amountMinor: 101n })), "payments");

    // The first order is refused (no such product); the refusal is the key's answer, and another body is still misuse.
    const orders = f.ordersAs(await f.device("kiosk-a"));
    const sale = { idempotencyKey: key, items: [{ sku: "no-such-sku", quantity: 1n }], paymentMethod: "pm_card_visa" };
    const refused = await failure(orders.createOrder(sale));
    expect((await failure(orders.createOrder(sale))).code).toBe(refused.code);
    expectKeyReused(await failure(orders.createOrder({ ...sale, items: [{ sku: "no-such-sku", quantity: 2n }] })), "orders");

    const admin = f.tokens.admin;
    const kioskId = `idem-${randomUUID().slice(0, 8)}`;
    await clientFor(KioskService, fleet.url, admin).createKiosk({ kiosk: { kioskId, name: "Idempotency" } });
    const commands = clientFor(CommandService, fleet.url, admin);
    const command = { kioskId, idempotencyKey: key, action: { kind: { case: "displayMessage" as const, value: { text: "hello" } } } };
    const first = await commands.sendCommand(command);
    expect((await commands.sendCommand(command)).command?.commandId).toBe(first.command?.commandId);
    expectKeyReused(await failure(commands.sendCommand({ ...command, action: { kind: { case: "displayMessage", value: { text: "bye" } } } })), "fleet");
  });
});

// Sales at kiosks through orders, against real auth, catalog, payments (with the
// provider simulator) and orders processes on PostgreSQL, NATS and Redis: the sale
// completes with tickets and a receipt, retries sell once, the last seats and units go
// to exactly as many buyers, failures release everything, a crashed worker finishes
// once, refunds restore stock, and kiosks and roles see only what they may.
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { EventService, ReservationService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { PaymentIntentState } from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { failure } from "../../../test/support/auth.js";
import { verifyTicket } from "../src/tickets.js";
import { sell } from "@adminkiosk/kiosk-sdk";
import { eventually, waitFor } from "@adminkiosk/devstack";
import { startSale, type SaleFixture } from "./fixture.js";

let f: SaleFixture;
let kioskA: string;
let kioskB: string;
let n = 0;
const key = () => `order-key-${++n}-${Date.now()}`;
const done = [OrderState.COMPLETED, OrderState.FAILED];

beforeAll(async () => {
  f = await startSale();
  kioskA = await f.device("kiosk-a");
  kioskB = await f.device("kiosk-b");
  await f.product("coffee", 250n, { "kiosk-a": 100n, "kiosk-b": 100n });
}, 120_000);
afterAll(async () => {
  await f?.stop();
});
afterEach(async () => {
  await f.expectLedgerBalanced();
});

describe("a sale", () => {
  it("through the kiosk SDK: sell() waits for the outcome, and selling again under the same key is the same sale", async () => {
    const before = await f.stock("kiosk-a", "coffee");
    const sale = { idempotencyKey: key(), items: [{ sku: "coffee", quantity: 1n }], paymentMethod: "pm_card_visa" };
    const options = { ordersAddress: f.orders.url, credential: kioskA };
    const [first, second] = await Promise.all([sell(sale, options), sell(sale, options)]);
    expect(first.state).toBe(OrderState.COMPLETED);
    expect(second.orderId).toBe(first.orderId);
    expect(first.receipt?.printableText).toContain("TOTAL EUR");
    expect((await f.stock("kiosk-a", "coffee")).onHand).toBe(before.onHand - 1n);
    expect(await f.simCharges(first.paymentIntentId)).toHaveLength(1);
  });

  it("completes: reserve, pay, then tickets with verifiable QR payloads, a receipt, stock sold", async () => {
    const { eventId, seatIds } = await f.event(4);
    const before = await f.stock("kiosk-a", "coffee");
    const { order } = await f.ordersAs(kioskA).createOrder({
      idempotencyKey: key(),
      items: [{ sku: "coffee", quantity: 2n }],
      seats: [{ eventId, seatId: seatIds[0]! }, { eventId, seatId: seatIds[1]! }],
      paymentMethod: "pm_card_visa",
    });
    expect(order).toMatchObject({ kioskId: "kiosk-a", state: OrderState.PENDING_PAYMENT, totalMinor: 2n * 250n + 2n * 3000n, currency: "EUR" });
    expect(order!.paymentIntentId).not.toBe("");
    const completed = await f.waitFor(kioskA, order!.orderId, done);
    expect(completed.state).toBe(OrderState.COMPLETED);
    expect(completed.tickets.map((t) => t.seatId).sort()).toEqual([seatIds[0], seatIds[1]].sort());
    expect(completed.receipt).toMatchObject({ kioskId: "kiosk-a", orderId: order!.orderId, totalMinor: 6500n, currency: "EUR" });
    expect(completed.receipt!.taxes.find((t) => t.rateBasisPoints === 2100)?.taxMinor).toBe(87n); // 500 incl. 21 %
    expect(completed.receipt!.printableText).toContain("TOTAL EUR");
    expect(completed.receipt!.printableText).toContain("65.00");
    const after = await f.stock("kiosk-a", "coffee");
    expect(after.onHand).toBe(before.onHand - 2n);
    expect(after.reserved).toBe(before.reserved);
    const { seats } = await f.catalogAs(EventService, f.tokens.viewer).getSeatAvailability({ eventId });
    expect(seats.filter((s) => s.state === 3).map((s) => s.seatId).sort()).toEqual([seatIds[0], seatIds[1]].sort());
    expect(await f.simCharges(completed.paymentIntentId)).toHaveLength(1);
  });

  it("a ticket's QR payload verifies with the published key and fails if any character is changed", async () => {
    const { eventId, seatIds } = await f.event(1);
    const { order } = await f.ordersAs(kioskA).createOrder({ idempotencyKey: key(), seats: [{ eventId, seatId: seatIds[0]! }], paymentMethod: "pm_card_visa" });
    const completed = await f.waitFor(kioskA, order!.orderId, done);
    const { jwksJson } = await f.ordersAs().getTicketVerificationKeys({});
    expect(JSON.parse(jwksJson).keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA" });
    expect(JSON.parse(jwksJson).keys[0].d).toBeUndefined();
    const qr = completed.tickets[0]!.qrPayload;
    expect(await verifyTicket(qr, jwksJson)).toMatchObject({ oid: order!.orderId, kid: "kiosk-a", ev: eventId, seat: seatIds[0], tid: completed.tickets[0]!.ticketId });
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    let rejected = 0;
    for (let i = 0; i < qr.length; i++) {
      const other = alphabet[(alphabet.indexOf(qr[i]!) + 1) % alphabet.length]!;
      const tampered = qr.slice(0, i) + other + qr.slice(i + 1);
      await expect(verifyTicket(tampered, jwksJson), `changed at ${i}`).rejects.toThrow();
      rejected++;
    }
    expect(rejected).toBe(qr.length);
  });

  it("a declined card fails the order with the provider's reason and releases stock and seats", async () => {
    const { eventId, seatIds } = await f.event(1);
    const before = await f.stock("kiosk-a", "coffee");
    await f.nextCharges("decline", { decline_code: "insufficient_funds" });
    const { order } = await f.ordersAs(kioskA).createOrder({ idempotencyKey: key(), items: [{ sku: "coffee", quantity: 3n }], seats: [{ eventId, seatId: seatIds[0]! }], paymentMethod: "pm_card_visa" });
    const failed = await f.waitFor(kioskA, order!.orderId, done);
    expect(failed).toMatchObject({ state: OrderState.FAILED });
    expect(failed.failureCode).not.toBe("");
    expect(failed.tickets).toHaveLength(0);
    expect(await f.stock("kiosk-a", "coffee")).toEqual(before);
    const { seats } = await f.catalogAs(EventService, f.tokens.viewer).getSeatAvailability({ eventId });
    expect(seats[0]?.state).toBe(1); // available again
  });

  it("a provider that never confirms times the payment out: the order fails cleanly and the stock is released", async () => {
    const before = await f.stock("kiosk-a", "coffee");
    await f.nextCharges("timeout");
    const { order } = await f.ordersAs(kioskA).createOrder({ idempotencyKey: key(), items: [{ sku: "coffee", quantity: 4n }], paymentMethod: "pm_card_visa" });
    expect((await f.stock("kiosk-a", "coffee")).reserved).toBe(before.reserved + 4n);
    const failed = await f.waitFor(kioskA, order!.orderId, done, 30_000);
    expect(failed).toMatchObject({ state: OrderState.FAILED, failureCode: "timeout" });
    expect(await f.stock("kiosk-a", "coffee")).toEqual(before);
  });
});

describe("idempotency keys", () => {
  it("a retried order (sequentially) is one order and one charge", async () => {
    const request = { idempotencyKey: key(), items: [{ sku: "coffee", quantity: 1n }], paymentMethod: "pm_card_visa" };
    const first = await f.ordersAs(kioskA).createOrder(request);
    const completed = await f.waitFor(kioskA, first.order!.orderId, done);
    const again = await f.ordersAs(kioskA).createOrder(request);
    expect(again.order?.orderId).toBe(first.order?.orderId);
    expect(again.order?.state).toBe(OrderState.COMPLETED);
    expect(await f.simCharges(completed.paymentIntentId)).toHaveLength(1);
    const { paymentIntents } = await f.paymentsAs(kioskA).listPaymentIntents({ orderId: completed.orderId });
    expect(paymentIntents).toHaveLength(1);
  });

  it("concurrent retries with one key create one order and one charge; stock moves once", async () => {
    const before = await f.stock("kiosk-b", "coffee");
    const request = { idempotencyKey: key(), items: [{ sku: "coffee", quantity: 5n }], paymentMethod: "pm_card_visa" };
    const answers = await Promise.allSettled(Array.from({ length: 8 }, () => f.ordersAs(kioskB).createOrder(request)));
    const ids = new Set(answers.flatMap((a) => (a.status === "fulfilled" ? [a.value.order!.orderId] : [])));
    expect(ids.size).toBe(1);
    // A request that raced the first may be told to retry (Aborted); none is a second order.
    for (const a of answers) if (a.status === "rejected") expect((a.reason as { code: Code }).code).toBe(Code.Aborted);
    const [id] = [...ids];
    const completed = await f.waitFor(kioskB, id!, done);
    expect(completed.state).toBe(OrderState.COMPLETED);
    expect(await f.simCharges(completed.paymentIntentId)).toHaveLength(1);
    expect((await f.stock("kiosk-b", "coffee")).onHand).toBe(before.onHand - 5n);
    const { orders } = await f.ordersAs(kioskB).listOrders({});
    expect(orders.filter((o) => o.orderId === id)).toHaveLength(1);
  });

  it("the same key with a different body is InvalidArgument naming idempotency_key; keys are per kiosk", async () => {
    const idempotencyKey = key();
    const { order } = await f.ordersAs(kioskA).createOrder({ idempotencyKey, items: [{ sku: "coffee", quantity: 1n }], paymentMethod: "pm_card_visa" });
    const err = await failure(f.ordersAs(kioskA).createOrder({ idempotencyKey, items: [{ sku: "coffee", quantity: 2n }], paymentMethod: "pm_card_visa" }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("idempotency_key");
    const other = await f.ordersAs(kioskB).createOrder({ idempotencyKey, items: [{ sku: "coffee", quantity: 1n }], paymentMethod: "pm_card_visa" });
    expect(other.order?.orderId).not.toBe(order?.orderId);
    await f.waitFor(kioskA, order!.orderId, done);
    await f.waitFor(kioskB, other.order!.orderId, done);
  });

  it("a refused order is answered the same way on retry", async () => {
    const request = { idempotencyKey: key(), items: [{ sku: "coffee", quantity: 1000n }], paymentMethod: "pm_card_visa" };
    const first = await failure(f.ordersAs(kioskA).createOrder(request));
    expect(first.code).toBe(Code.ResourceExhausted);
    const second = await failure(f.ordersAs(kioskA).createOrder(request));
    expect(second.code).toBe(Code.ResourceExhausted);
    expect(second.rawMessage).toBe(first.rawMessage);
    const { orders } = await f.ordersAs(kioskA).listOrders({ state: OrderState.FAILED });
    expect(orders.filter((o) => o.failureCode === "OUT_OF_STOCK").length).toBeGreaterThanOrEqual(1);
  });
});

describe("the last seats and units", () => {
  it("50 concurrent buyers at 5 kiosks for the last 10 seats: exactly 10 buy, 40 are refused FAILED_PRECONDITION; seats reconcile", async () => {
    const { eventId, seatIds } = await f.event(10);
    const kiosks = await Promise.all(Array.from({ length: 5 }, (_, i) => f.device(`kiosk-rush-${i}`)));
    // Each buyer wants one seat; 5 buyers per seat.
    const attempts = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        f.ordersAs(kiosks[i % 5]!).createOrder({ idempotencyKey: key(), seats: [{ eventId, seatId: seatIds[i % 10]! }], paymentMethod: "pm_card_visa" }),
      ),
    );
    const won = attempts.flatMap((a, i) => (a.status === "fulfilled" ? [{ order: a.value.order!, kiosk: kiosks[i % 5]! }] : []));
    const lost = attempts.flatMap((a) => (a.status === "rejected" ? [a.reason as { code: Code }] : []));
    expect(won).toHaveLength(10);
    expect(lost.every((e) => e.code === Code.FailedPrecondition)).toBe(true);
    const completed = await Promise.all(won.map((w) => f.waitFor(w.kiosk, w.order.orderId, done, 30_000)));
    expect(completed.every((o) => o.state === OrderState.COMPLETED)).toBe(true);
    const tickets = completed.flatMap((o) => o.tickets.map((t) => t.seatId));
    expect(tickets.sort()).toEqual([...seatIds].sort());
    const { seats } = await f.catalogAs(EventService, f.tokens.viewer).getSeatAvailability({ eventId });
    expect(seats.every((s) => s.state === 3)).toBe(true);
  }, 90_000);

  it("50 concurrent buyers at one kiosk for its last 10 units: exactly 10 buy, 40 are RESOURCE_EXHAUSTED; stock reconciles", async () => {
    await f.product("last-units", 400n, { "kiosk-a": 10n });
    const attempts = await Promise.allSettled(
      Array.from({ length: 50 }, () => f.ordersAs(kioskA).createOrder({ idempotencyKey: key(), items: [{ sku: "last-units", quantity: 1n }], paymentMethod: "pm_card_visa" })),
    );
    const won = attempts.flatMap((a) => (a.status === "fulfilled" ? [a.value.order!] : []));
    const lost = attempts.flatMap((a) => (a.status === "rejected" ? [a.reason as { code: Code }] : []));
    expect(won).toHaveLength(10);
    expect(lost.every((e) => e.code === Code.ResourceExhausted)).toBe(true);
    const completed = await Promise.all(won.map((o) => f.waitFor(kioskA, o.orderId, done, 30_000)));
    expect(completed.every((o) => o.state === OrderState.COMPLETED)).toBe(true);
    expect(await f.stock("kiosk-a", "last-units")).toEqual({ onHand: 0n, reserved: 0n, available: 0n });
  }, 90_000);
});

describe("a crash of the worker", () => {
  it("killed between payment success and completion: after restart the order completes once", async () => {
    const { eventId, seatIds } = await f.event(2);
    const before = await f.stock("kiosk-a", "coffee");
    await f.nextCharges("delay_webhook", { delay_ms: 1_500 });
    const { order } = await f.ordersAs(kioskA).createOrder({ idempotencyKey: key(), items: [{ sku: "coffee", quantity: 1n }], seats: [{ eventId, seatId: seatIds[0]! }], paymentMethod: "pm_card_visa" });
    await f.restartOrders({
      crash: true,
      // The payment succeeds while orders is down; its event waits in JetStream.
      before: async () => {
        await waitFor("the payment to succeed", async () => {
          const { paymentIntent } = await f.paymentsAs(kioskA).getPaymentIntent({ paymentIntentId: order!.paymentIntentId });
          return paymentIntent?.state === PaymentIntentState.SUCCEEDED ? true : undefined;
        });
      },
    });
    const completed = await f.waitFor(kioskA, order!.orderId, done, 30_000);
    expect(completed.state).toBe(OrderState.COMPLETED);
    expect(completed.tickets).toHaveLength(1);
    expect((await f.stock("kiosk-a", "coffee")).onHand).toBe(before.onHand - 1n);
    // Settled: nothing more happens to it. A later sale completing shows the worker has
    // worked past every redelivery of this one's events.
    const { order: later } = await f.ordersAs(kioskA).createOrder({ idempotencyKey: key(), items: [{ sku: "coffee", quantity: 1n }], paymentMethod: "pm_card_visa" });
    expect((await f.waitFor(kioskA, later!.orderId, done)).state).toBe(OrderState.COMPLETED);
    const again = (await f.ordersAs(kioskA).getOrder({ orderId: order!.orderId })).order!;
    expect(again.receipt?.receiptNumber).toBe(completed.receipt?.receiptNumber);
    expect(again.tickets).toHaveLength(1);
  }, 60_000);
});

describe("refunds", () => {
  it("an operator refunds part, then the rest: money back through payments, products back in stock, tickets void", async () => {
    const { eventId, seatIds } = await f.event(1);
    const { order } = await f.ordersAs(kioskA).createOrder({ idempotencyKey: key(), items: [{ sku: "coffee", quantity: 3n }], seats: [{ eventId, seatId: seatIds[0]! }], paymentMethod: "pm_card_visa" });
    const completed = await f.waitFor(kioskA, order!.orderId, done);
    const afterSale = await f.stock("kiosk-a", "coffee");
    const coffeeLine = completed.lines.find((l) => l.sku === "coffee")!;
    const partial = { idempotencyKey: key(), orderId: completed.orderId, lines: [{ lineNumber: coffeeLine.lineNumber, quantity: 2n }], reason: "cold coffee" };
    const first = await f.ordersAs(f.tokens.operator).refundOrder(partial);
    expect(first).toMatchObject({ refundMinor: 500n, order: { state: OrderState.PARTIALLY_REFUNDED, refundedMinor: 500n } });
    // A retry of the same refund refunds once.
    expect((await f.ordersAs(f.tokens.operator).refundOrder(partial)).order?.refundedMinor).toBe(500n);
    expect((await f.stock("kiosk-a", "coffee")).onHand).toBe(afterSale.onHand + 2n);
    const rest = await f.ordersAs(f.tokens.operator).refundOrder({ idempotencyKey: key(), orderId: completed.orderId, reason: "customer left" });
    expect(rest).toMatchObject({ refundMinor: 250n + 3000n, order: { state: OrderState.REFUNDED, refundedMinor: 3750n } });
    expect(rest.order!.tickets.every((t) => t.void)).toBe(true);
    expect((await f.stock("kiosk-a", "coffee")).onHand).toBe(afterSale.onHand + 3n);
    // payments counts a refund once the provider confirms it (its webhook comes a moment later).
    await expect
      .poll(async () => (await f.paymentsAs(f.tokens.operator).getPaymentIntent({ paymentIntentId: completed.paymentIntentId })).paymentIntent?.refundedMinor, eventually)
      .toBe(3750n);
    const over = await failure(f.ordersAs(f.tokens.operator).refundOrder({ idempotencyKey: key(), orderId: completed.orderId, reason: "again" }));
    expect(over.code).toBe(Code.FailedPrecondition);
  });
});

describe("who may do what", () => {
  it("a kiosk reads and lists only its own orders; a viewer cannot refund; a kiosk cannot refund", async () => {
    const { order } = await f.ordersAs(kioskA).createOrder({ idempotencyKey: key(), items: [{ sku: "coffee", quantity: 1n }], paymentMethod: "pm_card_visa" });
    const completed = await f.waitFor(kioskA, order!.orderId, done);
    expect((await failure(f.ordersAs(kioskB).getOrder({ orderId: completed.orderId }))).code).toBe(Code.NotFound);
    expect((await f.ordersAs(kioskB).listOrders({})).orders.every((o) => o.kioskId === "kiosk-b")).toBe(true);
    expect((await failure(f.ordersAs(kioskB).listOrders({ kioskId: "kiosk-a" }))).code).toBe(Code.PermissionDenied);
    const refund = { idempotencyKey: key(), orderId: completed.orderId, reason: "no" };
    expect((await failure(f.ordersAs(kioskB).refundOrder(refund))).code).toBe(Code.PermissionDenied);
    expect((await failure(f.ordersAs(kioskA).refundOrder(refund))).code).toBe(Code.PermissionDenied);
    expect((await failure(f.ordersAs(f.tokens.viewer).refundOrder(refund))).code).toBe(Code.PermissionDenied);
    expect((await failure(f.ordersAs(f.tokens.admin).createOrder({ idempotencyKey: key(), items: [{ sku: "coffee", quantity: 1n }], paymentMethod: "pm_card_visa" }))).code).toBe(Code.PermissionDenied);
    expect((await failure(f.ordersAs().getOrder({ orderId: completed.orderId }))).code).toBe(Code.Unauthenticated);
    expect((await f.ordersAs(f.tokens.viewer).getOrder({ orderId: completed.orderId })).order?.state).toBe(OrderState.COMPLETED);
    expect((await f.ordersAs(kioskA).getOrder({ orderId: completed.orderId })).order?.paymentIntentId).toBe(completed.paymentIntentId);
  });

  it("bad input is InvalidArgument naming the field", async () => {
    const kiosk = f.ordersAs(kioskA);
    const ok = { idempotencyKey: key(), items: [{ sku: "coffee", quantity: 1n }], paymentMethod: "pm_card_visa" };
    const cases: [() => Promise<unknown>, string][] = [
      [() => kiosk.createOrder({ ...ok, idempotencyKey: "" }), "idempotency_key"],
      [() => kiosk.createOrder({ ...ok, idempotencyKey: "has space" }), "idempotency_key"],
      [() => kiosk.createOrder({ ...ok, items: [] }), "items"],
      [() => kiosk.createOrder({ ...ok, items: [{ sku: "", quantity: 1n }] }), "items[0].sku"],
      [() => kiosk.createOrder({ ...ok, items: [{ sku: "coffee", quantity: 0n }] }), "items[0].quantity"],
      [() => kiosk.createOrder({ ...ok, items: [{ sku: "coffee", quantity: 1001n }] }), "items[0].quantity"],
      [() => kiosk.createOrder({ ...ok, seats: [{ eventId: "", seatId: "x" }] }), "seats[0].event_id"],
      [() => kiosk.createOrder({ ...ok, paymentMethod: "" }), "payment_method"],
      [() => kiosk.createOrder({ ...ok, paymentMethod: "pm card" }), "payment_method"],
      [() => kiosk.getOrder({ orderId: "nope" }), "order_id"],
      [() => kiosk.listOrders({ pageSize: 1000 }), "page_size"],
      [() => kiosk.listOrders({ pageToken: "forged" }), "page_token"],
      [() => f.ordersAs(f.tokens.viewer).listOrders({ state: 99 as OrderState }), "state"],
      [() => f.ordersAs(f.tokens.viewer).getSalesSummary({}), "start_time"],
      [() => f.ordersAs(f.tokens.operator).refundOrder({ idempotencyKey: key(), orderId: "x", reason: "r" }), "order_id"],
      [() => f.ordersAs(f.tokens.operator).refundOrder({ idempotencyKey: key(), orderId: "00000000-0000-4000-8000-000000000000", reason: "" }), "reason"],
    ];
    for (const [call, field] of cases) {
      const err = await failure(call());
      expect(err.code, field).toBe(Code.InvalidArgument);
      expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field, err.rawMessage).toBe(field);
    }
  });
});

describe("a stolen kiosk credential", () => {
  it("cannot reserve, commit, release or refund around orders; the sale, its stock and its money stay as they were", async () => {
    const { eventId, seatIds } = await f.event(2);
    const { order } = await f.ordersAs(kioskA).createOrder({ idempotencyKey: key(), items: [{ sku: "coffee", quantity: 1n }], seats: [{ eventId, seatId: seatIds[0]! }], paymentMethod: "pm_card_visa" });
    const completed = await f.waitFor(kioskA, order!.orderId, done);
    expect(completed.state).toBe(OrderState.COMPLETED);
    const stockBefore = await f.stock("kiosk-a", "coffee");
    const reservations = f.catalogAs(ReservationService, kioskA);
    const refused = [
      await failure(reservations.reserve({ reservationId: randomUUID(), items: [{ sku: "coffee", quantity: 5n }] })),
      await failure(reservations.reserve({ reservationId: randomUUID(), kioskId: "kiosk-a", seats: [{ eventId, seatId: seatIds[1]! }] })),
      await failure(reservations.commitReservation({ reservationId: completed.orderId })),
      await failure(reservations.releaseReservation({ reservationId: completed.orderId, reason: "stolen" })),
      await failure(f.paymentsAs(kioskA).refundPayment({ idempotencyKey: key(), paymentIntentId: completed.paymentIntentId, reason: "stolen" })),
      await failure(f.paymentsAs(kioskA).createPaymentIntent({ idempotencyKey: key(), orderId: completed.orderId, kioskId: "kiosk-a", amountMinor: 1n, currency: "EUR", paymentMethod: "pm_card_visa" })),
      // Nor may a person refund around orders (RefundOrder also restocks).
      await failure(f.paymentsAs(f.tokens.operator).refundPayment({ idempotencyKey: key(), paymentIntentId: completed.paymentIntentId, reason: "around orders" })),
    ];
    for (const err of refused) expect(err.code, err.rawMessage).toBe(Code.PermissionDenied);
    expect((await f.ordersAs(kioskA).getOrder({ orderId: completed.orderId })).order?.state).toBe(OrderState.COMPLETED);
    expect(await f.stock("kiosk-a", "coffee")).toEqual(stockBefore);
    const { seats } = await f.catalogAs(EventService, f.tokens.viewer).getSeatAvailability({ eventId });
    expect(seats.find((s) => s.seatId === seatIds[1])?.state).toBe(1); // still available
    expect((await f.paymentsAs(kioskA).getPaymentIntent({ paymentIntentId: completed.paymentIntentId })).paymentIntent?.state).toBe(PaymentIntentState.SUCCEEDED);
  });

  it("a declined order never completes on another payment naming it: the stray payment is refunded and recorded", async () => {
    const { eventId, seatIds } = await f.event(1);
    await f.nextCharges("decline", { decline_code: "insufficient_funds" });
    const { order } = await f.ordersAs(kioskA).createOrder({ idempotencyKey: key(), seats: [{ eventId, seatId: seatIds[0]! }], paymentMethod: "pm_card_visa" });
    const failed = await f.waitFor(kioskA, order!.orderId, done);
    expect(failed.state).toBe(OrderState.FAILED);
    // A 1-cent payment naming the order, made with orders' own identity (as a bug or a
    // compromised path would): it succeeds at the provider, and orders must not sell on it.
    const asOrders = f.paymentsAs(await f.auth.serviceToken("orders"));
    const { paymentIntent: stray } = await asOrders.createPaymentIntent({ idempotencyKey: key(), orderId: failed.orderId, kioskId: "kiosk-a", amountMinor: 1n, currency: "EUR", paymentMethod: "pm_card_visa" });
    expect(stray!.paymentIntentId).not.toBe(failed.paymentIntentId);
    await expect
      .poll(async () => (await asOrders.getPaymentIntent({ paymentIntentId: stray!.paymentIntentId })).paymentIntent?.state, eventually)
      .toBe(PaymentIntentState.REFUNDED);
    const after = (await f.ordersAs(kioskA).getOrder({ orderId: failed.orderId })).order!;
    expect(after.state).toBe(OrderState.FAILED);
    expect(after.tickets).toHaveLength(0);
    const { seats } = await f.catalogAs(EventService, f.tokens.viewer).getSeatAvailability({ eventId });
    expect(seats[0]?.state).toBe(1); // never sold
    await expect.poll(() => f.strayPayments(failed.orderId), eventually).toEqual([expect.objectContaining({ payment_intent_id: stray!.paymentIntentId, amount_minor: "1" })]);
  });
});

describe("queries", () => {
  it("lists by kiosk, state and time in pages; sums sales per kiosk and product in minor units", async () => {
    const start = new Date(Date.now() - 1_000);
    const kiosk = await f.device("kiosk-summary");
    await f.product("tea", 180n, { "kiosk-summary": 20n });
    const ids: string[] = [];
    for (const quantity of [1n, 2n, 3n]) {
      const { order } = await f.ordersAs(kiosk).createOrder({ idempotencyKey: key(), items: [{ sku: "tea", quantity }], paymentMethod: "pm_card_visa" });
      ids.push((await f.waitFor(kiosk, order!.orderId, done)).orderId);
    }
    const first = await f.ordersAs(f.tokens.viewer).listOrders({ kioskId: "kiosk-summary", state: OrderState.COMPLETED, pageSize: 2 });
    expect(first.orders.map((o) => o.orderId)).toEqual([ids[2], ids[1]]);
    const second = await f.ordersAs(f.tokens.viewer).listOrders({ kioskId: "kiosk-summary", state: OrderState.COMPLETED, pageSize: 2, pageToken: first.nextPageToken });
    expect(second.orders.map((o) => o.orderId)).toEqual([ids[0]]);
    expect(second.nextPageToken).toBe("");
    const none = await f.ordersAs(f.tokens.viewer).listOrders({ kioskId: "kiosk-summary", endTime: { seconds: BigInt(Math.floor(start.getTime() / 1000)), nanos: 0 } });
    expect(none.orders).toHaveLength(0);
    const line = (await f.ordersAs(f.tokens.viewer).getOrder({ orderId: ids[2]! })).order!.lines[0]!;
    await f.ordersAs(f.tokens.operator).refundOrder({ idempotencyKey: key(), orderId: ids[2]!, lines: [{ lineNumber: line.lineNumber, quantity: 1n }], reason: "spilled" });
    const range = { startTime: { seconds: BigInt(Math.floor(start.getTime() / 1000)), nanos: 0 }, endTime: { seconds: BigInt(Math.floor(Date.now() / 1000) + 60), nanos: 0 } };
    const summary = await f.ordersAs(f.tokens.viewer).getSalesSummary({ ...range, kioskId: "kiosk-summary" });
    expect(summary.kiosks).toEqual([expect.objectContaining({ kioskId: "kiosk-summary", currency: "EUR", orderCount: 3, netMinor: 5n * 180n, refundedMinor: 180n })]);
    expect(summary.products).toEqual([expect.objectContaining({ sku: "tea", currency: "EUR", quantity: 5n, netMinor: 900n })]);
  });
});

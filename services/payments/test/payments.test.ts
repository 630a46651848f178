// Payment intents as orders (as itself, the only caller that creates, confirms and
// refunds them), kiosks (reading their own) and staff use them: paying, idempotent
// retries (one intent, one charge), who may see, cancel and refund what, refunds and the
// ledger, against real auth, PostgreSQL, NATS and the provider simulator.
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PaymentRefundedEventSchema, PaymentSucceededEventSchema } from "@adminkiosk/proto/adminkiosk/payments/v1/events_pb";
import { PaymentIntentState, RefundState } from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { failure } from "../../../test/support/auth.js";
import { decode, startPayments, type PaymentsFixture } from "./fixture.js";

let f: PaymentsFixture;
let kioskA: string;
let kioskB: string;
/** PaymentService as the orders service. */
let orders: ReturnType<PaymentsFixture["asOrders"]>;
let n = 0;
const key = () => `key-${++n}-${Date.now()}`;
const order = () => `order-${++n}`;

beforeAll(async () => {
  f = await startPayments();
  kioskA = await f.enroll("kiosk-a");
  kioskB = await f.enroll("kiosk-b");
  orders = f.asOrders();
});
afterAll(async () => {
  await f?.stop();
});
afterEach(async () => {
  await f.expectLedgerBalanced();
});

/** A paid (SUCCEEDED) intent of kiosk A, as orders takes it. */
async function paid(amountMinor = 2500n) {
  const { paymentIntent } = await orders.createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-a", orderId: order(), amountMinor, currency: "EUR", paymentMethod: "pm_card_visa" });
  return f.waitForState(kioskA, paymentIntent!.paymentIntentId, PaymentIntentState.SUCCEEDED);
}

/** An intent of kiosk A waiting for its payment method (REQUIRES_PAYMENT). */
async function waiting(amountMinor = 100n) {
  return (await orders.createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-a", orderId: order(), amountMinor, currency: "EUR" })).paymentIntent!;
}

describe("paying", () => {
  it("orders takes a payment for a kiosk's sale: PROCESSING, then SUCCEEDED once the provider's webhook confirms; payment.succeeded is published", async () => {
    const { paymentIntent } = await orders.createPaymentIntent({
      idempotencyKey: key(),
      kioskId: "kiosk-a",
      orderId: "order-paying-1",
      amountMinor: 1250n,
      currency: "EUR",
      description: "2 × coffee",
      paymentMethod: "pm_card_visa",
    });
    expect(paymentIntent).toMatchObject({ kioskId: "kiosk-a", orderId: "order-paying-1", amountMinor: 1250n, currency: "EUR", state: PaymentIntentState.PROCESSING });
    const done = await f.waitForState(kioskA, paymentIntent!.paymentIntentId, PaymentIntentState.SUCCEEDED);
    expect(done.providerChargeId).toMatch(/^ch_/);
    const [event] = await f.events(done.paymentIntentId, 1);
    expect(event?.subject).toBe(`payments.intent.${done.paymentIntentId}.succeeded`);
    expect(decode(PaymentSucceededEventSchema, event!.data).paymentIntent).toMatchObject({ paymentIntentId: done.paymentIntentId, orderId: "order-paying-1", kioskId: "kiosk-a", amountMinor: 1250n });
    const { entries } = await f.ledgerAs(f.tokens.admin).listLedgerEntries({ paymentIntentId: done.paymentIntentId });
    expect(entries.map((e) => [e.kind, e.account, e.amountMinor])).toEqual([
      ["capture", "provider_clearing", 1250n],
      ["capture", "sales:kiosk-a", -1250n],
    ]);
  });

  it("an intent created without a payment method waits for ConfirmPaymentIntent, or is canceled by orders or an operator", async () => {
    const client = orders;
    const { paymentIntent: waiting } = await client.createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-a", orderId: order(), amountMinor: 500n, currency: "CZK" });
    expect(waiting).toMatchObject({ kioskId: "kiosk-a", state: PaymentIntentState.REQUIRES_PAYMENT });
    const { paymentIntent: confirmed } = await client.confirmPaymentIntent({ idempotencyKey: key(), paymentIntentId: waiting!.paymentIntentId, paymentMethod: "pm_card_visa" });
    expect(confirmed?.state).toBe(PaymentIntentState.PROCESSING);
    await f.waitForState(kioskA, waiting!.paymentIntentId, PaymentIntentState.SUCCEEDED);

    const { paymentIntent: other } = await client.createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-a", orderId: order(), amountMinor: 500n, currency: "CZK" });
    const { paymentIntent: canceled } = await client.cancelPaymentIntent({ idempotencyKey: key(), paymentIntentId: other!.paymentIntentId, reason: "customer walked away" });
    expect(canceled).toMatchObject({ state: PaymentIntentState.CANCELED, cancellationReason: "customer walked away" });
    const err = await failure(client.confirmPaymentIntent({ idempotencyKey: key(), paymentIntentId: other!.paymentIntentId, paymentMethod: "pm_card_visa" }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect((await f.events(other!.paymentIntentId, 1))[0]?.subject).toBe(`payments.intent.${other!.paymentIntentId}.canceled`);

    // An operator cancels one left waiting at any kiosk.
    const { paymentIntent: stuck } = await client.createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-b", orderId: order(), amountMinor: 700n, currency: "EUR" });
    const { paymentIntent: byOperator } = await f.paymentsAs(f.tokens.operator).cancelPaymentIntent({ idempotencyKey: key(), paymentIntentId: stuck!.paymentIntentId, reason: "terminal offline" });
    expect(byOperator).toMatchObject({ kioskId: "kiosk-b", state: PaymentIntentState.CANCELED, cancellationReason: "terminal offline" });
  });

  it("an order has one live intent: a second one (with a fresh key) is AlreadyExists; after a failure it may be paid again", async () => {
    const orderId = order();
    const { paymentIntent } = await orders.createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-a", orderId, amountMinor: 900n, currency: "EUR" });
    const err = await failure(orders.createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-a", orderId, amountMinor: 900n, currency: "EUR" }));
    expect(err.code).toBe(Code.AlreadyExists);
    expect(err.rawMessage).toContain(paymentIntent!.paymentIntentId);
    await orders.cancelPaymentIntent({ idempotencyKey: key(), paymentIntentId: paymentIntent!.paymentIntentId });
    const { paymentIntent: again } = await orders.createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-a", orderId, amountMinor: 900n, currency: "EUR" });
    expect(again?.paymentIntentId).not.toBe(paymentIntent!.paymentIntentId);
  });
});

describe("idempotency keys", () => {
  it("a retried create with the same key returns the same intent and charges once", async () => {
    const request = { idempotencyKey: key(), kioskId: "kiosk-a", orderId: order(), amountMinor: 4200n, currency: "EUR", paymentMethod: "pm_card_visa" };
    const first = await orders.createPaymentIntent(request);
    const second = await orders.createPaymentIntent(request);
    expect(second.paymentIntent?.paymentIntentId).toBe(first.paymentIntent?.paymentIntentId);
    const id = first.paymentIntent!.paymentIntentId;
    await f.waitForState(kioskA, id, PaymentIntentState.SUCCEEDED);
    // A retry after the outcome still answers what the first request answered.
    expect((await orders.createPaymentIntent(request)).paymentIntent?.state).toBe(PaymentIntentState.PROCESSING);
    expect(await f.simCharges(id)).toHaveLength(1);
    expect((await f.paymentsAs(f.tokens.viewer).listPaymentIntents({ orderId: request.orderId })).paymentIntents).toHaveLength(1);
  });

  it("concurrent requests with one key create one intent and one charge", async () => {
    const request = { idempotencyKey: key(), kioskId: "kiosk-a", orderId: order(), amountMinor: 3100n, currency: "EUR", paymentMethod: "pm_card_visa" };
    const answers = await Promise.all(Array.from({ length: 8 }, () => orders.createPaymentIntent(request)));
    const ids = new Set(answers.map((a) => a.paymentIntent?.paymentIntentId));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    await f.waitForState(kioskA, id!, PaymentIntentState.SUCCEEDED);
    expect(await f.simCharges(id!)).toHaveLength(1);
    expect((await f.paymentsAs(f.tokens.viewer).listPaymentIntents({ orderId: request.orderId })).paymentIntents).toHaveLength(1);
  });

  it("concurrent refunds with one key make one refund", async () => {
    const intent = await paid(1000n);
    const request = { idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, amountMinor: 300n, reason: "cold coffee" };
    const answers = await Promise.all(Array.from({ length: 6 }, () => orders.refundPayment(request)));
    expect(new Set(answers.map((a) => a.refund?.refundId)).size).toBe(1);
    await f.waitForState(kioskA, intent.paymentIntentId, PaymentIntentState.PARTIALLY_REFUNDED);
    expect(await f.simRefunds(intent.providerChargeId)).toHaveLength(1);
  });

  it("the same key with a different request is InvalidArgument naming idempotency_key", async () => {
    const idempotencyKey = key();
    const orderId = order();
    await orders.createPaymentIntent({ idempotencyKey, kioskId: "kiosk-a", orderId, amountMinor: 100n, currency: "EUR" });
    const changed = await failure(orders.createPaymentIntent({ idempotencyKey, kioskId: "kiosk-a", orderId, amountMinor: 10000n, currency: "EUR" }));
    expect(changed.code).toBe(Code.InvalidArgument);
    expect(changed.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("idempotency_key");
    // orders' keys are orders' own, whichever kiosk the sale is at: naming another kiosk is a different request.
    const elsewhere = await failure(orders.createPaymentIntent({ idempotencyKey, kioskId: "kiosk-b", orderId, amountMinor: 100n, currency: "EUR" }));
    expect(elsewhere.code).toBe(Code.InvalidArgument);
    expect(elsewhere.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("idempotency_key");
    // The same key on another RPC is a different request too.
    const other = await failure(orders.cancelPaymentIntent({ idempotencyKey, paymentIntentId: "00000000-0000-4000-8000-000000000000" }));
    expect(other.code).toBe(Code.InvalidArgument);
    expect((await f.paymentsAs(f.tokens.viewer).listPaymentIntents({ orderId })).paymentIntents).toHaveLength(1);
  });

  it("keys belong to the caller: an operator's same key is its own request, not orders'", async () => {
    const idempotencyKey = key();
    const created = (await orders.createPaymentIntent({ idempotencyKey, kioskId: "kiosk-b", orderId: order(), amountMinor: 100n, currency: "EUR" })).paymentIntent!;
    // For orders this key already names a CreatePaymentIntent; for the operator it is new.
    expect((await failure(orders.cancelPaymentIntent({ idempotencyKey, paymentIntentId: created.paymentIntentId }))).code).toBe(Code.InvalidArgument);
    const { paymentIntent } = await f.paymentsAs(f.tokens.operator).cancelPaymentIntent({ idempotencyKey, paymentIntentId: created.paymentIntentId, reason: "operator" });
    expect(paymentIntent).toMatchObject({ paymentIntentId: created.paymentIntentId, kioskId: "kiosk-b", state: PaymentIntentState.CANCELED });
    // orders' retry of its create still gets its stored answer.
    const again = await orders.createPaymentIntent({ idempotencyKey, kioskId: "kiosk-b", orderId: created.orderId, amountMinor: 100n, currency: "EUR" });
    expect(again.paymentIntent).toMatchObject({ paymentIntentId: created.paymentIntentId, state: PaymentIntentState.REQUIRES_PAYMENT });
  });

  it("a refused request is answered the same way on retry", async () => {
    const paymentIntent = await waiting();
    const request = { idempotencyKey: key(), paymentIntentId: paymentIntent.paymentIntentId, reason: "not paid yet" };
    const first = await failure(orders.refundPayment(request));
    expect(first.code).toBe(Code.FailedPrecondition);
    await orders.confirmPaymentIntent({ idempotencyKey: key(), paymentIntentId: paymentIntent.paymentIntentId, paymentMethod: "pm_card_visa" });
    await f.waitForState(kioskA, paymentIntent.paymentIntentId, PaymentIntentState.SUCCEEDED);
    // Now refundable, but this key already has its answer; a new key refunds.
    expect((await failure(orders.refundPayment(request))).rawMessage).toBe(first.rawMessage);
    await orders.refundPayment({ ...request, idempotencyKey: key() });
    await f.waitForState(kioskA, paymentIntent.paymentIntentId, PaymentIntentState.REFUNDED);
  });
});

describe("who may do what", () => {
  it("a kiosk reads and lists only its own payments; another kiosk's is NotFound", async () => {
    const intent = await paid(700n);
    expect((await f.paymentsAs(kioskA).getPaymentIntent({ paymentIntentId: intent.paymentIntentId })).paymentIntent?.kioskId).toBe("kiosk-a");
    expect((await failure(f.paymentsAs(kioskB).getPaymentIntent({ paymentIntentId: intent.paymentIntentId }))).code).toBe(Code.NotFound);
    const listed = await f.paymentsAs(kioskB).listPaymentIntents({});
    expect(listed.paymentIntents.every((p) => p.kioskId === "kiosk-b")).toBe(true);
    expect((await failure(f.paymentsAs(kioskB).listPaymentIntents({ kioskId: "kiosk-a" }))).code).toBe(Code.PermissionDenied);
    // orders reads every kiosk's.
    expect((await orders.getPaymentIntent({ paymentIntentId: intent.paymentIntentId })).paymentIntent?.kioskId).toBe("kiosk-a");
  });

  it("only orders creates, confirms and refunds: kiosks (even their own), people and other services are PermissionDenied, and nothing changes", async () => {
    const intent = await paid(800n);
    const pending = await waiting();
    const refused: [string, ReturnType<PaymentsFixture["paymentsAs"]>][] = [
      ["the intents' own kiosk", f.paymentsAs(kioskA)],
      ["another kiosk", f.paymentsAs(kioskB)],
      ["a viewer", f.paymentsAs(f.tokens.viewer)],
      ["an operator", f.paymentsAs(f.tokens.operator)],
      ["an admin", f.paymentsAs(f.tokens.admin)],
      ["the fleet service", f.asService("fleet")],
      ["the catalog service", f.asService("catalog")],
    ];
    for (const [who, client] of refused) {
      const create = client.createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-a", orderId: order(), amountMinor: 100n, currency: "EUR", paymentMethod: "pm_card_visa" });
      expect((await failure(create)).code, `${who}: CreatePaymentIntent`).toBe(Code.PermissionDenied);
      const confirm = client.confirmPaymentIntent({ idempotencyKey: key(), paymentIntentId: pending.paymentIntentId, paymentMethod: "pm_card_visa" });
      expect((await failure(confirm)).code, `${who}: ConfirmPaymentIntent`).toBe(Code.PermissionDenied);
      const refund = client.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, reason: "theft" });
      expect((await failure(refund)).code, `${who}: RefundPayment`).toBe(Code.PermissionDenied);
    }
    // Cancel: orders or an operator (tested above), no kiosk, viewer or other service.
    for (const [who, client] of refused.filter(([who]) => who !== "an operator" && who !== "an admin")) {
      const cancel = client.cancelPaymentIntent({ idempotencyKey: key(), paymentIntentId: pending.paymentIntentId });
      expect((await failure(cancel)).code, `${who}: CancelPaymentIntent`).toBe(Code.PermissionDenied);
    }
    // Services other than orders do not read payments either.
    expect((await failure(f.asService("fleet").getPaymentIntent({ paymentIntentId: intent.paymentIntentId }))).code).toBe(Code.PermissionDenied);
    expect((await failure(f.asService("fleet").listPaymentIntents({}))).code).toBe(Code.PermissionDenied);

    // Nothing changed: no intent, no charge, no refund.
    expect((await f.paymentsAs(kioskA).getPaymentIntent({ paymentIntentId: pending.paymentIntentId })).paymentIntent?.state).toBe(PaymentIntentState.REQUIRES_PAYMENT);
    expect(await f.simCharges(pending.paymentIntentId)).toEqual([]);
    const after = await f.paymentsAs(kioskA).getPaymentIntent({ paymentIntentId: intent.paymentIntentId });
    expect(after.paymentIntent?.state).toBe(PaymentIntentState.SUCCEEDED);
    expect(after.refunds).toEqual([]);
    // The newest intent of all is still the last one orders created.
    expect((await f.paymentsAs(f.tokens.viewer).listPaymentIntents({ pageSize: 1 })).paymentIntents.map((p) => p.paymentIntentId)).toEqual([pending.paymentIntentId]);
    await orders.cancelPaymentIntent({ idempotencyKey: key(), paymentIntentId: pending.paymentIntentId, reason: "test over" });
  });

  it("a viewer reads and lists; the ledger is the admin's; no token is Unauthenticated", async () => {
    const intent = await paid(600n);
    const viewer = f.paymentsAs(f.tokens.viewer);
    expect((await viewer.getPaymentIntent({ paymentIntentId: intent.paymentIntentId })).paymentIntent?.state).toBe(PaymentIntentState.SUCCEEDED);
    expect((await viewer.listPaymentIntents({ kioskId: "kiosk-a", state: PaymentIntentState.SUCCEEDED })).paymentIntents.map((p) => p.paymentIntentId)).toContain(intent.paymentIntentId);
    expect((await failure(f.ledgerAs(f.tokens.operator).getLedgerBalance({}))).code).toBe(Code.PermissionDenied);
    expect((await failure(f.paymentsAs().getPaymentIntent({ paymentIntentId: intent.paymentIntentId }))).code).toBe(Code.Unauthenticated);
    expect((await failure(f.paymentsAs().createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-a", orderId: order(), amountMinor: 1n, currency: "EUR" }))).code).toBe(Code.Unauthenticated);
  });

  it("bad input is InvalidArgument naming the field", async () => {
    const kiosk = f.paymentsAs(kioskA);
    const ok = { idempotencyKey: key(), kioskId: "kiosk-a", orderId: "o-1", amountMinor: 100n, currency: "EUR" };
    // Calls are made one at a time, so no refusal goes unobserved.
    const cases: [() => Promise<unknown>, string][] = [
      [() => orders.createPaymentIntent({ ...ok, idempotencyKey: "" }), "idempotency_key"],
      [() => orders.createPaymentIntent({ ...ok, idempotencyKey: "has space" }), "idempotency_key"],
      // orders names the kiosk the sale is at.
      [() => orders.createPaymentIntent({ ...ok, kioskId: "" }), "kiosk_id"],
      [() => orders.createPaymentIntent({ ...ok, kioskId: "kiosk.a" }), "kiosk_id"],
      [() => orders.createPaymentIntent({ ...ok, orderId: "" }), "order_id"],
      [() => orders.createPaymentIntent({ ...ok, orderId: "a.b" }), "order_id"],
      [() => orders.createPaymentIntent({ ...ok, amountMinor: 0n }), "amount_minor"],
      [() => orders.createPaymentIntent({ ...ok, amountMinor: -5n }), "amount_minor"],
      [() => orders.createPaymentIntent({ ...ok, amountMinor: 100_000_000n }), "amount_minor"],
      [() => orders.createPaymentIntent({ ...ok, currency: "eur" }), "currency"],
      [() => orders.createPaymentIntent({ ...ok, currency: "XYZ" }), "currency"],
      [() => orders.createPaymentIntent({ ...ok, description: "x".repeat(201) }), "description"],
      [() => orders.createPaymentIntent({ ...ok, paymentMethod: "pm card" }), "payment_method"],
      [() => orders.confirmPaymentIntent({ idempotencyKey: key(), paymentIntentId: "nope", paymentMethod: "pm_card_visa" }), "payment_intent_id"],
      [() => kiosk.getPaymentIntent({ paymentIntentId: "" }), "payment_intent_id"],
      [() => kiosk.listPaymentIntents({ pageSize: 1000 }), "page_size"],
      [() => kiosk.listPaymentIntents({ pageToken: "forged" }), "page_token"],
      [() => f.paymentsAs(f.tokens.viewer).listPaymentIntents({ state: 99 as PaymentIntentState }), "state"],
      [() => orders.refundPayment({ idempotencyKey: key(), paymentIntentId: "00000000-0000-4000-8000-000000000000", reason: "" }), "reason"],
      [() => orders.refundPayment({ idempotencyKey: key(), paymentIntentId: "00000000-0000-4000-8000-000000000000", reason: "r", amountMinor: 0n }), "amount_minor"],
    ];
    for (const [call, field] of cases) {
      const err = await failure(call());
      expect(err.code, field).toBe(Code.InvalidArgument);
      expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field, err.rawMessage).toBe(field);
    }
  });

  it("lists newest first, in pages", async () => {
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await orders.createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-pages", orderId: order(), amountMinor: 100n, currency: "EUR" })).paymentIntent!.paymentIntentId);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await f.paymentsAs(f.tokens.viewer).listPaymentIntents({ kioskId: "kiosk-pages", pageSize: 2, pageToken });
      seen.push(...page.paymentIntents.map((p) => p.paymentIntentId));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(created.reverse());
  });
});

describe("refunds", () => {
  it("a partial refund, then the rest: PARTIALLY_REFUNDED, then REFUNDED, each published, the ledger balanced", async () => {
    const intent = await paid(2000n);
    const { refund } = await orders.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, amountMinor: 500n, reason: "one ticket returned" });
    expect(refund).toMatchObject({ amountMinor: 500n, state: RefundState.PENDING, reason: "one ticket returned", requestedBy: "service:orders" });
    const partial = await f.waitForState(kioskA, intent.paymentIntentId, PaymentIntentState.PARTIALLY_REFUNDED);
    expect(partial.refundedMinor).toBe(500n);

    // The rest, without an amount.
    const { refund: rest } = await orders.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, reason: "event canceled" });
    expect(rest?.amountMinor).toBe(1500n);
    const full = await f.waitForState(kioskA, intent.paymentIntentId, PaymentIntentState.REFUNDED);
    expect(full.refundedMinor).toBe(2000n);

    const { refunds } = await f.paymentsAs(f.tokens.viewer).getPaymentIntent({ paymentIntentId: intent.paymentIntentId });
    expect(refunds.map((r) => [r.amountMinor, r.state])).toEqual([
      [500n, RefundState.SUCCEEDED],
      [1500n, RefundState.SUCCEEDED],
    ]);
    expect(await f.simRefunds(intent.providerChargeId)).toHaveLength(2);
    const events = await f.events(intent.paymentIntentId, 3);
    const refunded = events.filter((e) => e.subject.endsWith(".refunded")).map((e) => decode(PaymentRefundedEventSchema, e.data));
    expect(refunded.map((e) => [e.refund?.amountMinor, e.paymentIntent?.refundedMinor])).toEqual([
      [500n, 500n],
      [1500n, 2000n],
    ]);
    const { accounts } = await f.ledgerAs(f.tokens.admin).getLedgerBalance({});
    expect(accounts.find((a) => a.account === "refunds:kiosk-a")?.balanceMinor).toBeGreaterThanOrEqual(2000n);
  });

  it("refunding more than is left is InvalidArgument on amount_minor; a fully refunded payment is FailedPrecondition", async () => {
    const intent = await paid(1000n);
    await orders.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, amountMinor: 600n, reason: "part" });
    // The pending 600 counts: only 400 is left even before the provider confirms.
    const over = await failure(orders.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, amountMinor: 401n, reason: "too much" }));
    expect(over.code).toBe(Code.InvalidArgument);
    expect(over.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("amount_minor");
    await orders.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, amountMinor: 400n, reason: "the rest" });
    await f.waitForState(kioskA, intent.paymentIntentId, PaymentIntentState.REFUNDED);
    expect((await failure(orders.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, reason: "again" }))).code).toBe(Code.FailedPrecondition);
  });
});

describe("observability", () => {
  it("counts intents by state on /metrics", async () => {
    const text = await (await fetch(`${f.payments.url}/metrics`)).text();
    expect(text).toMatch(/payments_intent_transitions_total\{state="succeeded",service="payments"\} \d+/);
    expect(text).toMatch(/payments_intents_processing\{service="payments"\} \d+/);
  });
});

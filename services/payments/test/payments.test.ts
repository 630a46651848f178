// Payment intents as kiosks (and orders, forwarding a kiosk's credential) and staff use
// them: paying, idempotent retries (one intent, one charge), who may see and refund
// what, refunds and the ledger, against real auth, PostgreSQL, NATS and the provider
// simulator.
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
let n = 0;
const key = () => `key-${++n}-${Date.now()}`;
const order = () => `order-${++n}`;

beforeAll(async () => {
  f = await startPayments();
  kioskA = await f.enroll("kiosk-a");
  kioskB = await f.enroll("kiosk-b");
});
afterAll(async () => {
  await f?.stop();
});
afterEach(async () => {
  await f.expectLedgerBalanced();
});

/** A paid (SUCCEEDED) intent of kiosk A. */
async function paid(amountMinor = 2500n) {
  const { paymentIntent } = await f.paymentsAs(kioskA).createPaymentIntent({ idempotencyKey: key(), orderId: order(), amountMinor, currency: "EUR", paymentMethod: "pm_card_visa" });
  return f.waitForState(kioskA, paymentIntent!.paymentIntentId, PaymentIntentState.SUCCEEDED);
}

describe("paying", () => {
  it("a kiosk pays: PROCESSING, then SUCCEEDED once the provider's webhook confirms; payment.succeeded is published", async () => {
    const { paymentIntent } = await f.paymentsAs(kioskA).createPaymentIntent({
      idempotencyKey: key(),
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

  it("an intent created without a payment method waits for ConfirmPaymentIntent, or can be canceled", async () => {
    const client = f.paymentsAs(kioskA);
    const { paymentIntent: waiting } = await client.createPaymentIntent({ idempotencyKey: key(), orderId: order(), amountMinor: 500n, currency: "CZK" });
    expect(waiting?.state).toBe(PaymentIntentState.REQUIRES_PAYMENT);
    const { paymentIntent: confirmed } = await client.confirmPaymentIntent({ idempotencyKey: key(), paymentIntentId: waiting!.paymentIntentId, paymentMethod: "pm_card_visa" });
    expect(confirmed?.state).toBe(PaymentIntentState.PROCESSING);
    await f.waitForState(kioskA, waiting!.paymentIntentId, PaymentIntentState.SUCCEEDED);

    const { paymentIntent: other } = await client.createPaymentIntent({ idempotencyKey: key(), orderId: order(), amountMinor: 500n, currency: "CZK" });
    const { paymentIntent: canceled } = await client.cancelPaymentIntent({ idempotencyKey: key(), paymentIntentId: other!.paymentIntentId, reason: "customer walked away" });
    expect(canceled).toMatchObject({ state: PaymentIntentState.CANCELED, cancellationReason: "customer walked away" });
    const err = await failure(client.confirmPaymentIntent({ idempotencyKey: key(), paymentIntentId: other!.paymentIntentId, paymentMethod: "pm_card_visa" }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect((await f.events(other!.paymentIntentId, 1))[0]?.subject).toBe(`payments.intent.${other!.paymentIntentId}.canceled`);
  });

  it("an order has one live intent: a second one (with a fresh key) is AlreadyExists; after a failure it may be paid again", async () => {
    const orderId = order();
    const { paymentIntent } = await f.paymentsAs(kioskA).createPaymentIntent({ idempotencyKey: key(), orderId, amountMinor: 900n, currency: "EUR" });
    const err = await failure(f.paymentsAs(kioskA).createPaymentIntent({ idempotencyKey: key(), orderId, amountMinor: 900n, currency: "EUR" }));
    expect(err.code).toBe(Code.AlreadyExists);
    expect(err.rawMessage).toContain(paymentIntent!.paymentIntentId);
    await f.paymentsAs(kioskA).cancelPaymentIntent({ idempotencyKey: key(), paymentIntentId: paymentIntent!.paymentIntentId });
    const { paymentIntent: again } = await f.paymentsAs(kioskA).createPaymentIntent({ idempotencyKey: key(), orderId, amountMinor: 900n, currency: "EUR" });
    expect(again?.paymentIntentId).not.toBe(paymentIntent!.paymentIntentId);
  });
});

describe("idempotency keys", () => {
  it("a retried create with the same key returns the same intent and charges once", async () => {
    const request = { idempotencyKey: key(), orderId: order(), amountMinor: 4200n, currency: "EUR", paymentMethod: "pm_card_visa" };
    const first = await f.paymentsAs(kioskA).createPaymentIntent(request);
    const second = await f.paymentsAs(kioskA).createPaymentIntent(request);
    expect(second.paymentIntent?.paymentIntentId).toBe(first.paymentIntent?.paymentIntentId);
    const id = first.paymentIntent!.paymentIntentId;
    await f.waitForState(kioskA, id, PaymentIntentState.SUCCEEDED);
    // A retry after the outcome still answers what the first request answered.
    expect((await f.paymentsAs(kioskA).createPaymentIntent(request)).paymentIntent?.state).toBe(PaymentIntentState.PROCESSING);
    expect(await f.simCharges(id)).toHaveLength(1);
    expect((await f.paymentsAs(kioskA).listPaymentIntents({ orderId: request.orderId })).paymentIntents).toHaveLength(1);
  });

  it("concurrent requests with one key create one intent and one charge", async () => {
    const request = { idempotencyKey: key(), orderId: order(), amountMinor: 3100n, currency: "EUR", paymentMethod: "pm_card_visa" };
    const answers = await Promise.all(Array.from({ length: 8 }, () => f.paymentsAs(kioskA).createPaymentIntent(request)));
    const ids = new Set(answers.map((a) => a.paymentIntent?.paymentIntentId));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    await f.waitForState(kioskA, id!, PaymentIntentState.SUCCEEDED);
    expect(await f.simCharges(id!)).toHaveLength(1);
    expect((await f.paymentsAs(kioskA).listPaymentIntents({ orderId: request.orderId })).paymentIntents).toHaveLength(1);
  });

  it("concurrent refunds with one key make one refund", async () => {
    const intent = await paid(1000n);
    const request = { idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, amountMinor: 300n, reason: "cold coffee" };
    const answers = await Promise.all(Array.from({ length: 6 }, () => f.paymentsAs(f.tokens.operator).refundPayment(request)));
    expect(new Set(answers.map((a) => a.refund?.refundId)).size).toBe(1);
    await f.waitForState(kioskA, intent.paymentIntentId, PaymentIntentState.PARTIALLY_REFUNDED);
    expect(await f.simRefunds(intent.providerChargeId)).toHaveLength(1);
  });

  it("the same key with a different request is InvalidArgument naming idempotency_key", async () => {
    const idempotencyKey = key();
    const orderId = order();
    await f.paymentsAs(kioskA).createPaymentIntent({ idempotencyKey, orderId, amountMinor: 100n, currency: "EUR" });
    const changed = await failure(f.paymentsAs(kioskA).createPaymentIntent({ idempotencyKey, orderId, amountMinor: 10000n, currency: "EUR" }));
    expect(changed.code).toBe(Code.InvalidArgument);
    expect(changed.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("idempotency_key");
    // The same key on another RPC is a different request too.
    const other = await failure(f.paymentsAs(kioskA).cancelPaymentIntent({ idempotencyKey, paymentIntentId: "00000000-0000-4000-8000-000000000000" }));
    expect(other.code).toBe(Code.InvalidArgument);
    expect((await f.paymentsAs(kioskA).listPaymentIntents({ orderId })).paymentIntents).toHaveLength(1);
  });

  it("keys belong to the caller: another kiosk's same key is its own request", async () => {
    const idempotencyKey = key();
    const a = await f.paymentsAs(kioskA).createPaymentIntent({ idempotencyKey, orderId: order(), amountMinor: 100n, currency: "EUR" });
    const b = await f.paymentsAs(kioskB).createPaymentIntent({ idempotencyKey, orderId: order(), amountMinor: 100n, currency: "EUR" });
    expect(b.paymentIntent?.paymentIntentId).not.toBe(a.paymentIntent?.paymentIntentId);
    expect(b.paymentIntent?.kioskId).toBe("kiosk-b");
  });

  it("a refused request is answered the same way on retry", async () => {
    const { paymentIntent } = await f.paymentsAs(kioskA).createPaymentIntent({ idempotencyKey: key(), orderId: order(), amountMinor: 100n, currency: "EUR" });
    const request = { idempotencyKey: key(), paymentIntentId: paymentIntent!.paymentIntentId, reason: "not paid yet" };
    const first = await failure(f.paymentsAs(f.tokens.operator).refundPayment(request));
    expect(first.code).toBe(Code.FailedPrecondition);
    await f.paymentsAs(kioskA).confirmPaymentIntent({ idempotencyKey: key(), paymentIntentId: paymentIntent!.paymentIntentId, paymentMethod: "pm_card_visa" });
    await f.waitForState(kioskA, paymentIntent!.paymentIntentId, PaymentIntentState.SUCCEEDED);
    // Now refundable, but this key already has its answer; a new key refunds.
    expect((await failure(f.paymentsAs(f.tokens.operator).refundPayment(request))).rawMessage).toBe(first.rawMessage);
    await f.paymentsAs(f.tokens.operator).refundPayment({ ...request, idempotencyKey: key() });
    await f.waitForState(kioskA, paymentIntent!.paymentIntentId, PaymentIntentState.REFUNDED);
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
  });

  it("a kiosk cannot refund or cancel another kiosk's payment", async () => {
    const intent = await paid(800n);
    const refund = await failure(f.paymentsAs(kioskB).refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, reason: "theft" }));
    expect(refund.code).toBe(Code.NotFound);
    const { paymentIntent: waiting } = await f.paymentsAs(kioskA).createPaymentIntent({ idempotencyKey: key(), orderId: order(), amountMinor: 100n, currency: "EUR" });
    expect((await failure(f.paymentsAs(kioskB).cancelPaymentIntent({ idempotencyKey: key(), paymentIntentId: waiting!.paymentIntentId }))).code).toBe(Code.NotFound);
    expect((await f.paymentsAs(kioskA).getPaymentIntent({ paymentIntentId: intent.paymentIntentId })).paymentIntent?.state).toBe(PaymentIntentState.SUCCEEDED);
  });

  it("a viewer reads and lists but cannot refund; people cannot create intents; no token is Unauthenticated", async () => {
    const intent = await paid(600n);
    const viewer = f.paymentsAs(f.tokens.viewer);
    expect((await viewer.getPaymentIntent({ paymentIntentId: intent.paymentIntentId })).paymentIntent?.state).toBe(PaymentIntentState.SUCCEEDED);
    expect((await viewer.listPaymentIntents({ kioskId: "kiosk-a", state: PaymentIntentState.SUCCEEDED })).paymentIntents.map((p) => p.paymentIntentId)).toContain(intent.paymentIntentId);
    expect((await failure(viewer.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, reason: "no" }))).code).toBe(Code.PermissionDenied);
    expect((await failure(f.ledgerAs(f.tokens.operator).getLedgerBalance({}))).code).toBe(Code.PermissionDenied);
    expect((await failure(f.paymentsAs(f.tokens.admin).createPaymentIntent({ idempotencyKey: key(), orderId: order(), amountMinor: 1n, currency: "EUR" }))).code).toBe(Code.PermissionDenied);
    expect((await failure(f.paymentsAs().getPaymentIntent({ paymentIntentId: intent.paymentIntentId }))).code).toBe(Code.Unauthenticated);
  });

  it("bad input is InvalidArgument naming the field", async () => {
    const kiosk = f.paymentsAs(kioskA);
    const ok = { idempotencyKey: key(), orderId: "o-1", amountMinor: 100n, currency: "EUR" };
    // Calls are made one at a time, so no refusal goes unobserved.
    const cases: [() => Promise<unknown>, string][] = [
      [() => kiosk.createPaymentIntent({ ...ok, idempotencyKey: "" }), "idempotency_key"],
      [() => kiosk.createPaymentIntent({ ...ok, idempotencyKey: "has space" }), "idempotency_key"],
      [() => kiosk.createPaymentIntent({ ...ok, orderId: "" }), "order_id"],
      [() => kiosk.createPaymentIntent({ ...ok, orderId: "a.b" }), "order_id"],
      [() => kiosk.createPaymentIntent({ ...ok, amountMinor: 0n }), "amount_minor"],
      [() => kiosk.createPaymentIntent({ ...ok, amountMinor: -5n }), "amount_minor"],
      [() => kiosk.createPaymentIntent({ ...ok, amountMinor: 100_000_000n }), "amount_minor"],
      [() => kiosk.createPaymentIntent({ ...ok, currency: "eur" }), "currency"],
      [() => kiosk.createPaymentIntent({ ...ok, currency: "XYZ" }), "currency"],
      [() => kiosk.createPaymentIntent({ ...ok, description: "x".repeat(201) }), "description"],
      [() => kiosk.createPaymentIntent({ ...ok, paymentMethod: "pm card" }), "payment_method"],
      [() => kiosk.confirmPaymentIntent({ idempotencyKey: key(), paymentIntentId: "nope", paymentMethod: "pm_card_visa" }), "payment_intent_id"],
      [() => kiosk.getPaymentIntent({ paymentIntentId: "" }), "payment_intent_id"],
      [() => kiosk.listPaymentIntents({ pageSize: 1000 }), "page_size"],
      [() => kiosk.listPaymentIntents({ pageToken: "forged" }), "page_token"],
      [() => f.paymentsAs(f.tokens.viewer).listPaymentIntents({ state: 99 as PaymentIntentState }), "state"],
      [() => f.paymentsAs(f.tokens.operator).refundPayment({ idempotencyKey: key(), paymentIntentId: "00000000-0000-4000-8000-000000000000", reason: "" }), "reason"],
      [() => f.paymentsAs(f.tokens.operator).refundPayment({ idempotencyKey: key(), paymentIntentId: "00000000-0000-4000-8000-000000000000", reason: "r", amountMinor: 0n }), "amount_minor"],
    ];
    for (const [call, field] of cases) {
      const err = await failure(call());
      expect(err.code, field).toBe(Code.InvalidArgument);
      expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field, err.rawMessage).toBe(field);
    }
  });

  it("lists newest first, in pages", async () => {
    const kiosk = await f.enroll("kiosk-pages");
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await f.paymentsAs(kiosk).createPaymentIntent({ idempotencyKey: key(), orderId: order(), amountMinor: 100n, currency: "EUR" })).paymentIntent!.paymentIntentId);
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
    const operator = f.paymentsAs(f.tokens.operator);
    const { refund } = await operator.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, amountMinor: 500n, reason: "one ticket returned" });
    expect(refund).toMatchObject({ amountMinor: 500n, state: RefundState.PENDING, reason: "one ticket returned" });
    expect(refund?.requestedBy).toMatch(/^user:/);
    const partial = await f.waitForState(kioskA, intent.paymentIntentId, PaymentIntentState.PARTIALLY_REFUNDED);
    expect(partial.refundedMinor).toBe(500n);

    // The rest, as the kiosk itself, without an amount.
    const { refund: rest } = await f.paymentsAs(kioskA).refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, reason: "event canceled" });
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
    const operator = f.paymentsAs(f.tokens.operator);
    await operator.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, amountMinor: 600n, reason: "part" });
    // The pending 600 counts: only 400 is left even before the provider confirms.
    const over = await failure(operator.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, amountMinor: 401n, reason: "too much" }));
    expect(over.code).toBe(Code.InvalidArgument);
    expect(over.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("amount_minor");
    await operator.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, amountMinor: 400n, reason: "the rest" });
    await f.waitForState(kioskA, intent.paymentIntentId, PaymentIntentState.REFUNDED);
    expect((await failure(operator.refundPayment({ idempotencyKey: key(), paymentIntentId: intent.paymentIntentId, reason: "again" }))).code).toBe(Code.FailedPrecondition);
  });
});

describe("observability", () => {
  it("counts intents by state on /metrics", async () => {
    const text = await (await fetch(`${f.payments.url}/metrics`)).text();
    expect(text).toMatch(/payments_intent_transitions_total\{state="succeeded",service="payments"\} \d+/);
    expect(text).toMatch(/payments_intents_processing\{service="payments"\} \d+/);
  });
});

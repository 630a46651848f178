// The reconciler: a payment whose webhook never comes (the provider gave up delivering it, or a
// restore took payments back to before it) is settled from the provider's own answer, exactly
// as the webhook would have settled it: one state change, one event, the same ledger entries.
// A charge still pending at the provider is left alone until the confirmation timeout, and the
// timeout asks the provider before it gives a payment up.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PaymentFailedEventSchema, PaymentSucceededEventSchema } from "@adminkiosk/proto/adminkiosk/payments/v1/events_pb";
import { PaymentIntentState } from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import { eventually } from "@adminkiosk/devstack";
import { signatureFor } from "../src/webhook-signature.js";
import { decode, startPayments, type PaymentsFixture } from "./fixture.js";

let n = 0;
const key = () => `reconcile-${++n}-${Date.now()}`;

/** A payment at `kioskId`, as orders takes it. */
const pay = async (f: PaymentsFixture, kioskId: string, amountMinor = 1500n) =>
  (await f.asOrders().createPaymentIntent({ idempotencyKey: key(), kioskId, orderId: `order-${++n}`, amountMinor, currency: "EUR", paymentMethod: "pm_card_visa" })).paymentIntent!;

/** The value of a series on payments' /metrics whose labels include `labels` (0 when absent). */
async function metric(f: PaymentsFixture, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${f.payments.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

const ledgerOf = async (f: PaymentsFixture, id: string) => (await f.ledgerAs(f.tokens.admin).listLedgerEntries({ paymentIntentId: id })).entries.map((e) => [e.kind, e.account, e.amountMinor]);

// The confirmation timeout (60 s) is past every wait here: only the reconciler can settle them.
describe("the reconciler (an intent processing longer than 1 s is looked up at the provider)", () => {
  let f: PaymentsFixture;
  let kiosk: string;
  beforeAll(async () => {
    f = await startPayments({ PAYMENT_RECONCILE_AFTER: "1s", PAYMENT_RECONCILE_INTERVAL: "200ms", PAYMENT_CONFIRM_TIMEOUT: "60s" });
    kiosk = await f.enroll("kiosk-r");
  });
  afterAll(async () => {
    await f?.stop();
  });
  afterEach(async () => {
    await f.expectLedgerBalanced();
  });

  it("a capture whose webhook never came: the payment succeeds from the provider's answer, published once, booked once", async () => {
    const reconciled = () => metric(f, "payments_reconciled_total", 'outcome="succeeded"');
    const before = await reconciled();
    await f.nextCharges("succeed", { drop_webhook: true });
    const intent = await pay(f, "kiosk-r", 1800n);
    const done = await f.waitForState(kiosk, intent.paymentIntentId, PaymentIntentState.SUCCEEDED);
    // The provider sent nothing: only the lookup can have told payments.
    expect(await f.simDeliveries(intent.paymentIntentId)).toEqual([]);
    const [charge] = await f.simCharges(intent.paymentIntentId);
    expect(done.providerChargeId).toBe(charge!.id);
    expect(await reconciled()).toBe(before + 1);
    expect(await ledgerOf(f, intent.paymentIntentId)).toEqual([
      ["capture", "provider_clearing", 1800n],
      ["capture", "sales:kiosk-r", -1800n],
    ]);

    // The provider's webhook turns up after all: nothing changes a second time.
    const body = JSON.stringify({
      id: `evt_late_${n}`,
      object: "event",
      type: "charge.succeeded",
      created: Math.floor(Date.now() / 1000),
      data: { object: { object: "charge", id: charge!.id, reference: intent.paymentIntentId, amount_minor: 1800, currency: "EUR", status: "succeeded" } },
    });
    const res = await fetch(f.webhookUrl, { method: "POST", headers: { "content-type": "application/json", "provider-signature": signatureFor([f.webhookSecret], body) }, body });
    expect(await res.json()).toEqual({ received: true, outcome: "ignored" });
    const events = await f.events(intent.paymentIntentId, 1);
    expect(events.map((e) => e.subject)).toEqual([`payments.intent.${intent.paymentIntentId}.succeeded`]);
    expect(decode(PaymentSucceededEventSchema, events[0]!.data).paymentIntent).toMatchObject({ paymentIntentId: intent.paymentIntentId, amountMinor: 1800n });
    expect(await ledgerOf(f, intent.paymentIntentId)).toHaveLength(2);
  });

  it("a decline whose webhook never came: the payment fails with the provider's decline code", async () => {
    await f.nextCharges("decline", { decline_code: "insufficient_funds", drop_webhook: true });
    const intent = await pay(f, "kiosk-r");
    const failed = await f.waitForState(kiosk, intent.paymentIntentId, PaymentIntentState.FAILED);
    expect(failed.failureCode).toBe("insufficient_funds");
    expect(await f.simDeliveries(intent.paymentIntentId)).toEqual([]);
    const events = await f.events(intent.paymentIntentId, 1);
    expect(events.map((e) => e.subject)).toEqual([`payments.intent.${intent.paymentIntentId}.failed`]);
    expect(decode(PaymentFailedEventSchema, events[0]!.data).failureCode).toBe("insufficient_funds");
    expect(await ledgerOf(f, intent.paymentIntentId)).toEqual([]);
  });

  it("a charge still pending at the provider is left processing (the confirmation timeout decides)", async () => {
    const pending = () => metric(f, "payments_reconciled_total", 'outcome="pending"');
    const before = await pending();
    await f.nextCharges("timeout");
    const intent = await pay(f, "kiosk-r");
    // Asked, and answered pending, at least twice: the reconciler leaves it as it is.
    await expect.poll(pending, eventually).toBeGreaterThanOrEqual(before + 2);
    expect((await f.paymentsAs(kiosk).getPaymentIntent({ paymentIntentId: intent.paymentIntentId })).paymentIntent?.state).toBe(PaymentIntentState.PROCESSING);
    expect(await f.events(intent.paymentIntentId, 0)).toEqual([]);
  });
});

describe("the confirmation timeout asks the provider first (the reconciler's own threshold never reached)", () => {
  let f: PaymentsFixture;
  let kiosk: string;
  beforeAll(async () => {
    // As after a restore or a long outage: intents are past the timeout before the reconciler's
    // turn. 6 s: long enough for a loaded machine to have submitted the charge by then.
    f = await startPayments({ PAYMENT_RECONCILE_AFTER: "1h", PAYMENT_CONFIRM_TIMEOUT: "6s" });
    kiosk = await f.enroll("kiosk-t");
  });
  afterAll(async () => {
    await f?.stop();
  });

  it("a capture whose webhook never came is booked as succeeded, not timed out; a pending charge times out and is voided", async () => {
    await f.nextCharges("succeed", { drop_webhook: true });
    const captured = await pay(f, "kiosk-t", 900n);
    await f.nextCharges("timeout");
    const pending = await pay(f, "kiosk-t", 700n);
    await f.waitForState(kiosk, captured.paymentIntentId, PaymentIntentState.SUCCEEDED);
    expect((await f.events(captured.paymentIntentId, 1)).map((e) => e.subject)).toEqual([`payments.intent.${captured.paymentIntentId}.succeeded`]);
    expect((await f.waitForState(kiosk, pending.paymentIntentId, PaymentIntentState.FAILED)).failureCode).toBe("timeout");
    await expect.poll(async () => (await f.simCharges(pending.paymentIntentId)).map((c) => c.status), eventually).toEqual(["canceled"]);
    await f.expectLedgerBalanced();
  });
});

// The provider's side: declines, timeouts, lost answers, duplicate and late webhooks,
// and webhooks that are replayed, stale or forged. payments must change state once, fail
// cleanly with a reason, never charge twice, and keep its ledger balanced.
import { connect } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PaymentFailedEventSchema } from "@adminkiosk/proto/adminkiosk/payments/v1/events_pb";
import { PaymentIntentState, RefundState } from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import { signatureFor } from "../src/webhook-signature.js";
import { eventually, waitFor } from "@adminkiosk/devstack";
import { decode, startPayments, type PaymentsFixture } from "./fixture.js";

let f: PaymentsFixture;
let kiosk: string;
let n = 0;
const key = () => `key-${++n}-${Date.now()}`;

beforeAll(async () => {
  // 8 s to confirm: long enough that a slow machine's successful payments are not timed
  // out, short enough for the tests that wait for the timeout.
  f = await startPayments({ PAYMENT_CONFIRM_TIMEOUT: "8s", PROVIDER_TIMEOUT: "1s", WEBHOOK_BODY_TIMEOUT: "2s" });
  kiosk = await f.enroll("kiosk-p");
});
afterAll(async () => {
  await f?.stop();
});
afterEach(async () => {
  await f.expectLedgerBalanced();
});

/** A payment at kiosk-p, as orders takes it (the kiosk's own credential only reads it). */
const pay = async (amountMinor = 1500n) =>
  (await f.asOrders().createPaymentIntent({ idempotencyKey: key(), kioskId: "kiosk-p", orderId: `order-${++n}`, amountMinor, currency: "EUR", paymentMethod: "pm_card_visa" })).paymentIntent!;

const postWebhook = async (body: string, signature?: string) => {
  const res = await fetch(f.webhookUrl, { method: "POST", headers: { "content-type": "application/json", ...(signature ? { "provider-signature": signature } : {}) }, body });
  return { status: res.status, body: (await res.json()) as { outcome?: string } };
};

/** A charge.succeeded event as the provider would send it (signing is up to the caller). */
const chargeSucceeded = (intent: { paymentIntentId: string; providerChargeId: string; amountMinor: bigint }) =>
  JSON.stringify({
    id: `evt_test_${++n}`,
    object: "event",
    type: "charge.succeeded",
    created: Math.floor(Date.now() / 1000),
    data: { object: { object: "charge", id: intent.providerChargeId, reference: intent.paymentIntentId, amount_minor: Number(intent.amountMinor), currency: "EUR", status: "succeeded" } },
  });

/** An intent whose charge the provider holds and never confirms (until it times out). */
async function unconfirmed() {
  await f.nextCharges("timeout");
  const intent = await pay();
  return waitFor("the charge to reach the provider", async () => {
    const { paymentIntent } = await f.paymentsAs(kiosk).getPaymentIntent({ paymentIntentId: intent.paymentIntentId });
    return paymentIntent?.providerChargeId ? paymentIntent : undefined;
  }, { interval: 20 });
}

/** The value of a series on payments' /metrics whose labels include `labels` (0 when absent). */
async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${f.payments.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

const stateOf = async (id: string) => (await f.paymentsAs(kiosk).getPaymentIntent({ paymentIntentId: id })).paymentIntent?.state;
const ledgerOf = async (id: string) => (await f.ledgerAs(f.tokens.admin).listLedgerEntries({ paymentIntentId: id })).entries.map((e) => [e.kind, e.account, e.amountMinor]);

describe("outcomes", () => {
  it("a declined card fails the payment with the decline code, published as payment.failed", async () => {
    await f.nextCharges("decline", { decline_code: "insufficient_funds" });
    const intent = await pay();
    const failed = await f.waitForState(kiosk, intent.paymentIntentId, PaymentIntentState.FAILED);
    expect(failed.failureCode).toBe("insufficient_funds");
    const [event] = await f.events(intent.paymentIntentId, 1);
    expect(event?.subject).toBe(`payments.intent.${intent.paymentIntentId}.failed`);
    expect(decode(PaymentFailedEventSchema, event!.data)).toMatchObject({ failureCode: "insufficient_funds", paymentIntent: { state: PaymentIntentState.FAILED } });
    expect(await ledgerOf(intent.paymentIntentId)).toEqual([]);
  });

  it("a provider that never confirms: the payment fails with reason timeout, payment.failed says so, the charge is voided", async () => {
    const intent = await unconfirmed();
    const failed = await f.waitForState(kiosk, intent.paymentIntentId, PaymentIntentState.FAILED);
    expect(failed.failureCode).toBe("timeout");
    const events = await f.events(intent.paymentIntentId, 1);
    expect(events.map((e) => e.subject)).toEqual([`payments.intent.${intent.paymentIntentId}.failed`]);
    expect(decode(PaymentFailedEventSchema, events[0]!.data).failureCode).toBe("timeout");
    await expect.poll(async () => (await f.simCharges(intent.paymentIntentId)).map((c) => c.status), eventually).toEqual(["canceled"]);
    expect(await ledgerOf(intent.paymentIntentId)).toEqual([]);
    expect(await (await fetch(`${f.payments.url}/metrics`)).text()).toMatch(/payments_failures_total\{code="timeout",service="payments"\} [1-9]/);
  });

  it("a capture confirmed after the timeout does not flip the payment: it stays FAILED and is refunded automatically", async () => {
    // The provider's charge is pending when payments asks before timing out, and is captured
    // just before payments' void reaches it; the provider holds that news (for ten minutes) and
    // the test delivers it, exactly as the provider wrote it. So "after the timeout" is an
    // order of events, not a race between two timers.
    await f.nextCharges("capture_on_void", { delay_ms: 600_000 });
    const intent = await pay(2200n);
    await f.waitForState(kiosk, intent.paymentIntentId, PaymentIntentState.FAILED);
    const held = await waitFor("the capture's webhook", async () => (await f.simDeliveries(intent.paymentIntentId))[0]);
    expect(held.type).toBe("charge.succeeded");
    expect(await postWebhook(held.body, signatureFor([f.webhookSecret], held.body))).toEqual({ status: 200, body: { received: true, outcome: "late_capture_refunding" } });
    await expect
      .poll(async () => (await f.paymentsAs(kiosk).getPaymentIntent({ paymentIntentId: intent.paymentIntentId })).refunds.map((r) => [r.state, r.requestedBy, r.amountMinor]), eventually)
      .toEqual([[RefundState.SUCCEEDED, "payments", 2200n]]);
    expect(await stateOf(intent.paymentIntentId)).toBe(PaymentIntentState.FAILED);
    const [charge] = await f.simCharges(intent.paymentIntentId);
    expect(await f.simRefunds(charge!.id)).toMatchObject([{ amount_minor: 2200, status: "succeeded" }]);
    expect(await ledgerOf(intent.paymentIntentId)).toEqual([
      ["late_capture", "provider_clearing", 2200n],
      ["late_capture", "late_captures", -2200n],
      ["late_capture_refund", "late_captures", 2200n],
      ["late_capture_refund", "provider_clearing", -2200n],
    ]);
    // orders never hears of a success for it.
    expect((await f.events(intent.paymentIntentId, 1)).map((e) => e.subject)).toEqual([`payments.intent.${intent.paymentIntentId}.failed`]);
  });

  it("an answer lost on the way back: the retried charge carries the same idempotency key and is one charge", async () => {
    // The provider stalls until payments' call has timed out (1 s) and payments has decided
    // to retry (its retry counter moves), then answers everything it got.
    const retries = () => metric("payments_provider_calls_total", 'call="charge",outcome="retry"');
    const retriesBefore = await retries();
    const pid = f.sim.child.pid!;
    process.kill(pid, "SIGSTOP");
    let intent;
    try {
      intent = await pay(1700n);
      await expect.poll(retries, eventually).toBeGreaterThan(retriesBefore);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await f.waitForState(kiosk, intent.paymentIntentId, PaymentIntentState.SUCCEEDED);
    expect(await f.simCharges(intent.paymentIntentId)).toHaveLength(1);
    expect(await ledgerOf(intent.paymentIntentId)).toHaveLength(2);
  });
});

describe("webhooks", () => {
  it("duplicate deliveries of one event change the payment once", async () => {
    const duplicates = () => metric("payments_webhooks_total", 'outcome="duplicate"');
    const duplicatesBefore = await duplicates();
    await f.nextCharges("duplicate_webhooks");
    const intent = await pay();
    await f.waitForState(kiosk, intent.paymentIntentId, PaymentIntentState.SUCCEEDED);
    await expect.poll(async () => (await f.simDeliveries(intent.paymentIntentId)).map((d) => d.type), eventually).toEqual(["charge.succeeded"]);
    await expect.poll(async () => (await f.simDeliveries(intent.paymentIntentId))[0]?.last_status, eventually).toBe(200);
    // Three copies: one applied, and (the third comes a little later) two seen as duplicates.
    // Once payments has counted both, every copy has been handled: no fixed pause.
    await expect.poll(duplicates, eventually).toBe(duplicatesBefore + 2);
    expect(await ledgerOf(intent.paymentIntentId)).toHaveLength(2);
    expect((await f.events(intent.paymentIntentId, 1)).map((e) => e.subject)).toEqual([`payments.intent.${intent.paymentIntentId}.succeeded`]);
  });

  it("a replayed webhook (the same signed bytes again) is acknowledged and changes nothing", async () => {
    const intent = await pay();
    await f.waitForState(kiosk, intent.paymentIntentId, PaymentIntentState.SUCCEEDED);
    const [delivery] = await f.simDeliveries(intent.paymentIntentId);
    const replay = await postWebhook(delivery!.body, delivery!.signature);
    expect(replay).toEqual({ status: 200, body: { received: true, outcome: "duplicate" } });
    expect(await ledgerOf(intent.paymentIntentId)).toHaveLength(2);
    expect(await f.events(intent.paymentIntentId, 1)).toHaveLength(1);
  });

  it("a stale or future-dated webhook is rejected, even when properly signed", async () => {
    const intent = await unconfirmed();
    const body = chargeSucceeded(intent);
    const now = Math.floor(Date.now() / 1000);
    expect((await postWebhook(body, signatureFor([f.webhookSecret], body, now - 600))).status).toBe(400);
    expect((await postWebhook(body, signatureFor([f.webhookSecret], body, now + 600))).status).toBe(400);
    expect(await stateOf(intent.paymentIntentId)).toBe(PaymentIntentState.PROCESSING);
    await f.waitForState(kiosk, intent.paymentIntentId, PaymentIntentState.FAILED);
  });

  it("a forged webhook is rejected and changes nothing", async () => {
    const intent = await unconfirmed();
    const body = chargeSucceeded(intent);
    const wrongSecret = signatureFor(["not-the-provider-secret-not-the-provider-secret"], body);
    expect((await postWebhook(body, wrongSecret)).status).toBe(401);
    expect((await postWebhook(body)).status).toBe(400);
    expect((await postWebhook(body, "t=123,v1=zz")).status).toBe(400);
    // A genuine signature of another body.
    expect((await postWebhook(body, signatureFor([f.webhookSecret], chargeSucceeded(intent)))).status).toBe(401);
    expect(await stateOf(intent.paymentIntentId)).toBe(PaymentIntentState.PROCESSING);
    expect(await ledgerOf(intent.paymentIntentId)).toEqual([]);
    expect(await (await fetch(`${f.payments.url}/metrics`)).text()).toMatch(/payments_webhooks_total\{outcome="bad_signature",service="payments"\} [1-9]/);
    await f.waitForState(kiosk, intent.paymentIntentId, PaymentIntentState.FAILED);
  });

  it("a sender that never finishes its body is answered 408 and cut off, and payments keeps taking webhooks", async () => {
    const url = new URL(f.webhookUrl);
    const socket = connect(Number(url.port), url.hostname);
    let answer = "";
    socket.on("data", (chunk: Buffer) => (answer += chunk.toString()));
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.write(`POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"id":`);
    // Nothing more is sent: the server, not the test, ends the exchange.
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(await metric("payments_webhooks_total", 'outcome="body_timeout"')).toBeGreaterThanOrEqual(1);
    const body = JSON.stringify({ id: `evt_after_slow_${++n}`, type: "payout.paid", created: 0, data: { object: {} } });
    expect((await postWebhook(body, signatureFor([f.webhookSecret], body))).status).toBe(200);
  });

  it("a genuine webhook that names nothing of ours is acknowledged and ignored", async () => {
    const body = JSON.stringify({ id: `evt_other_${++n}`, type: "payout.paid", created: 0, data: { object: {} } });
    expect(await postWebhook(body, signatureFor([f.webhookSecret], body))).toEqual({ status: 200, body: { received: true, outcome: "ignored" } });
  });
});

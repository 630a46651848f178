// The receipt's review link on real processes (issue 22): a real sale (auth, catalog, payments
// with its provider simulator, orders), notifications sending the buyer's receipt to a real
// SMTP server (the dev mailbox) with a link signed for the order, and customers answering the
// public review RPCs the link's page calls without signing in: one review per order and product
// (again: the one written), pending moderation; an altered or foreign token is refused naming it.
import { randomBytes, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ReviewService, ReviewState } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { ReceiptService } from "@adminkiosk/proto/adminkiosk/notifications/v1/receipts_pb";
import { RuleService } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { createDatabase, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { signReviewToken } from "@adminkiosk/runtime";
import { clientFor, failure } from "../../../test/support/auth.js";
import { startSale, type SaleFixture } from "../../orders/test/fixture.js";
import { startMailbox, type Mailbox } from "../../notifications/src/dev-mailbox/mailbox.js";
import { startCustomers, type CustomersFixture } from "./fixture.js";

const suffix = randomBytes(4).toString("hex");
const secret = randomBytes(32).toString("hex");
const baseUrl = "http://admin.kiosk.test";
let f: SaleFixture;
let c: CustomersFixture;
let mailbox: Mailbox;
let notifications: StartedService;

beforeAll(async () => {
  const infra = inject("infra");
  [f, mailbox] = await Promise.all([startSale(), startMailbox()]);
  [c, notifications] = await Promise.all([
    startCustomers({ REVIEW_LINK_SECRETS: `${randomBytes(32).toString("hex")},${secret}` }, f.auth),
    createDatabase(infra.databaseUrl, "notifications").then(async (db) =>
      startTestService("notifications", {
        DATABASE_URL: db,
        REDIS_URL: f.auth.redisUrl,
        NATS_URL: infra.natsUrl,
        AUTH_JWKS_URL: `${f.auth.service.url}/.well-known/jwks.json`,
        ...f.auth.serviceEnv("notifications"),
        ORDERS_URL: f.orders.url,
        SMTP_URL: `smtp://127.0.0.1:${mailbox.smtpPort}`,
        REVIEW_LINK_SECRET: secret,
        REVIEW_LINK_BASE_URL: baseUrl,
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
        SERVICE_HEALTH_CONSUMER: `n-health-${suffix}`,
        CUSTOMERS_EVENTS_CONSUMER: `n-customers-${suffix}`,
        COMMERCE_EVENTS_SINCE_START: "true",
        SWEEP_MS: "200",
        SHUTDOWN_GRACE_MS: "2000",
      }),
    ),
  ]);
  await waitFor("notifications to verify tokens", async () => (await clientFor(RuleService, notifications.url, f.tokens.admin).listRules({ pageSize: 1 }), true), {
    timeout: 60_000,
    interval: 300,
    retry: (err) => ConnectError.from(err).code === Code.Unavailable,
  });
}, 240_000);
afterAll(async () => {
  await notifications?.stop();
  await c?.stop();
  await mailbox?.close();
  await f?.stop();
});

describe("the receipt's review link", () => {
  it("carries a token for the order: the buyer reviews each product once without signing in, pending moderation; an altered token is refused", async () => {
    const kiosk = `review-link-${suffix}`;
    const [gum, tea] = [`gum-${suffix}`, `tea-${suffix}`];
    await f.product(gum, 150n, { [kiosk]: 5n });
    await f.product(tea, 300n, { [kiosk]: 5n });
    const device = await f.device(kiosk);
    const { order } = await f.ordersAs(device).createOrder({ idempotencyKey: randomUUID(), items: [{ sku: gum, quantity: 2n }, { sku: tea, quantity: 1n }], paymentMethod: "pm_card_visa" });
    await f.waitFor(device, order!.orderId, [OrderState.COMPLETED]);
    const buyer = `rate-${suffix}@example.com`;
    await clientFor(ReceiptService, notifications.url, device).requestReceipt({ orderId: order!.orderId, email: buyer });
    const mail = await waitFor("the receipt at the SMTP server", async () => mailbox.messages().find((m) => m.to.includes(buyer)));
    const link = /^(http:\/\/admin\.kiosk\.test\/review\/(\S+))$/m.exec(mail.text);
    expect(link, mail.text).not.toBeNull();
    const token = link![2]!;

    // The page's calls: public, no credential at all.
    const anyone = clientFor(ReviewService, c.customers.url);
    const invitation = await waitFor("customers to know the completed order", async () => (await anyone.getReviewInvitation({ token }).catch(() => undefined)));
    expect(invitation).toMatchObject({ orderId: order!.orderId, kioskId: kiosk });
    expect(invitation.items.map((i) => [i.sku, i.quantity, i.review]).sort()).toEqual([[gum, 2n, undefined], [tea, 1n, undefined]].sort());
    const first = await anyone.submitReviewWithToken({ token, sku: tea, rating: 4, text: "  Good tea  " });
    expect(first).toMatchObject({ created: true, review: { orderId: order!.orderId, sku: tea, rating: 4, text: "Good tea", state: ReviewState.PENDING } });
    // Sent again (a double click, a retry): the same review, unchanged.
    const again = await anyone.submitReviewWithToken({ token, sku: tea, rating: 1, text: "changed my mind" });
    expect(again).toMatchObject({ created: false, review: { reviewId: first.review!.reviewId, rating: 4 } });
    expect((await anyone.getReviewInvitation({ token })).items.find((i) => i.sku === tea)!.review!.reviewId).toBe(first.review!.reviewId);
    // The operators see it waiting for moderation.
    const pending = await c.as(ReviewService, c.tokens.operator).listReviews({ sku: tea, state: ReviewState.PENDING });
    expect(pending.reviews.map((r) => r.reviewId)).toEqual([first.review!.reviewId]);

    // Refusals, naming the field.
    const [prefix, payload, signature] = token.split(".") as [string, string, string];
    const flipped = `${prefix}.${payload}.${signature[0] === "A" ? "B" : "A"}${signature.slice(1)}`;
    const otherOrder = Buffer.from(`${randomUUID()}.${kiosk}.${Buffer.from(payload, "base64url").toString().split(".")[2]}`).toString("base64url");
    const cases: [string, Code, RegExp][] = [
      [flipped, Code.PermissionDenied, /^token:/],
      [`${prefix}.${otherOrder}.${signature}`, Code.PermissionDenied, /^token:/],
      [signReviewToken(randomBytes(32).toString("hex"), { orderId: order!.orderId, kioskId: kiosk, expiresAt: new Date(Date.now() + 60_000) }), Code.PermissionDenied, /^token:/],
      [signReviewToken(secret, { orderId: order!.orderId, kioskId: kiosk, expiresAt: new Date(Date.now() - 1_000) }), Code.PermissionDenied, /^token: the review link expired/],
      ["not-a-token", Code.InvalidArgument, /^token:/],
    ];
    for (const [bad, code, message] of cases) {
      const refused = await failure(anyone.submitReviewWithToken({ token: bad, sku: gum, rating: 5 }));
      expect([bad, refused.code, refused.rawMessage]).toEqual([bad, code, expect.stringMatching(message)]);
    }
    const notInOrder = await failure(anyone.submitReviewWithToken({ token, sku: `other-${suffix}`, rating: 5 }));
    expect([notInOrder.code, notInOrder.rawMessage]).toEqual([Code.FailedPrecondition, expect.stringMatching(/^sku:/)]);
    const badRating = await failure(anyone.submitReviewWithToken({ token, sku: gum, rating: 6 }));
    expect([badRating.code, badRating.rawMessage]).toEqual([Code.InvalidArgument, expect.stringMatching(/^rating:/)]);
    // Nothing was written by the refused calls.
    expect((await c.as(ReviewService, c.tokens.operator).listReviews({ sku: gum })).reviews).toEqual([]);
  });
});

// Loyalty members against a real customers process: points earned once per completed order
// (orders' events on JetStream, also when delivered again), redeemed idempotently and never
// below zero, export and erasure, bad input naming the field, and a kiosk acting only for itself.
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsentPurpose, MemberService, ReviewService, ReviewState, ModerationDecision } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { eventually } from "@adminkiosk/devstack";
import { ordersSubjects } from "@adminkiosk/runtime";
import { failure } from "../../../test/support/auth.js";
import { deleteConsumer, ordersConsumer, startCustomers, type CustomersFixture } from "./fixture.js";

let f: CustomersFixture;
const kioskA = `loyalty-a-${process.pid}`;
const kioskB = `loyalty-b-${process.pid}`;
let deviceA: string;
let deviceB: string;

beforeAll(async () => {
  f = await startCustomers({ MINOR_UNITS_PER_POINT: "100" });
  [deviceA, deviceB] = await Promise.all([f.device(kioskA), f.device(kioskB)]);
}, 120_000);
afterAll(async () => f?.stop());

const card = (cardNumber: string) => ({ kind: { case: "cardNumber" as const, value: cardNumber } });
const qr = (qrToken: string) => ({ kind: { case: "qrToken" as const, value: qrToken } });

async function balanceOf(memberId: string): Promise<bigint> {
  const { member } = await f.as(MemberService, f.tokens.operator).getMember({ memberId });
  return member!.pointsBalance;
}

describe("a loyalty member", () => {
  it("earns points once per order at two kiosks, also when the events come again, and redeems them idempotently, never below zero", async () => {
    // Clients are made per call: the restart below moves customers to another port.
    const atA = () => f.as(MemberService, deviceA);
    const atB = () => f.as(MemberService, deviceB);
    const { member } = await atA().enrollMember({ email: "Buyer.One@Example.com", phone: "+420 601 234 567", consents: [ConsentPurpose.LOYALTY] });
    expect(member!.email).toBe("buyer.one@example.com");
    expect(member!.phone).toBe("+420601234567");
    expect(member!.cardNumber).toMatch(/^\d{16}$/);

    // Kiosk A attaches before the order completes, kiosk B after (by QR).
    const orderA = randomUUID();
    const orderB = randomUUID();
    await atA().attachMember({ member: card(member!.cardNumber), orderId: orderA });
    const msgA = randomUUID();
    await f.publishCompleted({ orderId: orderA, kioskId: kioskA, totalMinor: 1250n }, msgA);
    await f.publishCompleted({ orderId: orderB, kioskId: kioskB, totalMinor: 799n });
    await expect.poll(() => balanceOf(member!.memberId), eventually).toBe(12n);
    const attached = await atB().attachMember({ member: qr(member!.qrToken), orderId: orderB });
    expect(attached.pointsGranted).toBe(true);
    expect(attached.member!.pointsBalance).toBe(19n);

    // The same events again: once with the same Nats-Msg-Id, once re-published under a new one.
    await f.publishCompleted({ orderId: orderA, kioskId: kioskA, totalMinor: 1250n }, msgA);
    await f.publishCompleted({ orderId: orderA, kioskId: kioskA, totalMinor: 1250n });
    await f.publishCompleted({ orderId: orderB, kioskId: kioskB, totalMinor: 799n });
    // And a real redelivery: the durable consumer made again from the stream's start, so JetStream
    // delivers every order event it holds to customers once more.
    await f.customers.stop();
    await deleteConsumer(await f.nats(), ordersSubjects.stream.name, ordersConsumer);
    await f.restart({ EVENTS_SINCE_START: "false" });
    // A later order proves the replayed ones were all consumed before it.
    const orderC = randomUUID();
    await atA().attachMember({ member: card(member!.cardNumber), orderId: orderC });
    await f.publishCompleted({ orderId: orderC, kioskId: kioskA, totalMinor: 100n });
    await expect.poll(() => balanceOf(member!.memberId), eventually).toBe(20n);
    const { ledger } = await f.as(MemberService, f.tokens.operator).getMember({ memberId: member!.memberId });
    expect(ledger.map((e) => [e.orderId, e.points])).toEqual([
      [orderA, 12n],
      [orderB, 7n],
      [orderC, 1n],
    ]);

    // Redeeming: the same key twice is one redemption; more than the balance is refused naming points.
    const key = `redeem-${randomUUID()}`;
    const first = await atB().redeemPoints({ idempotencyKey: key, member: card(member!.cardNumber), points: 15n });
    const again = await atB().redeemPoints({ idempotencyKey: key, member: card(member!.cardNumber), points: 15n });
    expect(first.pointsBalance).toBe(5n);
    expect(again.entry!.entryId).toBe(first.entry!.entryId);
    expect(await balanceOf(member!.memberId)).toBe(5n);
    const over = await failure(atB().redeemPoints({ idempotencyKey: `redeem-${randomUUID()}`, member: card(member!.cardNumber), points: 6n }));
    expect(over.code).toBe(Code.FailedPrecondition);
    expect(over.rawMessage).toMatch(/^points:/);
    // Concurrent redemptions of the whole balance under different keys: one succeeds, the balance ends at 0.
    const races = await Promise.allSettled([1, 2, 3].map((i) => atA().redeemPoints({ idempotencyKey: `race-${i}-${randomUUID()}`, member: card(member!.cardNumber), points: 5n })));
    expect(races.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await balanceOf(member!.memberId)).toBe(0n);
  });

  it("answers bad input with InvalidArgument or FailedPrecondition naming the field", async () => {
    const atA = f.as(MemberService, deviceA);
    const badEmail = await failure(atA.enrollMember({ email: "not-an-email" }));
    expect([badEmail.code, badEmail.rawMessage]).toEqual([Code.InvalidArgument, expect.stringMatching(/^email:/)]);
    // Phones are read by libphonenumber: too short, a number no country plan has, or a national
    // number that is not one in the default region (CZ) are refused naming phone…
    for (const phone of ["601 234", "+420 123 456 789", "+1 555 0100", "(0) 12"]) {
      const badPhone = await failure(atA.enrollMember({ phone }));
      expect([phone, badPhone.code, badPhone.rawMessage]).toEqual([phone, Code.InvalidArgument, expect.stringMatching(/^phone:/)]);
    }
    // …and a valid one, national in the default region or international with 00, is kept in E.164.
    expect((await atA.enrollMember({ phone: "601 234 567" })).member!.phone).toBe("+420601234567");
    expect((await atA.enrollMember({ phone: "0049 30 901820" })).member!.phone).toBe("+4930901820");
    const unknown = await failure(atA.identifyMember({ member: card("9800000000000000") }));
    expect([unknown.code, unknown.rawMessage]).toEqual([Code.FailedPrecondition, expect.stringMatching(/^member\.card_number:/)]);
    const malformedCard = await failure(atA.identifyMember({ member: card("12ab") }));
    expect([malformedCard.code, malformedCard.rawMessage]).toEqual([Code.InvalidArgument, expect.stringMatching(/^member\.card_number:/)]);
    const unknownRedeem = await failure(atA.redeemPoints({ idempotencyKey: `k-${randomUUID()}`, member: card("9800000000000000"), points: 1n }));
    expect([unknownRedeem.code, unknownRedeem.rawMessage]).toEqual([Code.FailedPrecondition, expect.stringMatching(/^member\.card_number:/)]);
    const zero = await failure(atA.redeemPoints({ idempotencyKey: `k-${randomUUID()}`, member: card("9800000000000000"), points: 0n }));
    expect([zero.code, zero.rawMessage]).toEqual([Code.InvalidArgument, expect.stringMatching(/^points:/)]);
  });

  it("lets a kiosk act only for itself: kiosk B cannot attach, review or ask for kiosk A", async () => {
    const atA = f.as(MemberService, deviceA);
    const { member } = await atA.enrollMember({});
    const order = randomUUID();
    await atA.attachMember({ member: card(member!.cardNumber), orderId: order });
    await f.publishCompleted({ orderId: order, kioskId: kioskA, totalMinor: 500n, lines: [{ sku: "cola", quantity: 1n, totalMinor: 500n }] });
    await expect.poll(() => balanceOf(member!.memberId), eventually).toBe(5n);
    // B attaching A's order: not found (A's order is not B's), and no points move.
    const steal = await failure(f.as(MemberService, deviceB).attachMember({ member: card(member!.cardNumber), orderId: order }));
    expect(steal.code).toBe(Code.NotFound);
    // B claiming A's order before it completes gets nothing either: the sale is A's.
    const early = randomUUID();
    const other = (await atA.enrollMember({})).member!;
    await f.as(MemberService, deviceB).attachMember({ member: card(other.cardNumber), orderId: early });
    await f.publishCompleted({ orderId: early, kioskId: kioskA, totalMinor: 900n });
    const later = randomUUID();
    await f.as(MemberService, deviceB).attachMember({ member: card(other.cardNumber), orderId: later });
    await f.publishCompleted({ orderId: later, kioskId: kioskB, totalMinor: 300n });
    await expect.poll(() => balanceOf(other.memberId), eventually).toBe(3n);
    // Reviews: B cannot review A's order; A can, once, and an operator moderates it.
    const reviewAtB = await failure(f.as(ReviewService, deviceB).submitReview({ orderId: order, sku: "cola", rating: 5 }));
    expect(reviewAtB.code).toBe(Code.NotFound);
    const { review } = await f.as(ReviewService, deviceA).submitReview({ orderId: order, sku: "cola", rating: 4, text: "Cold and quick." });
    expect(review!.state).toBe(ReviewState.PENDING);
    const twice = await failure(f.as(ReviewService, deviceA).submitReview({ orderId: order, sku: "cola", rating: 1 }));
    expect(twice.code).toBe(Code.FailedPrecondition);
    const badRating = await failure(f.as(ReviewService, deviceA).submitReview({ orderId: order, sku: "cola", rating: 6 }));
    expect([badRating.code, badRating.rawMessage]).toEqual([Code.InvalidArgument, expect.stringMatching(/^rating:/)]);
    await f.as(ReviewService, f.tokens.operator).moderateReview({ reviewId: review!.reviewId, decision: ModerationDecision.APPROVE });
    const listed = await f.as(ReviewService, f.tokens.viewer).listReviews({ sku: "cola" });
    expect(listed.reviews.map((r) => [r.reviewId, r.state])).toEqual([[review!.reviewId, ReviewState.APPROVED]]);
    expect(listed.summary).toMatchObject({ approvedCount: 1n, averageRating: 4 });
    // A viewer may not moderate.
    expect((await failure(f.as(ReviewService, f.tokens.viewer).moderateReview({ reviewId: review!.reviewId, decision: ModerationDecision.REJECT }))).code).toBe(Code.PermissionDenied);
  });
});

describe("privacy", () => {
  it("exports everything stored about a member, and erasure removes the personal data keeping sales totals and the ledger", async () => {
    const atA = f.as(MemberService, deviceA);
    const admin = f.as(MemberService, f.tokens.admin);
    const { member } = await atA.enrollMember({ email: "erase.me@example.com", phone: "+420777888999", consents: [ConsentPurpose.LOYALTY, ConsentPurpose.MARKETING_EMAIL] });
    await atA.recordConsent({ member: card(member!.cardNumber), purpose: ConsentPurpose.MARKETING_EMAIL, granted: false });
    const order = randomUUID();
    await atA.attachMember({ member: qr(member!.qrToken), orderId: order });
    await f.publishCompleted({ orderId: order, kioskId: kioskA, totalMinor: 4200n, lines: [{ sku: "sandwich", quantity: 2n, totalMinor: 4200n }] });
    await expect.poll(() => balanceOf(member!.memberId), eventually).toBe(42n);
    await atA.redeemPoints({ idempotencyKey: `r-${randomUUID()}`, member: qr(member!.qrToken), points: 2n });

    const exported = await admin.exportMember({ memberId: member!.memberId });
    expect(exported.member).toMatchObject({ email: "erase.me@example.com", phone: "+420777888999", cardNumber: member!.cardNumber, qrToken: member!.qrToken, pointsBalance: 40n });
    expect(exported.consents.map((c) => [c.purpose, c.granted])).toEqual([
      [ConsentPurpose.LOYALTY, true],
      [ConsentPurpose.MARKETING_EMAIL, true],
      [ConsentPurpose.MARKETING_EMAIL, false],
    ]);
    expect(exported.ledger.map((e) => e.points)).toEqual([42n, -2n]);
    expect(exported.purchases).toHaveLength(1);
    expect(exported.purchases[0]).toMatchObject({ orderId: order, kioskId: kioskA, totalMinor: 4200n, currency: "EUR" });
    expect(exported.purchases[0]!.lines.map((l) => [l.sku, l.quantity])).toEqual([["sandwich", 2n]]);
    // The JSON document holds the same, for the person.
    const doc = JSON.parse(exported.json) as { member: { email: string }; ledger: unknown[] };
    expect(doc.member.email).toBe("erase.me@example.com");
    expect(doc.ledger).toHaveLength(2);
    // Only admins export and erase.
    expect((await failure(f.as(MemberService, f.tokens.operator).exportMember({ memberId: member!.memberId }))).code).toBe(Code.PermissionDenied);

    const { member: erased } = await admin.eraseMember({ memberId: member!.memberId });
    expect(erased).toMatchObject({ email: "", phone: "", cardNumber: "", qrToken: "", pointsBalance: 40n });
    expect(erased!.eraseTime).toBeDefined();
    const after = await admin.exportMember({ memberId: member!.memberId });
    expect(after.ledger.map((e) => [e.orderId, e.points, e.balanceAfter])).toEqual(exported.ledger.map((e) => [e.orderId, e.points, e.balanceAfter]));
    expect(after.purchases.map((p) => [p.orderId, p.totalMinor])).toEqual([[order, 4200n]]);
    expect(after.consents.every((c) => c.recordedBy === "")).toBe(true);
    // Nothing personal is left in customers' tables: the address and number appear nowhere.
    const db = new pg.Client({ connectionString: f.databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ dump: string }>(
        "SELECT concat_ws('|', (SELECT json_agg(m) FROM customers.members m), (SELECT json_agg(c) FROM customers.consents c), (SELECT json_agg(b) FROM customers.back_in_stock_requests b)) AS dump",
      );
      expect(rows[0]!.dump).not.toContain("erase.me@example.com");
      expect(rows[0]!.dump).not.toContain("777888999");
      expect(rows[0]!.dump).not.toContain(member!.cardNumber);
    } finally {
      await db.end();
    }
    // The card no longer identifies anyone.
    expect((await failure(atA.identifyMember({ member: card(member!.cardNumber) }))).code).toBe(Code.FailedPrecondition);
    // Erasing again changes nothing.
    expect((await admin.eraseMember({ memberId: member!.memberId })).member!.eraseTime).toEqual(erased!.eraseTime);
  });
});

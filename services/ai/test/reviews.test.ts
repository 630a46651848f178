// Buyers' ratings in recommendations (issue 22), on real processes: orders' completions reach
// ai (baskets) and customers (sales); a kiosk writes reviews for its orders, an operator
// approves or rejects them at customers, whose events (stream CUSTOMERS) ai consumes. The
// documented factor (services/ai/src/ratings.ts: ×(1 + 0.5·(mean − 3)/2) once a product has 3
// approved ratings) turns the kiosk's best sellers A (8 sales) > B (4) > C (3) into B > A > C
// after A's three 1-star and B's three 5-star ratings are approved: A 0.4 → 0.2, B 0.2 → 0.3.
// C's three 5-star ratings, rejected, and A's three 5-star ratings, pending, change nothing —
// had either counted, C (0.15 → 0.225) or A (mean 3: 0.4) would come before A or B.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecommendationReason, RecommendationService } from "@adminkiosk/proto/adminkiosk/ai/v1/recommendations_pb";
import { ModerationDecision, ReviewService, ReviewState } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { eventually, waitFor } from "@adminkiosk/devstack";
import { startCustomers, type CustomersFixture } from "../../customers/test/fixture.js";
import { ratingFactor } from "../src/ratings.js";
import { startAi, type AiFixture } from "./fixture.js";

const run = Math.random().toString(36).slice(2, 8);
const kiosk = `rated-${run}`;
const [A, B, C] = ["A", "B", "C"].map((p) => `RATED-${p}.${run}`) as [string, string, string];
let f: AiFixture;
let c: CustomersFixture;

beforeAll(async () => {
  f = await startAi({ AI_CUSTOMERS_EVENTS_CONSUMER: `ai-customers-test-${run}`, AI_CUSTOMERS_EVENTS_SINCE_START: "true" });
  c = await startCustomers({}, f.auth);
}, 180_000);
afterAll(async () => {
  await c?.stop();
  await f?.stop();
});

describe("ratings in recommendations", () => {
  it("approved ratings reorder the kiosk's recommendations as documented; pending and rejected ones do not", async () => {
    expect([ratingFactor({ fleetCount: 3, fleetSum: 3, kioskCount: 3, kioskSum: 3 }), ratingFactor({ fleetCount: 3, fleetSum: 15, kioskCount: 3, kioskSum: 15 })]).toEqual([0.5, 1.5]);
    expect(ratingFactor({ fleetCount: 2, fleetSum: 2, kioskCount: 2, kioskSum: 2 })).toBe(1);
    const orders: Record<string, string[]> = { [A]: [], [B]: [], [C]: [] };
    for (const [sku, n] of [[A, 8], [B, 4], [C, 3]] as const)
      for (let i = 0; i < n; i++) {
        const orderId = randomUUID();
        orders[sku]!.push(orderId);
        await c.publishCompleted({ orderId, kioskId: kiosk, totalMinor: 300n, lines: [{ sku, quantity: 1n, totalMinor: 300n }] });
      }
    const viewer = f.as(RecommendationService, f.tokens.viewer);
    const ours = async () => {
      const r = await viewer.getRecommendations({ kioskId: kiosk, limit: 20 });
      return r.recommendations.filter((x) => x.reason === RecommendationReason.POPULAR && [A, B, C].includes(x.sku)).map((x) => x.sku);
    };
    await waitFor("ai to record the kiosk's 15 baskets", async () => ((await viewer.getRecommendations({ kioskId: kiosk })).kioskBaskets === 15n ? true : undefined));
    expect(await ours()).toEqual([A, B, C]);

    const atKiosk = c.as(ReviewService, await c.device(kiosk));
    const review = (orderId: string, sku: string, rating: number) =>
      waitFor(`customers to know order ${orderId}`, async () => (await atKiosk.submitReview({ orderId, sku, rating, text: `${rating} stars` }).catch(() => undefined))?.review);
    const low = await Promise.all(orders[A]!.slice(0, 3).map((o) => review(o, A, 1)));
    const pending = await Promise.all(orders[A]!.slice(3, 6).map((o) => review(o, A, 5)));
    const high = await Promise.all(orders[B]!.slice(0, 3).map((o) => review(o, B, 5)));
    const rejected = await Promise.all(orders[C]!.map((o) => review(o, C, 5)));

    const operator = c.as(ReviewService, c.tokens.operator);
    for (const r of rejected) await operator.moderateReview({ reviewId: r.reviewId, decision: ModerationDecision.REJECT });
    for (const r of [...low, ...high]) await operator.moderateReview({ reviewId: r.reviewId, decision: ModerationDecision.APPROVE });
    // ai applies customers' events in order: once the approvals moved the list, the rejections were applied before them.
    await expect.poll(ours, eventually).toEqual([B, A, C]);
    const listed = await operator.listReviews({ sku: A, state: ReviewState.PENDING });
    expect(listed.reviews.map((r) => r.reviewId).sort()).toEqual(pending.map((r) => r.reviewId).sort());
  });
});

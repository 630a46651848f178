// customers' RPC handlers: validate, scope a device to its own kiosk, call the domain, map rows to
// the contract. Who may call each RPC is declared in proto/ and enforced by the runtime.
import { create, toJsonString } from "@bufbuild/protobuf";
import { timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import {
  BackInStockRequestSchema,
  BackInStockService,
  BackInStockState,
  ConsentPurpose,
  ConsentSchema,
  ExportMemberResponseSchema,
  HelpCaller,
  HelpService,
  LedgerEntryKind,
  LedgerEntrySchema,
  MemberSchema,
  MemberService,
  MemberSummarySchema,
  ModerationDecision,
  PurchaseSchema,
  RedeemPointsRequestSchema,
  RedeemPointsResponseSchema,
  ReviewSchema,
  ReviewService,
  ReviewState,
} from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import {
  cursorPatterns,
  decodePageToken,
  failedPrecondition,
  describePrincipal,
  encodePageToken,
  idempotent,
  invalid,
  kioskScope,
  pageSize,
  principalOf,
  principalScope,
  requestHash,
  requireBigInt,
  requireIdempotencyKey,
  requireText,
  requireUuid,
  verifyReviewToken,
  type Pool,
} from "@adminkiosk/runtime";
import type { CountryCode } from "libphonenumber-js";
import { addRequest, listRequests, requestsByContact, type BackInStockRow } from "./back-in-stock.js";
import { maskContact, optionalEmail, optionalPhone, requireMemberRef } from "./contacts.js";
import { callForHelp } from "./help.js";
import * as members from "./members.js";
import type { ConsentPurposeName, ConsentRow, LedgerRow, MemberRow, PurchaseRow } from "./members.js";
import * as reviews from "./reviews.js";
import type { ReviewRow } from "./reviews.js";

export const customersServices = [MemberService, BackInStockService, ReviewService, HelpService];

export interface CustomersDeps {
  pool: Pool;
  minorPerPoint: number;
  /** Phone numbers without a country code are read in this region (undefined: international only). */
  phoneRegion?: CountryCode;
  /** The review links' secrets (any verifies); none: the public review RPCs are off. */
  reviewLinkSecrets: string[];
}

const ts = (d: Date | null | undefined) => (d ? timestampFromDate(d) : undefined);
const skuRule = { max: 64, pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*$/, patternHint: "may contain only letters, digits, '.', '_' and '-' (starting with a letter or digit)" };
const requireSku = (field: string, value: string) => requireText(field, value, skuRule);

const purposeNames: Record<number, ConsentPurposeName> = {
  [ConsentPurpose.LOYALTY]: "loyalty",
  [ConsentPurpose.MARKETING_EMAIL]: "marketing_email",
  [ConsentPurpose.MARKETING_SMS]: "marketing_sms",
};
const purposeOf = (field: string, p: ConsentPurpose): ConsentPurposeName => {
  const name = purposeNames[p];
  if (!name) throw invalid(field, "must be a consent purpose (LOYALTY, MARKETING_EMAIL, MARKETING_SMS)");
  return name;
};
const purposeValue = Object.fromEntries(Object.entries(purposeNames).map(([k, v]) => [v, Number(k)])) as Record<ConsentPurposeName, ConsentPurpose>;

const toMember = (m: MemberRow) =>
  create(MemberSchema, {
    memberId: m.member_id,
    cardNumber: m.card_number ?? "",
    qrToken: m.qr_token ?? "",
    email: m.email ?? "",
    phone: m.phone ?? "",
    pointsBalance: BigInt(m.points_balance),
    createTime: ts(m.created_at),
    lastActivityTime: ts(m.last_activity_at),
    eraseTime: ts(m.erased_at),
    enrolledKioskId: m.enrolled_kiosk_id,
  });
const toSummary = (m: MemberRow) => create(MemberSummarySchema, { memberId: m.member_id, pointsBalance: BigInt(m.points_balance), hasEmail: !!m.email, hasPhone: !!m.phone });
const toConsent = (c: ConsentRow) => create(ConsentSchema, { purpose: purposeValue[c.purpose], granted: c.granted, recordTime: ts(c.recorded_at), recordedBy: c.recorded_by });
const toEntry = (e: LedgerRow) =>
  create(LedgerEntrySchema, {
    entryId: BigInt(e.entry_id),
    kind: e.kind === "earn" ? LedgerEntryKind.EARN : LedgerEntryKind.REDEEM,
    points: BigInt(e.points),
    orderId: e.order_id ?? "",
    kioskId: e.kiosk_id,
    createTime: ts(e.created_at),
    balanceAfter: BigInt(e.balance_after),
  });
const toPurchase = (p: PurchaseRow) =>
  create(PurchaseSchema, {
    orderId: p.order_id,
    kioskId: p.kiosk_id,
    totalMinor: BigInt(p.total_minor ?? 0),
    currency: p.currency ?? "",
    completeTime: ts(p.completed_at),
    attachTime: ts(p.attached_at),
    lines: (p.lines ?? []).map((l) => ({ sku: l.sku, quantity: BigInt(l.quantity), totalMinor: BigInt(l.total_minor) })),
  });
const reviewStates = { pending: ReviewState.PENDING, approved: ReviewState.APPROVED, rejected: ReviewState.REJECTED } as const;
const toReview = (r: ReviewRow) =>
  create(ReviewSchema, {
    reviewId: r.review_id,
    orderId: r.order_id,
    kioskId: r.kiosk_id,
    sku: r.sku,
    rating: r.rating,
    text: r.text,
    state: reviewStates[r.state],
    createTime: ts(r.created_at),
    moderateTime: ts(r.moderated_at),
    moderatedBy: r.moderated_by,
  });
const requestStates = { waiting: BackInStockState.WAITING, notified: BackInStockState.NOTIFIED, expired: BackInStockState.EXPIRED } as const;
const toRequest = (r: BackInStockRow, mask: boolean) =>
  create(BackInStockRequestSchema, {
    requestId: r.request_id,
    kioskId: r.kiosk_id,
    sku: r.sku,
    email: mask ? maskContact(r.email) : (r.email ?? ""),
    phone: mask ? maskContact(r.phone) : (r.phone ?? ""),
    state: requestStates[r.state],
    createTime: ts(r.created_at),
    notifyTime: ts(r.notified_at),
    nearbyKm: r.nearby_km,
    sameGroup: r.same_group,
    notifiedKioskId: r.notified_kiosk_id ?? "",
  });

/** The kiosk a device acts for (its own); people and services act for no kiosk here. */
const callerKiosk = (ctx: HandlerContext) => {
  const p = principalOf(ctx);
  return p.kind === "device" ? p.kioskId : "";
};

const requireRating = (rating: number) => {
  if (!Number.isInteger(rating) || rating < 1 || rating > 5) throw invalid("rating", "must be from 1 to 5");
};
const reviewText = (text: string) => (text.trim() === "" ? "" : requireText("text", text.trim(), { max: 500, min: 0 }));

export function customersRoutes(deps: CustomersDeps) {
  const { pool } = deps;
  /** What a review link's token grants (checked before anything else is read). */
  const reviewGrant = (token: string) => {
    if (token.trim() === "") throw invalid("token", "must be the review link's token");
    if (deps.reviewLinkSecrets.length === 0) throw failedPrecondition("token: review links are not configured (REVIEW_LINK_SECRETS)");
    return verifyReviewToken(deps.reviewLinkSecrets, token);
  };
  return (router: ConnectRouter) => {
    router.service(MemberService, {
      async enrollMember(req, ctx) {
        const email = optionalEmail("email", req.email);
        const phone = optionalPhone("phone", req.phone, deps.phoneRegion);
        const consents = req.consents.map((c, i) => purposeOf(`consents[${i}]`, c));
        const member = await members.enroll(pool, { email, phone, kioskId: callerKiosk(ctx), consents, recordedBy: describePrincipal(principalOf(ctx)) });
        return { member: toMember(member) };
      },
      async identifyMember(req) {
        const scanned = requireMemberRef("member", req.member);
        return { member: toSummary(await members.scanned(pool, "member", scanned)) };
      },
      async attachMember(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", "")!;
        const scanned = requireMemberRef("member", req.member);
        const orderId = requireUuid("order_id", req.orderId).toLowerCase();
        const { member, granted } = await members.attach(pool, "member", scanned, orderId, kioskId, deps.minorPerPoint);
        return { member: toSummary(member), pointsGranted: granted };
      },
      async redeemPoints(req, ctx) {
        const p = principalOf(ctx);
        const kioskId = kioskScope(ctx, "kiosk_id", "")!;
        const key = requireIdempotencyKey(req.idempotencyKey);
        const scanned = requireMemberRef("member", req.member);
        const points = requireBigInt("points", req.points, { min: 1n, max: 1_000_000_000n });
        const orderId = req.orderId === "" ? undefined : requireUuid("order_id", req.orderId).toLowerCase();
        const claim = { scope: principalScope(p), key, method: "RedeemPoints", hash: requestHash("RedeemPoints", RedeemPointsRequestSchema, req) };
        return idempotent(pool, claim, RedeemPointsResponseSchema, async (tx) => {
          const { entry, balance } = await members.redeem(tx, "member", scanned, points, kioskId, orderId);
          return create(RedeemPointsResponseSchema, { entry: toEntry(entry), pointsBalance: balance });
        });
      },
      async recordConsent(req, ctx) {
        const p = principalOf(ctx);
        const purpose = purposeOf("purpose", req.purpose);
        let memberId: string;
        if (p.kind === "device" || req.memberId === "") memberId = (await members.scanned(pool, "member", requireMemberRef("member", req.member))).member_id;
        else memberId = (await members.byId(pool, requireUuid("member_id", req.memberId))).member_id;
        return { consent: toConsent(await members.addConsent(pool, memberId, purpose, req.granted, describePrincipal(p))) };
      },
      async searchMembers(req) {
        const limit = pageSize("page_size", req.pageSize);
        const query = req.query === "" ? "" : requireText("query", req.query, { max: 254 });
        const after = decodePageToken("page_token", req.pageToken, { createdAt: cursorPatterns.timestamp, memberId: cursorPatterns.uuid });
        const rows = await members.search(pool, query, limit + 1, after);
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          members: page.map(toMember),
          nextPageToken: rows.length > limit && last ? encodePageToken({ createdAt: last.created_at.toISOString(), memberId: last.member_id }) : "",
        };
      },
      async getMember(req) {
        const d = await members.details(pool, requireUuid("member_id", req.memberId).toLowerCase());
        return { member: toMember(d.member), consents: d.consents.map(toConsent), ledger: d.ledger.map(toEntry), purchases: d.purchases.map(toPurchase) };
      },
      async exportMember(req) {
        const d = await members.details(pool, requireUuid("member_id", req.memberId).toLowerCase());
        const [memberReviews, requests] = await Promise.all([
          reviews.ofOrders(pool, d.purchases.map((p) => p.order_id)),
          requestsByContact(pool, [d.member.email, d.member.phone]),
        ]);
        const answer = create(ExportMemberResponseSchema, {
          member: toMember(d.member),
          consents: d.consents.map(toConsent),
          ledger: d.ledger.map(toEntry),
          purchases: d.purchases.map(toPurchase),
          reviews: memberReviews.map(toReview),
          backInStockRequests: requests.map((r) => toRequest(r, false)),
          exportTime: timestampNow(),
        });
        answer.json = toJsonString(ExportMemberResponseSchema, answer, { prettySpaces: 2 });
        return answer;
      },
      async eraseMember(req) {
        return { member: toMember(await members.erase(pool, requireUuid("member_id", req.memberId).toLowerCase())) };
      },
    });

    router.service(BackInStockService, {
      async requestBackInStock(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId)!;
        const sku = requireSku("sku", req.sku);
        const email = optionalEmail("email", req.email);
        const phone = optionalPhone("phone", req.phone, deps.phoneRegion);
        if (!email && !phone) throw invalid("email", "an email or a phone number is needed to tell the buyer");
        if (email && phone) throw invalid("phone", "give either an email or a phone number, not both");
        if (!Number.isFinite(req.nearbyKm) || req.nearbyKm < 0 || req.nearbyKm > 50) throw invalid("nearby_km", "must be from 0 (this kiosk only) to 50");
        return { request: toRequest(await addRequest(pool, { kioskId, sku, email, phone, nearbyKm: req.nearbyKm, sameGroup: req.sameGroup }), true) };
      },
      async listBackInStockRequests(req) {
        const limit = pageSize("page_size", req.pageSize);
        const kioskId = req.kioskId === "" ? undefined : requireText("kiosk_id", req.kioskId, { max: 64 });
        const sku = req.sku === "" ? undefined : requireSku("sku", req.sku);
        return { requests: (await listRequests(pool, { kioskId, sku, limit })).map((r) => toRequest(r, true)) };
      },
    });

    router.service(ReviewService, {
      async submitReview(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", "")!;
        const orderId = requireUuid("order_id", req.orderId).toLowerCase();
        const sku = requireSku("sku", req.sku);
        requireRating(req.rating);
        const text = reviewText(req.text);
        return { review: toReview(await reviews.submit(pool, { kioskId, orderId, sku, rating: req.rating, text })) };
      },
      async getReviewInvitation(req) {
        const grant = reviewGrant(req.token);
        const { sale, reviews: written } = await reviews.invitation(pool, grant.orderId, grant.kioskId);
        return {
          orderId: sale.order_id,
          kioskId: sale.kiosk_id,
          completeTime: ts(sale.completed_at),
          expireTime: ts(grant.expiresAt),
          items: sale.lines.map((l) => {
            const review = written.find((r) => r.sku === l.sku);
            return { sku: l.sku, quantity: BigInt(l.quantity), review: review ? toReview(review) : undefined };
          }),
        };
      },
      async submitReviewWithToken(req) {
        const grant = reviewGrant(req.token);
        const sku = requireSku("sku", req.sku);
        requireRating(req.rating);
        const text = reviewText(req.text);
        const { review, created } = await reviews.submitWithLink(pool, { kioskId: grant.kioskId, orderId: grant.orderId, sku, rating: req.rating, text });
        return { review: toReview(review), created };
      },
      async listReviews(req) {
        const limit = pageSize("page_size", req.pageSize);
        const sku = req.sku === "" ? undefined : requireSku("sku", req.sku);
        const state = req.state === ReviewState.UNSPECIFIED ? undefined : (Object.entries(reviewStates).find(([, v]) => v === req.state)?.[0] as ReviewRow["state"] | undefined);
        if (req.state !== ReviewState.UNSPECIFIED && !state) throw invalid("state", "must be PENDING, APPROVED or REJECTED");
        const after = decodePageToken("page_token", req.pageToken, { createdAt: cursorPatterns.timestamp, reviewId: cursorPatterns.uuid });
        const rows = await reviews.list(pool, { sku, state, limit: limit + 1, after });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        const summary = sku ? await reviews.summary(pool, sku) : undefined;
        return {
          reviews: page.map(toReview),
          nextPageToken: rows.length > limit && last ? encodePageToken({ createdAt: last.created_at.toISOString(), reviewId: last.review_id }) : "",
          summary: summary && sku ? { sku, approvedCount: BigInt(summary.count), averageRating: summary.average } : undefined,
        };
      },
      async moderateReview(req, ctx) {
        const reviewId = requireUuid("review_id", req.reviewId).toLowerCase();
        const state = req.decision === ModerationDecision.APPROVE ? "approved" : req.decision === ModerationDecision.REJECT ? "rejected" : undefined;
        if (!state) throw invalid("decision", "must be APPROVE or REJECT");
        return { review: toReview(await reviews.moderate(pool, reviewId, state, describePrincipal(principalOf(ctx)))) };
      },
    });

    router.service(HelpService, {
      async callForHelp(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId)!;
        if (req.caller !== HelpCaller.BUYER && req.caller !== HelpCaller.TECHNICIAN) throw invalid("caller", "must be BUYER or TECHNICIAN");
        const message = req.message === "" ? "" : requireText("message", req.message.trim(), { max: 280, min: 0 });
        const { id, at } = await callForHelp(pool, { kioskId, caller: req.caller, message });
        return { helpRequestId: id, requestTime: timestampFromDate(at) };
      },
    });
  };
}

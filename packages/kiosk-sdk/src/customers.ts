// What the kiosk screen asks customers: the loyalty member a buyer scans (card or QR), attaching
// them to a sale (points come when the order completes), redeeming points (idempotent by a key
// the kiosk keeps for the attempt), a back-in-stock request for a sold-out product, a rating of
// a purchase, and a call for staff. One unary call each with the kiosk's own device credential;
// customers answers for the kiosk the credential names (a kiosk never names another).
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import {
  AttachMemberRequestSchema,
  AttachMemberResponseSchema,
  CallForHelpRequestSchema,
  CallForHelpResponseSchema,
  ConsentPurpose,
  EnrollMemberRequestSchema,
  EnrollMemberResponseSchema,
  HelpCaller,
  IdentifyMemberRequestSchema,
  IdentifyMemberResponseSchema,
  RedeemPointsRequestSchema,
  RedeemPointsResponseSchema,
  RequestBackInStockRequestSchema,
  RequestBackInStockResponseSchema,
  SubmitReviewRequestSchema,
  SubmitReviewResponseSchema,
  type Member,
  type MemberRefSchema,
  type MemberSummary,
} from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { unary } from "./grpc.js";

export { HelpCaller };

export interface CustomersOptions {
  /** customers' address: "host:port" or "http://host:port". */
  customersAddress: string;
  /** The kiosk's device credential. */
  credential: string;
  /** Per call; default 10 s. */
  timeoutMs?: number;
}

/** What the scanner read: a card number (digits) or a member QR token ("mq_…"). */
export function scannedMember(scanned: string): MessageInitShape<typeof MemberRefSchema> {
  const s = scanned.trim();
  return s.startsWith("mq_") ? { kind: { case: "qrToken", value: s } } : { kind: { case: "cardNumber", value: s } };
}

const call = <I extends DescMessage, O extends DescMessage>(method: string, input: I, output: O, request: MessageInitShape<I>, o: CustomersOptions): Promise<MessageShape<O>> =>
  unary(o.customersAddress, `/adminkiosk.customers.v1.${method}`, input, output, request, { credential: o.credential, timeoutMs: o.timeoutMs ?? 10_000 });

/** Enrols a buyer at the kiosk (email and phone optional); answers the new card number and QR token. */
export async function enrollMember(contact: { email?: string; phone?: string; marketingEmail?: boolean }, o: CustomersOptions): Promise<Member> {
  const consents = [ConsentPurpose.LOYALTY, ...(contact.marketingEmail ? [ConsentPurpose.MARKETING_EMAIL] : [])];
  const res = await call("MemberService/EnrollMember", EnrollMemberRequestSchema, EnrollMemberResponseSchema, { email: contact.email ?? "", phone: contact.phone ?? "", consents }, o);
  return res.member!;
}

/** The member a scan names (balance only). An unknown card is FAILED_PRECONDITION naming member.card_number. */
export async function identifyMember(scanned: string, o: CustomersOptions): Promise<MemberSummary> {
  return (await call("MemberService/IdentifyMember", IdentifyMemberRequestSchema, IdentifyMemberResponseSchema, { member: scannedMember(scanned) }, o)).member!;
}

/** Attaches the scanned member to one of this kiosk's orders (before or after checkout). */
export async function attachMember(scanned: string, orderId: string, o: CustomersOptions): Promise<{ member: MemberSummary; pointsGranted: boolean }> {
  const res = await call("MemberService/AttachMember", AttachMemberRequestSchema, AttachMemberResponseSchema, { member: scannedMember(scanned), orderId }, o);
  return { member: res.member!, pointsGranted: res.pointsGranted };
}

/**
 * Redeems points under `idempotencyKey` (keep it for the attempt: a retry with it redeems once).
 * More than the balance is FAILED_PRECONDITION naming points.
 */
export async function redeemPoints(scanned: string, points: bigint, idempotencyKey: string, o: CustomersOptions, orderId = ""): Promise<bigint> {
  const res = await call("MemberService/RedeemPoints", RedeemPointsRequestSchema, RedeemPointsResponseSchema, { member: scannedMember(scanned), points, idempotencyKey, orderId }, o);
  return res.pointsBalance;
}

/** Where else a restock counts: kiosks within `nearbyKm` of this one (at most 50), or of its group. */
export interface BackInStockScope {
  nearbyKm?: number;
  sameGroup?: boolean;
}

/**
 * "Tell me when it is back": one message to `contact` (an email, or a phone number, national
 * numbers read in customers' default region) when this kiosk — or one in `scope` — is restocked;
 * the message names where.
 */
export async function requestBackInStock(sku: string, contact: string, o: CustomersOptions, scope: BackInStockScope = {}): Promise<void> {
  const byEmail = contact.includes("@");
  await call(
    "BackInStockService/RequestBackInStock",
    RequestBackInStockRequestSchema,
    RequestBackInStockResponseSchema,
    { sku, email: byEmail ? contact : "", phone: byEmail ? "" : contact, nearbyKm: scope.nearbyKm ?? 0, sameGroup: scope.sameGroup ?? false },
    o,
  );
}

/** A rating (1-5) and an optional short text for a product of one of this kiosk's completed orders. */
export async function rateProduct(orderId: string, sku: string, rating: number, text: string, o: CustomersOptions): Promise<void> {
  await call("ReviewService/SubmitReview", SubmitReviewRequestSchema, SubmitReviewResponseSchema, { orderId, sku, rating, text }, o);
}

/** Calls staff to this kiosk: an alert to its group's operators. */
export async function callForHelp(caller: HelpCaller, message: string, o: CustomersOptions): Promise<string> {
  return (await call("HelpService/CallForHelp", CallForHelpRequestSchema, CallForHelpResponseSchema, { caller, message }, o)).helpRequestId;
}

// Buyers' receipts: a kiosk asks (RequestReceipt) for one of its orders' receipt by email, to
// the address the buyer typed. With REVIEW_LINK_SECRET and REVIEW_LINK_BASE_URL, the receipt
// carries a link to rate the purchase (a token signed for that order, expiring). The address is kept (receipt_requests) only until the order
// completes — then the receipt (lines, taxes, total, tickets) becomes an email delivery for
// the delivery worker (retries, dead letters, audit) and the request row is deleted — or
// fails, or RECEIPT_REQUEST_TTL passes. Once the delivery is done (delivered or
// dead-lettered) its address is masked ("b***@example.com").
//
// Exactly one sender: the request is stored (committed) before orders is asked again, and
// both that answer and the order's completion event claim the request with DELETE …
// RETURNING; whichever comes second finds nothing. An order that completed before the
// request was stored is seen COMPLETED by the second read, since orders publishes its event
// only after committing.
import { Code, ConnectError, type Client, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { OrderState, type Order, type OrderService } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { ReceiptRequestState, ReceiptService, type RequestReceiptRequest, type RequestReceiptResponse } from "@adminkiosk/proto/adminkiosk/notifications/v1/receipts_pb";
import { create } from "@bufbuild/protobuf";
import { RequestReceiptResponseSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/receipts_pb";
import { callOptions, failedPrecondition, inTransaction, notFound, principalOf, requireEmail, requireUuid, signReviewToken, unavailable, type Pool, type PoolClient } from "@adminkiosk/runtime";
import type { NotificationBody } from "./channels.js";

export interface ReceiptDeps {
  pool: Pool;
  /** orders' OrderService as notifications (service token); undefined when not configured. */
  orders?: Client<typeof OrderService>;
  ttlMs: number;
}

const formatMinor = (minor: bigint, currency: string) => {
  const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  const negative = minor < 0n;
  const abs = negative ? -minor : minor;
  const scale = 10n ** BigInt(digits);
  const whole = abs / scale;
  const frac = digits > 0 ? `.${(abs % scale).toString().padStart(digits, "0")}` : "";
  return `${negative ? "-" : ""}${whole}${frac} ${currency}`;
};

export interface ReviewLinks {
  secret: string;
  /** The admin web's public address; the link is <baseUrl>/review/<token>. */
  baseUrl: string;
  ttlMs: number;
}
let reviewLinks: ReviewLinks | undefined;

/** Receipts sent from now on carry a review link (main, from REVIEW_LINK_SECRET and REVIEW_LINK_BASE_URL). */
export function configureReviewLinks(links: ReviewLinks | undefined): void {
  reviewLinks = links;
}

/** The buyer's link to rate the order's products (customers' public review page), signed for this order only. */
export function reviewLinkOf(order: Order, links = reviewLinks, now = Date.now()): string | undefined {
  if (!links || !order.lines.some((l) => l.sku && !l.seatId)) return undefined;
  const token = signReviewToken(links.secret, { orderId: order.orderId, kioskId: order.kioskId, expiresAt: new Date(now + links.ttlMs) });
  return `${links.baseUrl.replace(/\/+$/, "")}/review/${token}`;
}

/** The receipt email's text: the printed receipt, or the lines and total when there is none, then the tickets and the review link. */
export function receiptText(order: Order): string {
  const receipt = order.receipt;
  const parts = [`Thank you for your purchase at kiosk ${order.kioskId}.`, ""];
  if (receipt?.printableText) parts.push(receipt.printableText.trimEnd());
  else {
    for (const l of order.lines)
      parts.push(`${l.seatId ? `Seat ${l.seatId} (${l.eventId})` : `${l.quantity} × ${l.sku}`}  ${formatMinor(l.totalMinor, order.currency)}`);
    parts.push(`Total ${formatMinor(order.totalMinor, order.currency)}`);
  }
  const tickets = order.tickets.filter((t) => !t.void);
  if (tickets.length > 0) {
    parts.push("", `Your ticket${tickets.length === 1 ? "" : "s"} (show the code at the entrance):`);
    for (const t of tickets) parts.push("", `Event ${t.eventId}, seat ${t.seatId} — ticket ${t.ticketId}`, `Code: ${t.qrPayload}`);
  }
  const link = reviewLinkOf(order);
  if (link) parts.push("", "How was it? Rate your purchase (the link works for one order, for a limited time):", link);
  parts.push("", `Order ${order.orderId}`);
  return `${parts.join("\n")}\n`;
}

async function enqueueReceipt(tx: PoolClient, order: Order, email: string): Promise<void> {
  const body: NotificationBody = { status: "receipt", ruleId: "", ruleName: "", severity: "", groupId: "", count: 0, lines: [], alertIds: [], text: receiptText(order) };
  const subject = `Your receipt${order.receipt?.receiptNumber ? ` ${order.receipt.receiptNumber}` : ""} (order ${order.orderId.slice(0, 8)})`;
  await tx.query(
    `INSERT INTO deliveries (notification_id, rule_id, group_id, channel, target, secret_name, status, alert_count, subject, body, state, order_id)
     VALUES (gen_random_uuid(), NULL, '', 'email', $1, '', 'receipt', 0, $2, $3, 'pending', $4)`,
    [email, subject, JSON.stringify(body), order.orderId],
  );
}

/** orders' completion event (in the ORDERS consumer's transaction): a waiting request becomes the email. */
export async function receiptOrderCompleted(tx: PoolClient, order: Order): Promise<void> {
  const { rows } = await tx.query<{ email: string }>("DELETE FROM receipt_requests WHERE order_id = $1 AND kiosk_id = $2 RETURNING email", [order.orderId, order.kioskId]);
  if (rows[0]) await enqueueReceipt(tx, order, rows[0].email);
}

/** The order failed: no receipt; the address goes. */
export async function receiptOrderFailed(tx: Pool | PoolClient, orderId: string): Promise<void> {
  await tx.query("DELETE FROM receipt_requests WHERE order_id = $1", [orderId]);
}

/** Requests past their time are deleted; finished receipts' addresses masked. */
export async function receiptsUpkeep(pool: Pool): Promise<void> {
  await pool.query("DELETE FROM receipt_requests WHERE expires_at <= now()");
  await pool.query(
    `UPDATE deliveries SET target = regexp_replace(target, '^(.)[^@]*@', '\\1***@')
     WHERE order_id IS NOT NULL AND state <> 'pending' AND target NOT LIKE '%***@%'`,
  );
}

export async function requestReceipt(deps: ReceiptDeps, req: RequestReceiptRequest, ctx: HandlerContext): Promise<RequestReceiptResponse> {
  const p = principalOf(ctx);
  if (p.kind !== "device") throw new ConnectError("receipts are asked for by kiosks", Code.PermissionDenied);
  const orderId = requireUuid("order_id", req.orderId).toLowerCase();
  const email = requireEmail("email", req.email);
  if (!deps.orders) throw failedPrecondition("buyer receipts are not configured (ORDERS_URL, AUTH_URL, SERVICE_SECRET)");
  const orders = deps.orders;
  const read = async (): Promise<Order> => {
    try {
      const { order } = await orders.getOrder({ orderId }, callOptions(ctx));
      if (!order) throw new Error("orders answered no order");
      return order;
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code === Code.NotFound) throw notFound(`order ${orderId} not found`);
      throw unavailable(`orders could not be asked for order ${orderId}: ${e.rawMessage}`, err);
    }
  };
  const order = await read();
  // Another kiosk's order is not this kiosk's to ask about.
  if (order.kioskId !== p.kioskId) throw notFound(`order ${orderId} not found`);
  if (order.state === OrderState.FAILED) throw failedPrecondition(`order ${orderId} failed: there is no receipt`);
  await deps.pool.query(
    `INSERT INTO receipt_requests (order_id, kiosk_id, email, expires_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4::double precision / 1000))
     ON CONFLICT (order_id) DO UPDATE SET email = $3, expires_at = EXCLUDED.expires_at`,
    [orderId, p.kioskId, email, deps.ttlMs],
  );
  const now = order.state === OrderState.COMPLETED || order.state === OrderState.REFUNDED || order.state === OrderState.PARTIALLY_REFUNDED ? order : await read();
  if (now.state === OrderState.FAILED) {
    await receiptOrderFailed(deps.pool, orderId);
    throw failedPrecondition(`order ${orderId} failed: there is no receipt`);
  }
  if (now.state !== OrderState.COMPLETED && now.state !== OrderState.REFUNDED && now.state !== OrderState.PARTIALLY_REFUNDED)
    return create(RequestReceiptResponseSchema, { state: ReceiptRequestState.WAITING });
  await inTransaction(deps.pool, (tx) => receiptOrderCompleted(tx, now));
  return create(RequestReceiptResponseSchema, { state: ReceiptRequestState.SENDING });
}

export function receiptRoutes(deps: ReceiptDeps) {
  return (router: ConnectRouter) =>
    router.service(ReceiptService, {
      requestReceipt: (req, ctx) => requestReceipt(deps, req, ctx),
    });
}

// orders' RPC handlers: validate, scope to the caller's kiosk, run the sale, refund or
// query, map to the contract. Who may call each RPC is declared in proto/ and enforced
// by the runtime; which kiosk's orders a device may see is decided here.
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  CreateOrderRequestSchema,
  KioskSalesSchema,
  OrderService,
  OrderState,
  ProductSalesSchema,
  RefundOrderRequestSchema,
  SalesBucket,
  SalesPointSchema,
} from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import {
  callOptions,
  cursorPatterns,
  decodePageToken,
  describePrincipal,
  encodePageToken,
  invalidArgument,
  pageSize,
  principalOf,
  principalScope,
  requestHash,
  requireIdempotencyKey,
  requireKioskId,
  requireText,
  requireUuid,
  type Logger,
  type Pool,
  kioskScope,
} from "@adminkiosk/runtime";
import { toOrder } from "./messages.js";
import { refundOrder } from "./refunds.js";
import { createSale } from "./sale.js";
import { isTimeZone, maxSeriesDays, salesByDay, salesSummary } from "./summary.js";
import { orders } from "./store.js";
import { stateFromEnum } from "./messages.js";
import type { PaymentStarts } from "./payment-starts.js";
import type { TicketSigner } from "./tickets.js";
import type { Upstream } from "./upstream.js";

export const ordersServices = [OrderService];

export interface OrdersDeps {
  pool: Pool;
  upstream: Upstream;
  signer: TicketSigner;
  log: Logger;
  holdSeconds: number;
  paymentStarts?: PaymentStarts;
}

const skuRule = { max: 64, pattern: /^[A-Za-z0-9_.-]+$/, patternHint: "may contain only letters, digits, '_', '.' and '-'" };
const idRule = { max: 128, pattern: /^[A-Za-z0-9_.:-]+$/, patternHint: "may contain only letters, digits, '_', '.', ':' and '-'" };
const paymentMethodRule = { max: 255, pattern: /^[A-Za-z0-9_-]+$/, patternHint: "may contain only letters, digits, '_' and '-'" };

function time(field: string, t: Timestamp | undefined): Date | undefined {
  if (!t) return undefined;
  const d = timestampDate(t);
  if (Number.isNaN(d.getTime())) throw invalidArgument(field, "is not a valid time");
  return d;
}

export function ordersRoutes(deps: OrdersDeps) {
  const { pool } = deps;

  /** A device sees only its own kiosk's orders: another kiosk's does not exist for it. */
  const loadVisible = async (ctx: HandlerContext, orderId: string) => {
    const full = await orders.full(pool, requireUuid("order_id", orderId));
    const p = principalOf(ctx);
    if (!full || (p.kind === "device" && p.kioskId !== full.row.kiosk_id)) throw new ConnectError(`order ${orderId} not found`, Code.NotFound);
    return full;
  };

  return (router: ConnectRouter) =>
    router.service(OrderService, {
      async createOrder(req, ctx) {
        const p = principalOf(ctx);
        if (p.kind !== "device") throw new ConnectError("orders are created by kiosks", Code.PermissionDenied);
        requireIdempotencyKey(req.idempotencyKey);
        if (req.items.length + req.seats.length === 0) throw invalidArgument("items", "an order needs at least one item or seat");
        if (req.items.length > 50) throw invalidArgument("items", "at most 50 lines");
        if (req.seats.length > 20) throw invalidArgument("seats", "at most 20 seats");
        req.items.forEach((item, i) => {
          requireText(`items[${i}].sku`, item.sku, skuRule);
          if (item.quantity < 1n || item.quantity > 1000n) throw invalidArgument(`items[${i}].quantity`, "must be between 1 and 1000");
        });
        req.seats.forEach((seat, i) => {
          requireText(`seats[${i}].event_id`, seat.eventId, idRule);
          requireText(`seats[${i}].seat_id`, seat.seatId, idRule);
        });
        requireText("payment_method", req.paymentMethod, paymentMethodRule);
        const order = await createSale(deps, {
          kioskId: p.kioskId,
          idempotencyKey: req.idempotencyKey,
          requestHash: requestHash("CreateOrder", CreateOrderRequestSchema, req),
          items: req.items.map((i) => ({ sku: i.sku, quantity: i.quantity })),
          seats: req.seats.map((s) => ({ eventId: s.eventId, seatId: s.seatId })),
          paymentMethod: req.paymentMethod,
          call: callOptions(ctx),
        });
        return { order };
      },

      async getOrder(req, ctx) {
        return { order: toOrder(await loadVisible(ctx, req.orderId)) };
      },

      async listOrders(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId, true);
        let state;
        if (req.state !== OrderState.UNSPECIFIED) {
          state = stateFromEnum(req.state);
          if (!state) throw invalidArgument("state", "is not an order state");
        }
        const from = time("start_time", req.startTime);
        const to = time("end_time", req.endTime);
        if (from && to && from >= to) throw invalidArgument("end_time", "must be after start_time");
        const limit = pageSize("page_size", req.pageSize);
        const cursor = decodePageToken("page_token", req.pageToken, { at: cursorPatterns.timestamp, id: cursorPatterns.uuid });
        const rows = await orders.list(pool, { kioskId, state, from, to }, { limit: limit + 1, before: cursor ? { at: new Date(cursor.at), id: cursor.id } : undefined });
        const page = rows.slice(0, limit);
        const ids = page.map((r) => r.id);
        const [lines, tickets] = await Promise.all([orders.linesOf(pool, ids), orders.ticketsOf(pool, ids)]);
        const last = page.at(-1);
        return {
          orders: page.map((row) => toOrder({ row, lines: lines.filter((l) => l.order_id === row.id), tickets: tickets.filter((t) => t.order_id === row.id) })),
          nextPageToken: rows.length > limit && last ? encodePageToken({ at: last.created_at.toISOString(), id: last.id }) : "",
        };
      },

      async getSalesSummary(req) {
        const from = time("start_time", req.startTime);
        const to = time("end_time", req.endTime);
        if (!from) throw invalidArgument("start_time", "is required");
        if (!to) throw invalidArgument("end_time", "is required");
        if (from >= to) throw invalidArgument("end_time", "must be after start_time");
        const kioskId = req.kioskId === "" ? undefined : requireKioskId("kiosk_id", req.kioskId);
        if (req.bucket !== SalesBucket.UNSPECIFIED && req.bucket !== SalesBucket.DAY) throw invalidArgument("bucket", "must be SALES_BUCKET_DAY or unset");
        const perDay = req.bucket === SalesBucket.DAY;
        if (!perDay && req.timeZone !== "") throw invalidArgument("time_zone", "applies only with a bucket");
        const timeZone = req.timeZone === "" ? "UTC" : req.timeZone;
        if (perDay && !isTimeZone(timeZone)) throw invalidArgument("time_zone", "must be an IANA time zone name such as Europe/Prague");
        if (perDay && to.getTime() - from.getTime() > maxSeriesDays * 86_400_000) throw invalidArgument("end_time", `may be at most ${maxSeriesDays} days after start_time with a bucket`);
        const [s, days] = await Promise.all([salesSummary(pool, { from, to, kioskId }), perDay ? salesByDay(pool, { from, to, kioskId, timeZone }) : []]);
        return {
          kiosks: s.kiosks.map((k) => create(KioskSalesSchema, k)),
          products: s.products.map((x) => create(ProductSalesSchema, x)),
          series: days.map((d) =>
            create(SalesPointSchema, { ...d, startTime: timestampFromDate(d.startTime), products: d.products.map((x) => create(ProductSalesSchema, x)) }),
          ),
        };
      },

      async refundOrder(req, ctx) {
        const p = principalOf(ctx);
        if (p.kind !== "user") throw new ConnectError("refunds are made by operators", Code.PermissionDenied);
        requireIdempotencyKey(req.idempotencyKey);
        requireUuid("order_id", req.orderId);
        requireText("reason", req.reason, { max: 200 });
        req.lines.forEach((l, i) => {
          if (l.lineNumber < 1) throw invalidArgument(`lines[${i}].line_number`, "must be 1 or more");
          if (l.quantity < 1n) throw invalidArgument(`lines[${i}].quantity`, "must be 1 or more");
        });
        const result = await refundOrder(deps, {
          scope: principalScope(p),
          requestedBy: describePrincipal(p),
          idempotencyKey: req.idempotencyKey,
          requestHash: requestHash("RefundOrder", RefundOrderRequestSchema, req),
          orderId: req.orderId,
          lines: req.lines.map((l) => ({ lineNumber: l.lineNumber, quantity: l.quantity })),
          reason: req.reason,
          call: callOptions(ctx),
        });
        return result;
      },

      async getTicketVerificationKeys() {
        return { jwksJson: deps.signer.jwksJson };
      },
    });
}

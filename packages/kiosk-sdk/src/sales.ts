// Selling at the kiosk: one call that creates an order at orders (under an
// idempotency key the kiosk keeps with the sale, so a retry after a lost answer, or a
// sale synced after an outage, is applied once) and waits until it is completed
// (tickets and receipt) or failed (nothing sold, holds released); and asking for the
// receipt by email (requestReceipt).
import type { MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  CreateOrderRequestSchema,
  CreateOrderResponseSchema,
  GetOrderRequestSchema,
  GetOrderResponseSchema,
  OrderState,
  type Order,
} from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { type ReceiptRequestState, RequestReceiptRequestSchema, RequestReceiptResponseSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/receipts_pb";
import { backoffDelay } from "./backoff.js";
import { unary } from "./grpc.js";

const createPath = "/adminkiosk.orders.v1.OrderService/CreateOrder";
const getPath = "/adminkiosk.orders.v1.OrderService/GetOrder";

export interface SellOptions {
  /** orders' address: "host:port" or "http://host:port". */
  ordersAddress: string;
  /** The kiosk's device credential. */
  credential: string;
  /** Give up waiting for the outcome after this long (the order carries on at orders). Default 60 s. */
  timeoutMs?: number;
  /** How often to look at the order while it is pending. Default 250 ms. */
  pollMs?: number;
}

/**
 * Errors worth the same request again (with the same key): the answer may just have been lost.
 * CANCELLED too: sell() never cancels its own calls, so it is the server's side or the network
 * (a stream reset between orders and catalog surfaced as CANCELLED, and a kiosk that gave up
 * left its order 'created' for good; found by the chaos run).
 */
const retryable = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.ABORTED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.CANCELLED]);

/**
 * Creates the order (retrying with the same idempotency key while orders cannot be
 * reached, or races a concurrent retry) and waits for it to complete or fail. Refusals
 * (out of stock, a seat taken, bad input) are thrown as the service's error; a declined
 * payment comes back as a FAILED order with its reason.
 */
export async function sell(request: MessageInitShape<typeof CreateOrderRequestSchema>, options: SellOptions): Promise<Order> {
  if (!request.idempotencyKey) throw new Error("sell: idempotencyKey is required (keep it with the sale, so a retry is the same sale)");
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let order: Order | undefined;
  for (let attempt = 0; !order; attempt++) {
    try {
      order = (await unary(options.ordersAddress, createPath, CreateOrderRequestSchema, CreateOrderResponseSchema, request, { credential: options.credential })).order;
      if (!order) throw new Error("orders answered without an order");
    } catch (err) {
      const code = (err as grpc.ServiceError).code;
      if (!retryable.has(code) || Date.now() > deadline) throw err;
      // RESOURCE_EXHAUSTED is retried only when it is a rate limit, not out of stock.
      if (code === grpc.status.RESOURCE_EXHAUSTED && !/rate|too many/i.test((err as grpc.ServiceError).details ?? "")) throw err;
      await new Promise((r) => setTimeout(r, backoffDelay(attempt, { initialMs: 200, maxMs: 5_000 })));
    }
  }
  const finished = (s: OrderState) => s === OrderState.COMPLETED || s === OrderState.FAILED || s === OrderState.REFUNDED || s === OrderState.PARTIALLY_REFUNDED;
  while (!finished(order.state)) {
    if (Date.now() > deadline) throw new Error(`order ${order.orderId} is still ${OrderState[order.state]} after ${options.timeoutMs ?? 60_000} ms (it carries on at orders)`);
    await new Promise((r) => setTimeout(r, options.pollMs ?? 250));
    try {
      order = (await unary(options.ordersAddress, getPath, GetOrderRequestSchema, GetOrderResponseSchema, { orderId: order.orderId }, { credential: options.credential })).order ?? order;
    } catch (err) {
      if (!retryable.has((err as grpc.ServiceError).code)) throw err;
    }
  }
  return order;
}

const receiptPath = "/adminkiosk.notifications.v1.ReceiptService/RequestReceipt";

export interface ReceiptOptions {
  /** notifications' address: "host:port" or "http://host:port". */
  notificationsAddress: string;
  /** The kiosk's device credential. */
  credential: string;
  /** Give up retrying an unreachable notifications after this long. Default 15 s. */
  timeoutMs?: number;
}

/**
 * Asks notifications to email one of this kiosk's orders' receipt (and tickets) to the
 * address the buyer typed: at once when the order is completed, else when it completes.
 * A bad address is INVALID_ARGUMENT naming `email` (show it to the buyer); the address is
 * kept only until the receipt is sent. Retried while notifications cannot be reached
 * (asking again for the same order replaces the address, so a retry sends one email).
 */
export async function requestReceipt(orderId: string, email: string, options: ReceiptOptions): Promise<ReceiptRequestState> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await unary(options.notificationsAddress, receiptPath, RequestReceiptRequestSchema, RequestReceiptResponseSchema, { orderId, email }, { credential: options.credential });
      return res.state;
    } catch (err) {
      const code = (err as grpc.ServiceError).code;
      if ((code !== grpc.status.UNAVAILABLE && code !== grpc.status.DEADLINE_EXCEEDED) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, backoffDelay(attempt, { initialMs: 200, maxMs: 3_000 })));
    }
  }
}

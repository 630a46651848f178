// The completion worker: durable JetStream consumers on PAYMENTS (payments.intent.*)
// and CATALOG (catalog.reservation.*.expired) that finish sales.
//   succeeded → only the order's own intent, for its total and currency: commit the
//               reservation at catalog, issue tickets and the receipt, COMPLETED
//               (+ orders.order.<id>.completed), in one transaction with the inbox row.
//               Any other successful payment naming the order (another intent, another
//               amount, an order that had failed or whose hold lapsed) is refunded and
//               recorded in stray_payments.
//   failed / canceled → release the reservation, FAILED with the provider's reason.
//   hold expired → cancel the payment if it can still be, FAILED (HOLD_EXPIRED).
// Calls to catalog and payments come first and are idempotent (commit and release
// are, refunds and cancels carry keys derived from the order), the database effect
// and the inbox row commit together (the runtime consumer's `once`), and the message is
// acked only after that commit: a crash anywhere means a redelivery that finishes the
// work once. An event that cannot be applied (undecodable, refused by PostgreSQL, still
// failing after the consumer's deliveries) is dead-lettered (adminkiosk.ops.v1.DeadLetterService).
import { randomUUID } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ReservationExpiredEventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/events_pb";
import { PaymentCanceledEventSchema, PaymentFailedEventSchema, PaymentSucceededEventSchema } from "@adminkiosk/proto/adminkiosk/payments/v1/events_pb";
import type { PaymentIntent } from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import { ReceiptSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { callOptions, catalogSubjects, cursorPatterns, decodeEvent, paymentsSubjects, startConsumer } from "@adminkiosk/runtime";
import type { ConsumedMessage, DurableConsumer, Logger, NatsConnection, Pool, PoolClient } from "@adminkiosk/runtime";
import { Counter, type Registry } from "prom-client";
import { completedEvent, publish } from "./events.js";
import { toLine, toOrder } from "./messages.js";
import { completeOffline, declineOffline } from "./offline.js";
import { buildReceipt } from "./receipt.js";
import { orders, recordStrayPayment, tickets, type LineRow, type OrderRow } from "./store.js";
import type { PaymentStarts } from "./payment-starts.js";
import type { TicketSigner } from "./tickets.js";
import type { Upstream } from "./upstream.js";

export interface CompletionDeps {
  pool: Pool;
  nats: Promise<NatsConnection>;
  upstream: Upstream;
  signer: TicketSigner;
  log: Logger;
  consumers: { payments: string; catalog: string };
  /** Messages worked on at once per consumer (each order is locked while it changes). */
  concurrency?: number;
  /** The sales this process is starting payments for (shared with CreateOrder). */
  paymentStarts?: PaymentStarts;
}

/** How long an event that overtook its sale waits for the sale to record its intent (then: retried later). */
const paymentStartWaitMs = 5_000;

export interface CompletionWorker {
  /** For startService's `consumers` (dead letters, consumer metrics). */
  consumers: DurableConsumer[];
  registerMetrics(registry: Registry): void;
  stop(): Promise<void>;
}

const open = (state: OrderRow["state"]) => state === "created" || state === "pending_payment";

/** The inbox-claiming transaction of the event being handled (the runtime consumer's `once`). */
type Once = <R>(work: (tx: PoolClient) => Promise<R>) => Promise<R | undefined>;

/** An order as a payment event reads it (store.ts forPayment): sold offline or not, and its lines. */
type PaidOrder = OrderRow & { offline: boolean; lines: LineRow[] };

/** An event that cannot be acted on yet (redelivered with a backoff, up to the consumer's limit). */
class Retry extends Error {}

/**
 * How long JetStream waits before it redelivers a payment or catalog event the completion
 * worker took and never acknowledged (its process was killed): a crashed replica's events come
 * back after this, to any replica.
 */
export const completionAckWaitMs = 30_000;

export function startCompletionWorker(deps: CompletionDeps): CompletionWorker {
  const { pool, upstream, signer, log } = deps;
  const outcomes = new Counter({ name: "orders_completion_outcomes_total", help: "Orders the completion worker settled, by outcome.", labelNames: ["outcome"] });

  /** Calls the worker makes on its own: as orders (the transports' service token), with the default deadline. */
  const asOrders = callOptions(undefined);

  /**
   * A successful payment that cannot complete this order: refunded (under a key derived
   * from the intent, so once however often the event comes) and recorded.
   */
  const refundStray = async (order: OrderRow, intent: PaymentIntent, reason: string) => {
    await upstream.payments.refundPayment(
      { idempotencyKey: `stray-${intent.paymentIntentId}`, paymentIntentId: intent.paymentIntentId, reason: `order ${order.id}: ${reason}`.slice(0, 200) },
      asOrders,
    );
    const recorded = await recordStrayPayment(pool, { paymentIntentId: intent.paymentIntentId, orderId: order.id, kioskId: order.kiosk_id, amountMinor: intent.amountMinor, currency: intent.currency, reason });
    if (recorded) {
      outcomes.inc({ outcome: "stray_refunded" });
      log.warn({ orderId: order.id, paymentIntentId: intent.paymentIntentId, amountMinor: intent.amountMinor.toString(), currency: intent.currency, reason }, "a payment that could not complete its order was refunded");
    }
  };

  const fail = async (orderId: string, once: Once, f: { code: string; message: string }) =>
    once(async (tx) => {
      const row = await orders.byId(tx, orderId, { forUpdate: true });
      if (!row || !open(row.state)) return;
      await orders.setFailed(tx, orderId, f);
      await publish.failed(tx, toOrder((await orders.full(tx, orderId))!));
      outcomes.inc({ outcome: "failed" });
    });

  const onSucceeded = async (order: PaidOrder, intent: PaymentIntent, once: Once) => {
    // Only the order's own payment completes it: the intent orders created for it (its id
    // is recorded with the order), for the order's total, in its currency.
    if (order.payment_intent_id === "" && open(order.state)) throw new Retry(`order ${order.id} has not recorded its payment intent yet`);
    if (intent.paymentIntentId !== order.payment_intent_id) {
      await refundStray(order, intent, `the payment ${intent.paymentIntentId} is not the order's own (${order.payment_intent_id || "none"})`);
      return;
    }
    if (order.state === "failed") {
      // Paid after the sale had failed (its hold expired first): give the money back.
      await refundStray(order, intent, `the order failed (${order.failure_code}) before the payment succeeded`);
      return;
    }
    if (!open(order.state)) return; // completed already: a redelivery
    if (intent.amountMinor !== BigInt(order.total_minor) || intent.currency !== order.currency) {
      await refundStray(order, intent, `paid ${intent.amountMinor} ${intent.currency} for a total of ${order.total_minor} ${order.currency}`);
      await releaseHold(order, "payment_mismatch");
      await fail(order.id, once, { code: "PAYMENT_MISMATCH", message: "the payment did not match the order's total; it is refunded" });
      return;
    }
    if (order.offline) {
      // Sold offline (docs/offline.md): committed against its lease when it synced; the card is captured now.
      if (await once((tx) => completeOffline({ pool, signer }, order.id, intent.paymentIntentId, tx))) outcomes.inc({ outcome: "completed" });
      return;
    }
    try {
      await upstream.reservations.commitReservation({ reservationId: order.id }, asOrders);
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code !== Code.FailedPrecondition && e.code !== Code.NotFound) throw err;
      // The hold lapsed (or was released) before the payment arrived: nothing was sold.
      await refundStray(order, intent, "the hold ended before the payment was confirmed");
      await fail(order.id, once, { code: "HOLD_EXPIRED", message: "the reservation ended before the payment was confirmed; the payment is refunded" });
      return;
    }
    await once(async (tx) => {
      // Locked (its receipt number taken in the same statement), then read once: an open order
      // has no tickets yet, its lines were read with it (fixed since it was reserved), and what
      // changes here is known, so the completed event is built from it rather than read back.
      const locked = await orders.lockToComplete(tx, order.id);
      if (!locked || !open(locked.state) || locked.receipt_number === null) return;
      const lines = order.lines;
      const now = new Date();
      const iat = Math.floor(now.getTime() / 1000);
      const issued = await Promise.all(
        lines
          .filter((l) => l.seat_id !== "")
          .map(async (line) => {
            const id = randomUUID();
            const qr = await signer.sign({ tid: id, oid: order.id, kid: order.kiosk_id, ev: line.event_id, seat: line.seat_id, iat });
            return { id, order_id: order.id, event_id: line.event_id, seat_id: line.seat_id, qr_payload: qr };
          }),
      );
      const ticketRows = await tickets.insertAll(tx, issued);
      const receipt = buildReceipt({
        receiptNumber: locked.receipt_number.padStart(8, "0"),
        kioskId: order.kiosk_id,
        orderId: order.id,
        lines: lines.map(toLine),
        currency: locked.currency,
        issuedAt: now,
      });
      const completed: OrderRow = {
        ...locked,
        state: "completed",
        payment_intent_id: intent.paymentIntentId,
        receipt: Buffer.from(toBinary(ReceiptSchema, receipt)),
        completed_at: now,
        updated_at: now,
      };
      await orders.completeWithEvent(tx, completed, completedEvent(toOrder({ row: completed, lines, tickets: ticketRows })));
      outcomes.inc({ outcome: "completed" });
    });
  };

  /** Gives the order's stock and seats back (idempotent; nothing to do once it lapsed). */
  const releaseHold = async (order: OrderRow, why: string) => {
    try {
      await upstream.reservations.releaseReservation({ reservationId: order.id, reason: `payment ${why}`.slice(0, 200) }, asOrders);
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code !== Code.FailedPrecondition && e.code !== Code.NotFound) throw err;
    }
  };

  const onPaymentLost = async (order: PaidOrder, intent: PaymentIntent, code: string, message: string, once: Once) => {
    // Another payment naming this order failing says nothing about the order's own.
    if (order.payment_intent_id === "" && open(order.state)) throw new Retry(`order ${order.id} has not recorded its payment intent yet`);
    if (intent.paymentIntentId !== order.payment_intent_id) return;
    if (order.offline) {
      // Sold offline and declined on capture: the goods are gone, so a conflict for an operator (docs/offline.md).
      if (await once((tx) => declineOffline({ pool }, order.id, code, message, tx))) outcomes.inc({ outcome: "failed" });
      return;
    }
    if (open(order.state)) await releaseHold(order, code);
    await fail(order.id, once, { code, message });
  };

  const handlePayment = async (m: ConsumedMessage, { once }: { once: Once }) => {
    const kind = paymentsSubjects.parseIntent(m.subject)?.kind;
    let intent: PaymentIntent | undefined;
    let code = "";
    let message = "";
    if (kind === "succeeded") intent = decodeEvent(PaymentSucceededEventSchema, m).paymentIntent;
    else if (kind === "failed") {
      const e = decodeEvent(PaymentFailedEventSchema, m);
      ({ paymentIntent: intent, failureCode: code, failureMessage: message } = e);
      code ||= "payment_failed";
    } else if (kind === "canceled") {
      const e = decodeEvent(PaymentCanceledEventSchema, m);
      intent = e.paymentIntent;
      code = "payment_canceled";
      message = e.reason || "the payment was canceled";
    } else return; // refunds are orders' own doing
    if (!intent || !cursorPatterns.uuid.test(intent.orderId)) return;
    // The order, whether it was sold offline, and its lines: one statement.
    let order = await orders.forPayment(pool, intent.orderId);
    if (!order || order.kiosk_id !== intent.kioskId) return; // not a sale of ours
    // The event overtook CreateOrder recording the intent: when that sale runs in this
    // process, wait for it (a wake-up) rather than for a redelivery, then read the order again
    // (also when it had just finished: it may have recorded the intent since the read above).
    if (order.payment_intent_id === "" && open(order.state) && deps.paymentStarts) {
      await deps.paymentStarts.settled(order.id, paymentStartWaitMs);
      order = await orders.forPayment(pool, intent.orderId);
      if (!order) return;
    }
    if (kind === "succeeded") await onSucceeded(order, intent, once);
    else await onPaymentLost(order, intent, code, message || `the payment ${kind}`, once);
  };

  const handleCatalog = async (m: ConsumedMessage, { once }: { once: Once }) => {
    if (catalogSubjects.parseReservation(m.subject)?.kind !== "expired") return;
    const reservation = decodeEvent(ReservationExpiredEventSchema, m).reservation;
    if (!reservation || !cursorPatterns.uuid.test(reservation.reservationId)) return;
    const order = await orders.byId(pool, reservation.reservationId);
    if (!order || !open(order.state)) return;
    if (order.payment_intent_id !== "") {
      // Stop the payment if it still can be; if it succeeds anyway, its event refunds it.
      await upstream.payments
        .cancelPaymentIntent({ idempotencyKey: `order-${order.id}-expired`, paymentIntentId: order.payment_intent_id, reason: "the order's hold expired" }, asOrders)
        .catch((err: unknown) => log.debug({ err, orderId: order.id }, "the payment of an expired order could not be canceled"));
    }
    await fail(order.id, once, { code: "HOLD_EXPIRED", message: "the stock and seats were held until the hold expired, unpaid" });
  };

  // The owners create PAYMENTS and CATALOG; until they have, the consumers retry (logged once).
  const consume = (stream: string, durable: string, filter: string, handle: (m: ConsumedMessage, ctx: { once: Once }) => Promise<void>) =>
    startConsumer({ pool, nats: deps.nats, log, stream, durable, filter, ackWaitMs: completionAckWaitMs, concurrency: deps.concurrency ?? 16, handle });
  const consumers = [
    consume(paymentsSubjects.stream.name, deps.consumers.payments, paymentsSubjects.allIntents, handlePayment),
    consume(catalogSubjects.stream.name, deps.consumers.catalog, catalogSubjects.allReservations, handleCatalog),
  ];

  return {
    consumers,
    registerMetrics(registry) {
      registry.registerMetric(outcomes);
    },
    async stop() {
      await Promise.allSettled(consumers.map((c) => c.stop()));
    },
  };
}

// Sales left half-way: an order still 'created' (no payment started) whose kiosk never
// retried. catalog's hold expiry fails such an order when its Reserve reached catalog
// (completion.ts, HOLD_EXPIRED), but when it never did (the connection was cut before,
// or the expired event never came) nothing else would ever move it. Once the order has
// made no progress for its hold (ORDER_HOLD_SECONDS) plus a margin, this sweeper does
// what an expired hold does: releases the reservation (if catalog still holds one: the
// units and seats go back) and fails the order with HOLD_EXPIRED (+ orders.order.<id>.failed).
// A kiosk retrying the key afterwards is answered that FAILED order, and a payment that
// still succeeds for it is refunded by the completion worker (a stray payment).
// Every replica runs one: each order is taken in its own transaction, FOR UPDATE SKIP
// LOCKED, so replicas share the work and never fail an order twice. Offline sales (sold
// already, waiting for a sync) are not holds and are left alone.
import { Code, ConnectError } from "@connectrpc/connect";
import { callOptions, inTransaction, type Logger, type Pool } from "@adminkiosk/runtime";
import { publish } from "./events.js";
import { toOrder } from "./messages.js";
import { orders, type OrderRow } from "./store.js";
import type { Upstream } from "./upstream.js";

export interface AbandonedSweeperDeps {
  pool: Pool;
  upstream: Upstream;
  log: Logger;
  /** catalog's hold on an order's stock and seats (ORDER_HOLD_SECONDS). */
  holdSeconds: number;
  /** Waited past the hold before the order counts as abandoned (ORDERS_ABANDONED_MARGIN_SECONDS). */
  marginSeconds: number;
  /** How often to look (ORDERS_ABANDONED_SWEEP_MS). */
  intervalMs: number;
}

export const abandonedFailure = {
  code: "HOLD_EXPIRED",
  message: "the sale stopped before its payment started and was not retried before its hold expired; nothing is held for it, and a payment that still arrives is refunded",
};

/** Fails one abandoned order (and releases what it holds); false when there is none left to take. */
export async function failOneAbandoned(deps: Pick<AbandonedSweeperDeps, "pool" | "upstream" | "holdSeconds" | "marginSeconds">): Promise<OrderRow | undefined> {
  return inTransaction(deps.pool, async (tx) => {
    const { rows } = await tx.query<OrderRow>(
      `SELECT * FROM orders o
       WHERE o.state = 'created' AND o.updated_at <= now() - make_interval(secs => $1)
         AND NOT EXISTS (SELECT 1 FROM offline_sales s WHERE s.order_id = o.id)
       ORDER BY o.updated_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
      [deps.holdSeconds + deps.marginSeconds],
    );
    const order = rows[0];
    if (!order) return undefined;
    // As an expired hold: whatever catalog still holds goes back. Release is idempotent
    // (by the order's id); none there (NotFound) or already ended is nothing to give back.
    try {
      await deps.upstream.reservations.releaseReservation({ reservationId: order.id, reason: "the sale was abandoned before its payment started" }, callOptions(undefined));
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code !== Code.NotFound && e.code !== Code.FailedPrecondition) throw err;
    }
    await orders.setFailed(tx, order.id, abandonedFailure);
    const full = await orders.full(tx, order.id);
    await publish.failed(tx, toOrder(full!));
    return full!.row;
  });
}

export function startAbandonedSweeper(deps: AbandonedSweeperDeps) {
  const { log } = deps;
  let running = false;
  let failing = false;
  const sweep = async () => {
    for (let n = 0; n < 100; n++) {
      const failed = await failOneAbandoned(deps);
      if (!failed) return;
      log.warn({ orderId: failed.id, kioskId: failed.kiosk_id }, "an order left 'created' past its hold failed (HOLD_EXPIRED); what it held is released");
    }
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweep()
      .then(() => {
        if (failing) log.info("abandoned-order sweep working again");
        failing = false;
      })
      .catch((err: unknown) => {
        if (!failing) log.warn({ err }, "abandoned-order sweep failed; will retry");
        failing = true;
      })
      .finally(() => (running = false));
  }, deps.intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      while (running) await new Promise((r) => setTimeout(r, 20));
    },
  };
}

// Expires reservations nobody committed or released in time, so their units and
// seats are sellable again and orders hears of it (catalog.reservation.<id>.expired).
// Every replica runs one; FOR UPDATE SKIP LOCKED lets them share the work.
import type { Logger } from "@adminkiosk/runtime";
import type { LeaseBook } from "./leases.js";
import type { ReservationBook } from "./reservations.js";

export function startReservationSweeper(book: ReservationBook, intervalMs: number, log: Logger) {
  const batch = 100;
  let running = false;
  let failing = false;
  const sweep = async () => {
    let expired = 0;
    for (let n = batch; n === batch; expired += n) n = await book.expireDue({ limit: batch });
    if (expired > 0) log.info({ reservations: expired }, "overdue reservations expired");
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweep()
      .then(() => {
        if (failing) log.info("reservation sweep working again");
        failing = false;
      })
      .catch((err: unknown) => {
        if (!failing) log.warn({ err }, "reservation sweep failed; will retry");
        failing = true;
      })
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      while (running) await new Promise((r) => setTimeout(r, 20));
    },
  };
}

/** Ends leases whose hold (expiry plus the sync window) is over: their unsold units and seats go back. */
export function startLeaseSweeper(book: LeaseBook, intervalMs: number, log: Logger) {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    book
      .expireDue(50)
      .then((n) => {
        if (n > 0) log.info({ leases: n }, "leases past their hold ended");
      })
      .catch((err: unknown) => log.warn({ err }, "lease sweep failed; will retry"))
      .finally(() => (running = false));
  }, Math.max(intervalMs, 1_000));
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      while (running) await new Promise((r) => setTimeout(r, 20));
    },
  };
}

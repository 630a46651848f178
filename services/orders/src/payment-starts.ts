// The sales this process is starting payments for. A payment's event can come back
// (charge → webhook → payments' outbox → JetStream) before CreateOrder has recorded the
// intent payments answered with; the completion worker then waits here for that record
// (a wake-up, no polling) instead of a redelivery's backoff. Sales started by another
// replica, or by a process that crashed, are not here: the worker retries those as before.
export interface PaymentStarts {
  /** The sale of `orderId` is about to create its payment; call `done` once it recorded it (or gave up). */
  begin(orderId: string): () => void;
  /** True once this process's sale of `orderId` is done (at once when none is under way here: false); false after `timeoutMs`. */
  settled(orderId: string, timeoutMs: number): Promise<boolean>;
}

export function paymentStarts(): PaymentStarts {
  const open = new Map<string, { count: number; waiters: (() => void)[] }>();
  return {
    begin(orderId) {
      const entry = open.get(orderId) ?? { count: 0, waiters: [] };
      entry.count++;
      open.set(orderId, entry);
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        if (--entry.count > 0) return;
        open.delete(orderId);
        for (const wake of entry.waiters) wake();
      };
    },
    settled(orderId, timeoutMs) {
      const entry = open.get(orderId);
      if (!entry) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        entry.waiters.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    },
  };
}

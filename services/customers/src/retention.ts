// Retention limits, applied by every replica on an interval (the statements are idempotent):
// inactive members erased, back-in-stock requests expired, sales without a member pruned.
import type { Logger, Pool } from "@adminkiosk/runtime";
import { expireRequests } from "./back-in-stock.js";
import { eraseInactive } from "./members.js";
import { pruneUnattachedSales } from "./sales.js";

export function startRetention(o: { pool: Pool; log: Logger; intervalMs: number; memberRetentionMs: number; backInStockTtlMs: number; saleMatchWindowMs: number }) {
  let stopped = false;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      try {
        const erased = await eraseInactive(o.pool, o.memberRetentionMs);
        if (erased > 0) o.log.info({ erased }, "inactive members erased (retention limit)");
        await expireRequests(o.pool, o.backInStockTtlMs);
        await pruneUnattachedSales(o.pool, o.saleMatchWindowMs);
      } catch (err) {
        o.log.warn({ err }, "retention pass failed; trying again next interval");
      }
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, o.intervalMs).unref();
      });
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}

// The simulated fleet's buyers as people (issue 22): after a completed sale some are loyalty
// members who scan their card (a kiosk enrols a few members of its own, then they come back),
// some rate what they bought, very rarely one calls for staff; a buyer who finds everything they
// wanted sold out sometimes leaves an address to be told when it is back. All through customers'
// API with the kiosk's own device credential (customers.ts). A customers call that fails is
// counted and logged (the first and every 50th), never in the sale's way.
import { randomUUID } from "node:crypto";
import { attachMember, callForHelp, enrollMember, HelpCaller, rateProduct, requestBackInStock, type CustomersOptions } from "./customers.js";

export interface SimulatedBuyersOptions {
  customersUrl: string;
  random: () => number;
  log: (line: string) => void;
  /** Chances per completed sale and per sold-out visit. */
  memberShare?: number;
  ratingShare?: number;
  helpShare?: number;
  backInStockShare?: number;
}

export interface BuyerStats {
  memberSales: number;
  ratings: number;
  helpCalls: number;
  backInStockRequests: number;
  errors: number;
}

export function simulatedBuyers(o: SimulatedBuyersOptions) {
  const stats: BuyerStats = { memberSales: 0, ratings: 0, helpCalls: 0, backInStockRequests: 0, errors: 0 };
  const cards = new Map<string, string[]>();
  const { random } = o;
  const opts = (credential: string): CustomersOptions => ({ customersAddress: o.customersUrl, credential });
  const failed = (what: string, err: unknown) => {
    stats.errors++;
    if (stats.errors === 1 || stats.errors % 50 === 0) o.log(`simulated buyers: ${what} failed (${stats.errors} so far): ${(err as Error).message}`);
  };

  return {
    stats,
    /** A completed sale at the kiosk: maybe a member's (points), maybe rated, very rarely a call for help. */
    async afterSale(kiosk: { kioskId: string; deviceCredential: string }, orderId: string, skus: string[]): Promise<void> {
      const at = opts(kiosk.deviceCredential);
      try {
        if (random() < (o.memberShare ?? 0.3)) {
          const known = cards.get(kiosk.kioskId) ?? [];
          cards.set(kiosk.kioskId, known);
          // A kiosk's regulars: up to 20 members, new ones enrolled at the kiosk until then.
          let card = known.length >= 20 || (known.length > 0 && random() < 0.8) ? known[Math.floor(random() * known.length)] : undefined;
          if (!card) {
            const member = await enrollMember({ email: random() < 0.5 ? `member-${randomUUID().slice(0, 8)}@example.com` : undefined }, at);
            card = member.cardNumber;
            known.push(card);
          }
          await attachMember(card, orderId, at);
          stats.memberSales++;
        }
        if (skus.length > 0 && random() < (o.ratingShare ?? 0.1)) {
          await rateProduct(orderId, skus[Math.floor(random() * skus.length)]!, 3 + Math.floor(random() * 3), random() < 0.3 ? "Quick and easy." : "", at);
          stats.ratings++;
        }
        if (random() < (o.helpShare ?? 0.002)) {
          await callForHelp(random() < 0.8 ? HelpCaller.BUYER : HelpCaller.TECHNICIAN, "simulated: the screen froze for a moment", at);
          stats.helpCalls++;
        }
      } catch (err) {
        failed("a member, rating or help call", err);
      }
    },
    /** A buyer found what they wanted sold out at the kiosk. */
    async soldOut(kiosk: { kioskId: string; deviceCredential: string }, sku: string): Promise<void> {
      if (random() >= (o.backInStockShare ?? 0.2)) return;
      try {
        // Half of them would also walk to a kiosk nearby (5 km) for it.
        await requestBackInStock(sku, `buyer-${randomUUID().slice(0, 8)}@example.com`, opts(kiosk.deviceCredential), random() < 0.5 ? { nearbyKm: 5 } : {});
        stats.backInStockRequests++;
      } catch (err) {
        failed("a back-in-stock request", err);
      }
    },
  };
}

export type SimulatedBuyers = ReturnType<typeof simulatedBuyers>;

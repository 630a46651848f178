// The simulated fleet's customers: each simulated kiosk sells through the real path (sell():
// orders → catalog reservation → payments → completion; ai's orders consumer records the
// sale and its basket) at the rate services/ai's sales-history generator gives for that
// kiosk, product, weekday and UTC hour, so forecasts trained on the seeded history can be
// checked against what then happens. Baskets follow the generator's basket structure
// (services/ai/src/generator-baskets.ts). And a simulated route driver who restocks a
// kiosk's product once it has been out for a while, through catalog's admin API. With
// customers' address, buyers are also people: members, ratings, back-in-stock requests, calls
// for help (simulated-buyers.ts).
//
// Arrivals are Poisson in real time (times `speedup` for demos). A kiosk sells at most
// `concurrency` sales at once (a customer who finds it busy walks away), skips products its
// stock says are out (the censoring the generator models), and pauses with backoff while
// orders or payments refuse or are down.
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import {
  InventoryService,
  ListProductsRequestSchema,
  ListProductsResponseSchema,
  ListStockRequestSchema,
  ListStockResponseSchema,
} from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
// The generator's own process (a dev tool's import of another workspace's pure module).
import { dailyMean, dayIndex, defaultProducts, generateKiosks, hourlyRate, type GeneratedKiosk, type GeneratedProduct } from "../../../services/ai/src/generator.js";
import { basketStartRates, completeBasket, demoAffinities, demoBasketProducts, type Affinity, type BasketProduct } from "../../../services/ai/src/generator-baskets.js";
import { backoffDelay } from "./backoff.js";
import { unary } from "./grpc.js";
import { sell } from "./sales.js";
import { simulatedBuyers } from "./simulated-buyers.js";

const listProductsPath = "/adminkiosk.catalog.v1.ProductService/ListProducts";
const listStockPath = "/adminkiosk.catalog.v1.InventoryService/ListStock";

/** The seed ai's seed-demo generates the simulated kiosks' history with. */
export const historySeed = 1;

export interface SellingKiosk {
  kioskId: string;
  deviceCredential: string;
}

export interface SellingOptions {
  ordersUrl: string;
  catalogUrl: string;
  kiosks: SellingKiosk[];
  /** First day (UTC, YYYY-MM-DD) of the seeded history: the generator's trend runs from it. */
  historyStart: string;
  /** Demand × this (1: real time). Restock waits and stock checks shrink by it too. */
  speedup?: number;
  /** Sales in progress at one kiosk at most (default 2). */
  concurrency?: number;
  /** The simulated route driver; without it nothing is restocked. */
  restock?: RestockOptions;
  /** customers' address: some buyers are loyalty members, rate, ask to be told when a product is back, call for help (simulated-buyers.ts). */
  customersUrl?: string;
  /** Default 1 (ai's seed-demo). */
  seed?: number;
  /**
   * A kiosk's demand × this, asked at each arrival (default 1): a simulated kiosk on a
   * "low-sales" version sells 30 % fewer (Simulator.salesFactor).
   */
  rateFactor?: (kioskId: string) => number;
  /**
   * Customers arrive evenly spaced at exactly the rate instead of at Poisson times, so the
   * sales in a window are the rate × its length (± one): for tests comparing kiosks' sales.
   */
  steady?: boolean;
  /**
   * Demand as at this UTC hour (0-23) of the current day, whatever the clock says: the same
   * rates at any time of day, for tests (at night most of the generator's kiosks sell nothing).
   */
  demandHourUtc?: number;
  random?: () => number;
  log?: (line: string) => void;
}

export interface RestockOptions {
  /** An operator's access token (asked again after UNAUTHENTICATED). */
  token: () => Promise<string>;
  /** Simulated minutes a product stays out before the visit (default 120). */
  afterMinutes?: number;
  /** The visit fills up to this many days of the kiosk's mean demand for the product (default 2). */
  days?: number;
}

export interface SellingStats {
  /** Customers who arrived. */
  arrivals: number;
  /** Completed sales (orders COMPLETED) and their units. */
  completed: number;
  units: number;
  /** Orders that failed (a declined payment) or did not finish in time. */
  failed: number;
  /** Customers lost: everything they wanted was out, the kiosk was busy, or it was backing off. */
  lostSoldOut: number;
  lostBusy: number;
  lostBackingOff: number;
  /** Sales catalog refused as out of stock (the kiosk's view of its stock was stale). */
  refusedOutOfStock: number;
  /** Calls that failed otherwise (orders, payments, catalog down or refusing). */
  errors: number;
  /** Restock visits made. */
  restocks: number;
}

export interface Selling {
  stats: SellingStats;
  stop(): Promise<void>;
}

interface BasketPlan {
  products: BasketProduct[];
  starts: Map<string, number>;
  affinities: Affinity[];
  extra: number;
}

interface KioskState {
  kiosk: SellingKiosk;
  params: GeneratedKiosk;
  /** Units this kiosk can sell now, by SKU, as last read (and counted down since). */
  available: Map<string, number>;
  inFlight: number;
  attempt: number;
  pausedUntil: number;
  /** The basket plan for the current UTC hour and prices (rates change only with those). */
  plan?: { key: string; plan: BasketPlan; total: number };
}

/** Kiosk number N: the digits at the end of its id (sim-0007: 7). */
function kioskNumber(kioskId: string): number {
  const n = Number(/(\d+)$/.exec(kioskId)?.[1] ?? NaN);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new Error(`${kioskId}: a simulated kiosk's id ends in its number (1..100000)`);
  return n;
}

/** The generator's parameters of each kiosk: kiosk number N gets those of sim-N. */
export function generatorKiosks(kioskIds: string[], seed = historySeed): Map<string, GeneratedKiosk> {
  const numbers = kioskIds.map(kioskNumber);
  const all = generateKiosks(seed, Math.max(0, ...numbers));
  return new Map(kioskIds.map((kioskId, i) => [kioskId, { ...all[numbers[i]! - 1]!, kioskId }]));
}

export function startSelling(options: SellingOptions): Selling {
  const speedup = options.speedup ?? 1;
  if (!(speedup > 0 && speedup <= 1_000_000)) throw new Error(`speedup must be above 0 and at most 1000000 (got ${speedup})`);
  const concurrency = options.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a positive integer (got ${concurrency})`);
  if (options.demandHourUtc !== undefined && !(Number.isInteger(options.demandHourUtc) && options.demandHourUtc >= 0 && options.demandHourUtc <= 23)) throw new Error(`demandHourUtc must be an hour, 0-23 (got ${options.demandHourUtc})`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(options.historyStart) || Number.isNaN(dayIndex(options.historyStart))) throw new Error(`historyStart must be a day, YYYY-MM-DD (got "${options.historyStart}")`);
  const seed = options.seed ?? historySeed;
  const random = options.random ?? Math.random;
  const log = options.log ?? (() => {});
  const buyers = options.customersUrl ? simulatedBuyers({ customersUrl: options.customersUrl, random, log }) : undefined;
  const stats: SellingStats = { arrivals: 0, completed: 0, units: 0, failed: 0, lostSoldOut: 0, lostBusy: 0, lostBackingOff: 0, refusedOutOfStock: 0, errors: 0, restocks: 0 };
  const timers = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<unknown>>();
  let stopped = false;
  const later = (ms: number, fn: () => void | Promise<void>) => {
    if (stopped) return;
    const t = setTimeout(() => {
      timers.delete(t);
      if (stopped) return;
      const p = Promise.resolve(fn()).catch((err: unknown) => log(`selling: ${err instanceof Error ? err.message : String(err)}`));
      running.add(p);
      void p.finally(() => running.delete(p));
    }, Math.max(0, ms));
    timers.add(t);
  };
  // Stock is read about every 5 simulated minutes (at least every 60 s, at most every 500 ms).
  const stockEveryMs = Math.min(60_000, Math.max(500, 300_000 / speedup));
  const params = generatorKiosks(options.kiosks.map((k) => k.kioskId), seed);
  const states = options.kiosks.map<KioskState>((kiosk) => ({ kiosk, params: params.get(kiosk.kioskId)!, available: new Map(), inFlight: 0, attempt: 0, pausedUntil: 0 }));

  /** The generator's products catalog sells, at catalog's price (a price change moves demand by the elasticity). */
  let products: { product: GeneratedProduct; priceMinor: number }[] = [];
  let productsVersion = "";
  const readProducts = async (credential: string) => {
    const { products: listed } = await unary(options.catalogUrl, listProductsPath, ListProductsRequestSchema, ListProductsResponseSchema, { pageSize: 500 }, { credential });
    const bySku = new Map(listed.filter((p) => p.active).map((p) => [p.sku, p]));
    const sold = defaultProducts.filter((p) => bySku.has(p.sku)).map((product) => ({ product, priceMinor: Number(bySku.get(product.sku)!.priceMinor) }));
    const missing = defaultProducts.filter((p) => !bySku.has(p.sku)).map((p) => p.sku);
    if (missing.length > 0 && products.length === 0) log(`selling: catalog lacks the generator's ${missing.join(", ")}; not sold`);
    const version = JSON.stringify(sold.map((p) => [p.product.sku, p.priceMinor]));
    if (version !== productsVersion) products = sold;
    productsVersion = version;
  };

  const readStock = async (s: KioskState) => {
    const { stock } = await unary(options.catalogUrl, listStockPath, ListStockRequestSchema, ListStockResponseSchema, { pageSize: 1000 }, { credential: s.kiosk.deviceCredential });
    s.available = new Map(stock.map((l) => [l.sku, Number(l.available)]));
  };

  /** Units per hour of each product the kiosk has in stock now (the generator's rate × speedup). */
  const demandNow = (s: KioskState, at: Date): Map<string, number> => {
    const demand = new Map<string, number>();
    for (const { product, priceMinor } of products) demand.set(product.sku, hourlyRate(seed, s.params, product, at, options.historyStart, priceMinor) * speedup);
    return demand;
  };

  const sellBasket = async (s: KioskState, skus: string[]) => {
    s.inFlight++;
    try {
      const order = await sell(
        { idempotencyKey: randomUUID(), items: skus.map((sku) => ({ sku, quantity: 1n })), paymentMethod: "pm_card_visa" },
        { ordersAddress: options.ordersUrl, credential: s.kiosk.deviceCredential, timeoutMs: 30_000 },
      );
      s.attempt = 0;
      if (order.state === OrderState.COMPLETED) {
        stats.completed++;
        stats.units += skus.length;
        for (const sku of skus) s.available.set(sku, (s.available.get(sku) ?? 1) - 1);
        await buyers?.afterSale(s.kiosk, order.orderId, skus);
      } else stats.failed++;
    } catch (err) {
      const e = err as grpc.ServiceError;
      const outOf = e.code === grpc.status.RESOURCE_EXHAUSTED ? /^items\[(\d+)\]/.exec(e.details ?? "") : null;
      if (outOf) {
        // The kiosk's view was stale: that product is out until its stock says otherwise.
        stats.refusedOutOfStock++;
        s.available.set(skus[Number(outOf[1])] ?? "", 0);
        return;
      }
      stats.errors++;
      // orders or payments refusing or down: pause this kiosk's selling, longer each time.
      s.pausedUntil = Date.now() + backoffDelay(s.attempt++, { initialMs: 1_000, maxMs: 60_000 }, random);
      if (s.attempt === 1 || s.attempt % 10 === 0) log(`${s.kiosk.kioskId} selling paused: ${e.details ?? e.message}`);
    } finally {
      s.inFlight--;
    }
  };

  /** One customer: a basket started by a product drawn by its start rate, completed by the basket structure. */
  const arrive = (s: KioskState, plan: BasketPlan, total: number) => {
    stats.arrivals++;
    let r = random() * total;
    let first = [...plan.starts.keys()].at(-1)!;
    for (const [sku, rate] of plan.starts)
      if ((r -= rate) < 0) {
        first = sku;
        break;
      }
    // What is out is not bought (lost demand: censored sales); the rest of the basket is.
    const skus = completeBasket(first, random, plan.products, plan.affinities, plan.extra).filter((sku) => (s.available.get(sku) ?? 0) > 0);
    if (skus.length === 0) {
      stats.lostSoldOut++;
      void buyers?.soldOut(s.kiosk, first);
    }
    else if (Date.now() < s.pausedUntil) stats.lostBackingOff++;
    else if (s.inFlight >= concurrency) stats.lostBusy++;
    else {
      const p = sellBasket(s, skus);
      running.add(p);
      void p.finally(() => running.delete(p));
    }
  };

  /**
   * The next arrival after an exponential wait at the current total rate; the rate is
   * constant between checks (the hour, the stock), so a wait longer than the next check is
   * cut there and drawn again (memoryless: still a Poisson process).
   */
  const next = (s: KioskState) => {
    const now = new Date();
    const factor = options.rateFactor?.(s.kiosk.kioskId) ?? 1;
    const key = `${Math.floor(now.getTime() / 3_600_000)}|${productsVersion}|${factor}`;
    if (s.plan?.key !== key) {
      const at = options.demandHourUtc === undefined ? now : new Date(new Date(now).setUTCHours(options.demandHourUtc));
      const demand = new Map([...demandNow(s, at)].map(([sku, rate]) => [sku, rate * factor]));
      const basketProducts = demoBasketProducts.filter((p) => demand.has(p.sku));
      const plan = { products: basketProducts, ...basketStartRates(demand, basketProducts, demoAffinities.filter((a) => demand.has(a.a) && demand.has(a.b))) };
      s.plan = { key, plan, total: [...plan.starts.values()].reduce((a, b) => a + b, 0) };
    }
    const { plan, total } = s.plan;
    const untilHour = 3_600_000 - (now.getTime() % 3_600_000) + 1;
    const checkMs = Math.min(untilHour, 60_000);
    const waitMs = total > 0 ? ((options.steady ? 1 : -Math.log(1 - random())) / total) * 3_600_000 : Infinity;
    // Steady arrivals are not cut at the check: their wait is the rate's own spacing.
    if (waitMs >= checkMs && (!options.steady || !Number.isFinite(waitMs))) later(checkMs, () => next(s));
    else
      later(waitMs, () => {
        arrive(s, plan, total);
        next(s);
      });
  };

  const pollStock = (s: KioskState) =>
    later(stockEveryMs * (0.8 + random() * 0.4), async () => {
      await readStock(s).catch(() => {});
      pollStock(s);
    });

  const start = async () => {
    const first = states[0];
    if (!first) return;
    for (let attempt = 0; !stopped; attempt++) {
      try {
        await readProducts(first.kiosk.deviceCredential);
        break;
      } catch (err) {
        if (attempt === 0) log(`selling waits for catalog: ${(err as grpc.ServiceError).details ?? String(err)}`);
        await new Promise((r) => later(backoffDelay(attempt, { initialMs: 1_000, maxMs: 30_000 }, random), () => r(undefined)));
      }
    }
    if (stopped) return;
    log(`selling ${products.map((p) => p.product.sku).join(", ")} at ${states.length} kiosks (speed-up ×${speedup}, ≤${concurrency} sales at once per kiosk)`);
    for (const s of states) {
      later(random() * 2_000, async () => {
        await readStock(s).catch(() => {});
        pollStock(s);
        next(s);
      });
    }
    if (options.restock) startRestocking(options.restock);
    // Prices may change at catalog: read them again now and then.
    const reread = () =>
      later(stockEveryMs * 5, async () => {
        await readProducts(first.kiosk.deviceCredential).catch(() => {});
        reread();
      });
    reread();
  };

  /** The route driver: a product out at a kiosk for `afterMinutes` (simulated) is filled up. */
  const startRestocking = (r: RestockOptions) => {
    const afterMs = ((r.afterMinutes ?? 120) * 60_000) / speedup;
    const days = r.days ?? 2;
    const outSince = new Map<string, number>();
    const byId = new Map(states.map((s) => [s.kiosk.kioskId, s]));
    let token: Promise<string> | undefined;
    const bearer: Interceptor = (call) => async (req) => {
      req.header.set("authorization", `Bearer ${await (token ??= r.token())}`);
      return call(req);
    };
    const inventory = createClient(InventoryService, createGrpcTransport({ baseUrl: options.catalogUrl, interceptors: [bearer] }));
    const visit = async () => {
      try {
        const now = Date.now();
        const out = new Set<string>();
        for (let pageToken = ""; ; ) {
          const page = await inventory.listStock({ lowOnly: true, pageSize: 1000, pageToken });
          for (const l of page.stock) if (byId.has(l.kioskId) && l.available <= 0n) out.add(`${l.kioskId}|${l.sku}`);
          if (!page.nextPageToken) break;
          pageToken = page.nextPageToken;
        }
        for (const key of outSince.keys()) if (!out.has(key)) outSince.delete(key);
        for (const key of out) {
          const since = outSince.get(key) ?? now;
          outSince.set(key, since);
          if (now - since < afterMs) continue;
          const [kioskId, sku] = key.split("|") as [string, string];
          const s = byId.get(kioskId)!;
          const p = products.find((x) => x.product.sku === sku);
          // Fill up to `days` of the kiosk's mean demand (at least 5 units).
          const mean = p ? dailyMean(s.params, p.product, Math.floor(now / 86_400_000), dayIndex(options.historyStart), p.priceMinor) : 5;
          const quantity = BigInt(Math.max(5, Math.ceil(mean * days)));
          await inventory.restock({ kioskId, sku, quantity, reason: "simulated restock visit" });
          outSince.delete(key);
          stats.restocks++;
          s.available.set(sku, Number(quantity));
          log(`${kioskId} restocked: ${quantity} × ${sku} (simulated route driver)`);
        }
      } catch (err) {
        // Sign in again next time (a refused or expired token, or auth was down).
        token = undefined;
        const code = ConnectError.from(err).code;
        if (code !== Code.Unauthenticated && code !== Code.Unavailable) log(`restocking: ${ConnectError.from(err).message}`);
      }
      later(Math.min(stockEveryMs, Math.max(200, afterMs / 4)), visit);
    };
    later(0, visit);
  };

  later(0, start);
  return {
    stats,
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      // Sales in progress get a moment to finish (each carries on at orders regardless).
      await Promise.race([Promise.allSettled([...running]), new Promise((r) => setTimeout(r, 3_000).unref())]);
    },
  };
}

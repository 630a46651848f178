// The whole sale path as real processes: auth, catalog, payments with its provider
// simulator, and orders, wired the way npm start wires them, each on its own database.
// Helpers steer the simulator, seed products, stock and events, and wait for orders.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { DescService } from "@bufbuild/protobuf";
import { expect, inject } from "vitest";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { EventService, InventoryService, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { OrderService, OrderState, type Order } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { LedgerService, PaymentService } from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import { createDatabase, eventually, freePort, startTestProgram, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { clientFor, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";
import { generateTicketSigningKey } from "../src/tickets.js";

export interface SaleFixture {
  auth: AuthFixture;
  catalog: StartedService;
  payments: StartedService;
  sim: StartedService;
  orders: StartedService;
  tokens: { admin: string; operator: string; viewer: string };
  /** A device credential for `kioskId` (enrolled once, then cached). */
  device(kioskId: string): Promise<string>;
  ordersAs(token?: string): Client<typeof OrderService>;
  catalogAs<S extends DescService>(service: S, token: string): Client<S>;
  paymentsAs(token: string): Client<typeof PaymentService>;
  /** A product, stocked with `stock` units at each of `kiosks`. */
  product(sku: string, priceMinor: bigint, stock: Record<string, bigint>): Promise<void>;
  /** An event tomorrow with `seats` seats at 3000 minor units each; returns its id and seat ids. */
  event(seats: number): Promise<{ eventId: string; seatIds: string[] }>;
  stock(kioskId: string, sku: string): Promise<{ onHand: bigint; reserved: bigint; available: bigint }>;
  nextCharges(behavior: "succeed" | "decline" | "timeout" | "duplicate_webhooks" | "delay_webhook", extra?: { count?: number; decline_code?: string; delay_ms?: number }): Promise<void>;
  simCharges(reference: string): Promise<unknown[]>;
  /** Polls GetOrder (as the kiosk) until the order is in one of `states`. */
  waitFor(kiosk: string, orderId: string, states: OrderState[], timeoutMs?: number): Promise<Order>;
  expectLedgerBalanced(): Promise<void>;
  /** Rows of orders' stray_payments for `orderId` (payments refunded instead of completing it). */
  strayPayments(orderId: string): Promise<{ payment_intent_id: string; amount_minor: string; reason: string }[]>;
  /** Stops orders (SIGKILL when `crash`) and starts it again on the same database. */
  restartOrders(options?: { crash?: boolean; before?: () => Promise<void> }): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `postgresUrl`: the cluster to create the services' databases on (the shared test cluster by
 * default; the restore drill's own). `auth`: auth's settings; a REDIS_URL there is every service's.
 */
export async function startSale(
  settings: { catalog?: Record<string, string>; payments?: Record<string, string>; orders?: Record<string, string>; auth?: Record<string, string>; postgresUrl?: string } = {},
): Promise<SaleFixture> {
  const infra = inject("infra");
  const postgresUrl = settings.postgresUrl ?? infra.databaseUrl;
  const auth = await startAuth(settings.auth ?? {}, settings.postgresUrl);
  const jwks = `${auth.service.url}/.well-known/jwks.json`;
  const common = { REDIS_URL: auth.env["REDIS_URL"] ?? auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: jwks, HEALTH_PROBE_INTERVAL_MS: "300", SHUTDOWN_GRACE_MS: "3000" };
  const catalog = await startTestService("catalog", {
    ...common,
    DATABASE_URL: await createDatabase(postgresUrl, "catalog"),
    RESERVATION_SWEEP_MS: "200",
    MAX_HELD_RESERVATIONS_PER_KIOSK: "500",
    ...settings.catalog,
  });
  const apiKey = randomBytes(24).toString("hex");
  const webhookSecret = randomBytes(32).toString("hex");
  const simPort = await freePort();
  const payments = await startTestService("payments", {
    ...common,
    DATABASE_URL: await createDatabase(postgresUrl, "payments"),
    PROVIDER_URL: `http://127.0.0.1:${simPort}`,
    PROVIDER_API_KEY: apiKey,
    PROVIDER_WEBHOOK_SECRET: webhookSecret,
    PAYMENT_CONFIRM_TIMEOUT: "4s",
    PROVIDER_TIMEOUT: "3s",
    ...settings.payments,
  });
  const sim = await startTestProgram(
    "provider-sim",
    "services/payments/src/provider-sim/main.ts",
    "PROVIDER_SIM_PORT",
    { PROVIDER_API_KEY: apiKey, PROVIDER_WEBHOOK_SECRET: webhookSecret, PROVIDER_WEBHOOK_URL: `${payments.url}/webhooks/provider`, WEBHOOK_DELAY: "50ms" },
    simPort,
  );
  const suffix = randomBytes(4).toString("hex");
  const ordersEnv = {
    ...common,
    DATABASE_URL: await createDatabase(postgresUrl, "orders"),
    ...auth.serviceEnv("orders"),
    CATALOG_URL: catalog.url,
    PAYMENTS_URL: payments.url,
    ORDERS_TICKET_SIGNING_KEY: await generateTicketSigningKey(),
    PAYMENTS_EVENTS_CONSUMER: `orders-payments-${suffix}`,
    CATALOG_EVENTS_CONSUMER: `orders-catalog-${suffix}`,
    ...settings.orders,
  };
  let orders = await startTestService("orders", ordersEnv);
  const admin = await auth.adminToken();
  const tokens = { admin, operator: (await auth.userWithRole(Role.OPERATOR)).accessToken, viewer: (await auth.userWithRole(Role.VIEWER)).accessToken };
  const devices = new Map<string, Promise<string>>();
  const simCall = async <T>(path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${sim.url}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`simulator ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const f: SaleFixture = {
    auth,
    catalog,
    payments,
    sim,
    get orders() {
      return orders;
    },
    tokens,
    device(kioskId) {
      let credential = devices.get(kioskId);
      if (!credential) {
        credential = (async () => {
          const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId });
          return (await auth.client(DeviceService).enrollDevice({ code })).deviceCredential;
        })();
        devices.set(kioskId, credential);
      }
      return credential;
    },
    ordersAs: (token) => clientFor(OrderService, orders.url, token),
    catalogAs: (service, token) => clientFor(service, catalog.url, token),
    paymentsAs: (token) => clientFor(PaymentService, payments.url, token),
    async product(sku, priceMinor, stock) {
      await clientFor(ProductService, catalog.url, admin).createProduct({
        product: { sku, name: `Product ${sku}`, category: "snacks", priceMinor, currency: "EUR", taxRateBasisPoints: 2100, active: true },
      });
      for (const [kioskId, quantity] of Object.entries(stock))
        await clientFor(InventoryService, catalog.url, tokens.operator).restock({ kioskId, sku, quantity, reason: "test stock" });
    },
    async event(seats) {
      const { event } = await clientFor(EventService, catalog.url, admin).createEvent({
        event: {
          name: "Evening concert",
          venue: "Hall A",
          startTime: { seconds: BigInt(Math.floor(Date.now() / 1000) + 86_400), nanos: 0 },
          active: true,
          priceTiers: [{ tierId: "std", name: "Standard", priceMinor: 3000n, currency: "EUR" }],
          sections: [{ sectionId: "A", name: "Stalls", rows: [{ rowId: "1", seats: Array.from({ length: seats }, (_, s) => ({ number: String(s + 1), tierId: "std" })) }] }],
        },
      });
      const { seats: statuses } = await clientFor(EventService, catalog.url, admin).getSeatAvailability({ eventId: event!.eventId });
      return { eventId: event!.eventId, seatIds: statuses.map((s) => s.seatId) };
    },
    async stock(kioskId, sku) {
      const { stock } = await clientFor(InventoryService, catalog.url, tokens.viewer).getStock({ kioskId, sku });
      return { onHand: stock!.onHand, reserved: stock!.reserved, available: stock!.available };
    },
    async nextCharges(behavior, extra = {}) {
      await simCall("/control/next-charges", { behavior, ...extra });
    },
    simCharges: async (reference) => (await simCall<{ data: unknown[] }>(`/v1/charges?reference=${reference}`)).data,
    async waitFor(kiosk, orderId, states, timeoutMs = eventually.timeout) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        let order: Order | undefined;
        try {
          ({ order } = await clientFor(OrderService, orders.url, kiosk).getOrder({ orderId }));
        } catch (err) {
          // A restarted orders fetches auth's JWKS on its first call; a busy machine can time that out.
          if (ConnectError.from(err).code !== Code.Unavailable) throw err;
        }
        if (order && states.includes(order.state)) return order;
        if (Date.now() > deadline) throw new Error(`order ${orderId} is ${OrderState[order?.state ?? 0]} (${order?.failureCode}), not ${states.map((s) => OrderState[s]).join("/")}, after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, eventually.interval));
      }
    },
    async expectLedgerBalanced() {
      const { totals } = await clientFor(LedgerService, payments.url, admin).getLedgerBalance({});
      for (const t of totals) expect(t.balanceMinor, `ledger total in ${t.currency}`).toBe(0n);
    },
    async strayPayments(orderId) {
      const db = new pg.Client({ connectionString: ordersEnv.DATABASE_URL });
      await db.connect();
      try {
        const { rows } = await db.query("SELECT payment_intent_id, amount_minor::text AS amount_minor, reason FROM orders.stray_payments WHERE order_id = $1", [orderId]);
        return rows as { payment_intent_id: string; amount_minor: string; reason: string }[];
      } finally {
        await db.end();
      }
    },
    async restartOrders(options = {}) {
      if (options.crash) {
        orders.child.kill("SIGKILL");
        await orders.exited;
      } else await orders.stop();
      await options.before?.();
      orders = await startTestService("orders", ordersEnv);
    },
    async stop() {
      await orders?.stop();
      await sim?.stop();
      await payments?.stop();
      await catalog?.stop();
      await auth?.stop();
    },
  };
  await untilTokensVerify(f);
  return f;
}

/** Fresh processes fetch auth's JWKS on their first authenticated call; start once all do. */
async function untilTokensVerify(f: SaleFixture) {
  const kiosk = await f.device("kiosk-warmup");
  const calls = [
    () => f.ordersAs(f.tokens.viewer).listOrders({ pageSize: 1 }),
    () => f.catalogAs(ProductService, kiosk).listProducts({ pageSize: 1 }),
    () => f.paymentsAs(kiosk).listPaymentIntents({ pageSize: 1 }),
  ];
  const unavailable = (err: unknown) => ConnectError.from(err).code === Code.Unavailable;
  for (const call of calls) await waitFor("a fresh service to verify tokens", async () => (await call(), true), { timeout: 60_000, interval: 500, retry: unavailable });
}

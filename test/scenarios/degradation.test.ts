// Graceful degradation (issue 16, docs/operations.md "Degradation matrix"), on real
// processes: the sale path, fleet and a link replica sharing one auth and a Redis of this
// file's own. One dependency at a time goes away and the test checks what still works
// and what a caller is told:
//   - Redis gone: tokens that need no revocation check (service tokens) still verify and
//     JWKS is served, and a person's token the service found not revoked in the last 30 s
//     stands; a token never checked there, and a login (its throttle counts in Redis), fail
//     closed with Unavailable, never with OK or Unauthenticated; all back once Redis is;
//   - payments stopped: a sale is refused with Unavailable naming payments, and its hold
//     expires on its own: the units return to stock and the order fails;
//   - catalog stopped: WatchFleet streams, and a command goes to the kiosk, runs and is
//     reported; a kiosk's sale gets Unavailable naming catalog.
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { ReservationService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { CommandService, CommandState } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { createDatabase, eventually, freePort, startRedis, startTestService, type ManagedProcess, type StartedService } from "@adminkiosk/devstack";
import { KioskClient } from "@adminkiosk/kiosk-sdk";
import { startSale, type SaleFixture } from "../../services/orders/test/fixture.js";
import { adminEmail, adminPassword, clientFor, failure } from "../support/auth.js";

let dir: string;
let redisPort: number;
let redis: ManagedProcess;
let f: SaleFixture;
let fleet: StartedService;
let link: StartedService;
const kiosks: KioskClient[] = [];

beforeAll(async () => {
  const infra = inject("infra");
  dir = mkdtempSync(join(infra.tmpDir, "degradation-"));
  redisPort = await freePort();
  redis = await startRedis(join(dir, "redis"), redisPort);
  // Holds as short as orders allows (30 s), swept often, so an expired hold is seen in the test.
  f = await startSale({ auth: { REDIS_URL: redis.url }, orders: { ORDER_HOLD_SECONDS: "30" } });
  const shared = { REDIS_URL: redis.url, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${f.auth.service.url}/.well-known/jwks.json`, SHUTDOWN_GRACE_MS: "3000" };
  fleet = await startTestService("fleet", {
    ...shared,
    DATABASE_URL: await createDatabase(infra.databaseUrl, "fleet"),
    AUTH_URL: f.auth.service.url,
    LINK_EVENTS_CONSUMER: `fleet-degradation-${process.pid}`,
    LINK_EVENTS_SINCE_START: "true",
    PRESENCE_SWEEP_MS: "1000",
    COMMAND_SWEEP_MS: "300",
    COMMAND_RESEND_MS: "3000",
  });
  link = await startTestService("link", { ...shared, LINK_REPLICA_ID: `degradation-link-${process.pid}` });
}, 180_000);
afterAll(async () => {
  await Promise.all(kiosks.map((k) => k.stop()));
  await Promise.all([fleet?.stop(), link?.stop()]);
  await f?.stop();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("with one dependency gone", () => {
  it("Redis: service tokens still verify, and a token checked in the last 30 s; logins and tokens never checked fail closed with Unavailable; all back with Redis", async () => {
    const serviceToken = await f.auth.serviceToken("orders");
    const operator = f.tokens.operator;
    const viewer = f.tokens.viewer;
    await f.ordersAs(viewer).listOrders({ pageSize: 1 }); // orders has just found the viewer's session not ended
    await redis.stop();
    try {
      // Within the revocation grace (30 s, runtime tokens.ts) the answer orders had stands.
      expect((await f.ordersAs(viewer).listOrders({ pageSize: 1 })).orders).toBeDefined();
      // Catalog verifies orders' service token with auth's keys alone: the answer is catalog's own (NotFound).
      const reservations = f.catalogAs(ReservationService, serviceToken);
      expect((await failure(reservations.getReservation({ reservationId: "00000000-0000-4000-8000-000000000000" }))).code).toBe(Code.NotFound);
      expect((await fetch(`${f.auth.service.url}/.well-known/jwks.json`)).status).toBe(200);
      // A token orders never checked cannot be checked against ended sessions: refused, as unavailable, not as bad.
      const asOperator = await failure(f.ordersAs(operator).listOrders({ pageSize: 1 }));
      expect(asOperator.code).toBe(Code.Unavailable);
      // Login's throttle counts in Redis: without it there is no login (fail closed).
      const login = await failure(f.auth.client(AuthService).login({ email: adminEmail, password: adminPassword }));
      expect(login.code).toBe(Code.Unavailable);
    } finally {
      redis = await startRedis(join(dir, "redis"), redisPort);
    }
    await expect
      .poll(async () => (await f.auth.client(AuthService).login({ email: adminEmail, password: adminPassword }).then(() => "ok", (e: unknown) => String(e))), eventually)
      .toBe("ok");
    await expect.poll(async () => (await f.ordersAs(operator).listOrders({ pageSize: 1 }).then(() => "ok", (e: unknown) => String(e))), eventually).toBe("ok");
  }, 60_000);

  it("payments stopped: a sale gets Unavailable naming payments, and its hold expires cleanly (stock returns, the order fails)", async () => {
    await f.product("deg-tea", 250n, { "deg-k1": 5n });
    const kiosk = await f.device("deg-k1");
    await f.payments.stop();
    const err = await failure(f.ordersAs(kiosk).createOrder({ idempotencyKey: "deg-pay-1", items: [{ sku: "deg-tea", quantity: 2n }], paymentMethod: "pm_card_visa" }));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toMatch(/^payments is unavailable/);
    // Held while the payment could not start...
    expect(await f.stock("deg-k1", "deg-tea")).toMatchObject({ onHand: 5n, reserved: 2n, available: 3n });
    // ...until the hold lapses: the units are back and nothing was sold.
    await expect.poll(() => f.stock("deg-k1", "deg-tea"), { timeout: 90_000, interval: 500 }).toMatchObject({ onHand: 5n, reserved: 0n, available: 5n });
    const { orders } = await f.ordersAs(f.tokens.viewer).listOrders({ pageSize: 50 });
    const order = orders.find((o) => o.kioskId === "deg-k1");
    expect(order?.state).not.toBe(OrderState.COMPLETED);
  }, 150_000);

  it("catalog stopped: WatchFleet streams and a command round trip works; a kiosk's sale gets Unavailable naming catalog", async () => {
    const admin = f.tokens.admin;
    const kioskId = "deg-k2";
    await clientFor(KioskService, fleet.url, admin).createKiosk({ kiosk: { kioskId, name: "Degradation" } });
    const credential = await f.device(kioskId);
    const executed: string[] = [];
    const kiosk = new KioskClient({ linkAddress: [link.url], credential, firmwareVersion: "1.0.0", appVersion: "1.0.0", backoff: { initialMs: 100, maxMs: 1_000 } });
    kiosks.push(kiosk);
    kiosk.onCommand("displayMessage", (_m, d) => void executed.push(d.commandId));

    await f.catalog.stop();
    const abort = new AbortController();
    try {
      // The live view opens and shows the kiosk come online while catalog is down.
      const view = clientFor(KioskService, fleet.url, admin).watchFleet({}, { signal: abort.signal });
      const online = (async () => {
        for await (const m of view) if (m.changed.some((k) => k.kioskId === kioskId && k.status === KioskStatus.ONLINE)) return m.summary;
        return undefined;
      })();
      kiosk.start();
      expect((await online)?.online).toBeGreaterThan(0);

      const commands = clientFor(CommandService, fleet.url, admin);
      const { command } = await commands.sendCommand({ kioskId, action: { kind: { case: "displayMessage", value: { text: "Cash only: card sales are down" } } } });
      await expect.poll(async () => (await commands.getCommand({ commandId: command!.commandId })).command?.state, { ...eventually, interval: 50 }).toBe(CommandState.SUCCEEDED);
      expect(executed).toEqual([command!.commandId]);

      // A sale cannot reserve stock: a clear Unavailable, naming catalog (the breaker's fast answer after a few).
      const messages: string[] = [];
      for (let i = 0; i < 6; i++) {
        const err = await failure(f.ordersAs(credential).createOrder({ idempotencyKey: `deg-cat-${i}`, items: [{ sku: "deg-tea", quantity: 1n }], paymentMethod: "pm_card_visa" }));
        expect(err.code).toBe(Code.Unavailable);
        expect(err.rawMessage).toMatch(/^catalog is unavailable: /);
        messages.push(err.rawMessage);
      }
      // After five failed attempts in a row the breaker answers at once (a probe every 5 s may still reach the dead port).
      expect(messages.some((m) => m.startsWith("catalog is unavailable: its circuit breaker is open"))).toBe(true);
      // And orders says so on /metrics.
      const metrics = await (await fetch(`${f.orders.url}/metrics`)).text();
      expect(metrics).toMatch(/adminkiosk_upstream_breaker_state\{upstream="catalog"[^}]*\} 1/);
    } finally {
      abort.abort();
    }
  }, 60_000);
});

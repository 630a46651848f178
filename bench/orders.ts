// Sales per second end to end (CreateOrder → payment confirmed by the simulator's signed
// webhook → completion worker → COMPLETED), with p50/p99 latency, against real auth,
// catalog, payments (+ provider simulator) and orders processes on one PostgreSQL, NATS
// and Redis. Baseline in the same run: the same database writes the sale makes (catalog's
// reservation and commit, payments' intent, ledger and outbox, orders' order, lines,
// receipt and outbox), as the same number of transactions, straight from this process,
// without the services, NATS or the provider.
import { randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { AuthService, DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { InventoryService, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { OrderService, OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { freePort, repoRoot, startProgramProcess } from "@adminkiosk/devstack";
import { generateTicketSigningKey } from "../services/orders/src/tickets.js";
import { benchAdmin, withStack } from "./stack.js";

const total = Number(process.env["BENCH_ORDERS"] ?? 300);
const concurrency = Number(process.env["BENCH_CONCURRENCY"] ?? 16);
const kioskCount = 4;

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function run(n: number, c: number, one: (i: number) => Promise<void>): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t = performance.now();
        await one(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { seconds: (performance.now() - start) / 1000, latencies: latencies.sort((a, b) => a - b) };
}

const report = (name: string, r: { seconds: number; latencies: number[] }) =>
  `| ${name} | ${r.latencies.length} | ${concurrency} | ${(r.latencies.length / r.seconds).toFixed(1)} | ${pct(r.latencies, 50).toFixed(1)} | ${pct(r.latencies, 99).toFixed(1)} |`;

await withStack({}, async ({ databaseUrl, redisUrl, natsUrl, auth, serviceEnv, start }) => {
  const jwks = `${auth.url}/.well-known/jwks.json`;
  const common = { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, NATS_URL: natsUrl, AUTH_JWKS_URL: jwks };
  const catalog = await start("catalog", { ...common, MAX_HELD_RESERVATIONS_PER_KIOSK: "1000" });
  const apiKey = randomBytes(24).toString("hex");
  const webhookSecret = randomBytes(32).toString("hex");
  const simPort = await freePort();
  const payments = await start("payments", { ...common, PROVIDER_URL: `http://127.0.0.1:${simPort}`, PROVIDER_API_KEY: apiKey, PROVIDER_WEBHOOK_SECRET: webhookSecret });
  const simEntry = join(repoRoot, "services/payments/src/provider-sim/main.ts");
  const sim = await startProgramProcess("provider-sim", simEntry, join(repoRoot, "services/payments"), simPort, {
    LOG_LEVEL: "warn",
    PROVIDER_SIM_PORT: String(simPort),
    PROVIDER_API_KEY: apiKey,
    PROVIDER_WEBHOOK_SECRET: webhookSecret,
    PROVIDER_WEBHOOK_URL: `${payments.url}/webhooks/provider`,
    WEBHOOK_DELAY: "0ms",
  }, () => {});
  const orders = await start("orders", { ...common, ...serviceEnv("orders"), CATALOG_URL: catalog.url, PAYMENTS_URL: payments.url, ORDERS_TICKET_SIGNING_KEY: await generateTicketSigningKey() });
  try {
    const authT = createGrpcTransport({ baseUrl: auth.url });
    const { tokens } = await createClient(AuthService, authT).login(benchAdmin);
    const admin = tokens!.accessToken;
    const kiosks: string[] = [];
    for (let k = 0; k < kioskCount; k++) {
      const { code } = await createClient(DeviceService, authT).createEnrollmentCode({ kioskId: `bench-${k}` }, bearer(admin));
      kiosks.push((await createClient(DeviceService, authT).enrollDevice({ code })).deviceCredential);
    }
    const catalogT = createGrpcTransport({ baseUrl: catalog.url });
    await createClient(ProductService, catalogT).createProduct({ product: { sku: "bench-coffee", name: "Coffee", category: "drinks", priceMinor: 250n, currency: "EUR", taxRateBasisPoints: 2100, active: true } }, bearer(admin));
    for (let k = 0; k < kioskCount; k++)
      await createClient(InventoryService, catalogT).restock({ kioskId: `bench-${k}`, sku: "bench-coffee", quantity: 100_000n, reason: "bench" }, bearer(admin));
    const ordersClient = createClient(OrderService, createGrpcTransport({ baseUrl: orders.url }));
    const sale = async (i: number) => {
      const kiosk = kiosks[i % kioskCount]!;
      const { order } = await ordersClient.createOrder({ idempotencyKey: `bench-${i}-${randomUUID()}`, items: [{ sku: "bench-coffee", quantity: 1n }], paymentMethod: "pm_card_visa" }, bearer(kiosk));
      for (;;) {
        const { order: now } = await ordersClient.getOrder({ orderId: order!.orderId }, bearer(kiosk));
        if (now?.state === OrderState.COMPLETED) return;
        if (now?.state === OrderState.FAILED) throw new Error(`order failed: ${now.failureCode} ${now.failureMessage}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await run(20, 4, sale); // warm-up: JWKS, JIT, pools
    const services = await run(total, concurrency, sale);

    const baseline = await baselineWrites(databaseUrl);
    console.log(`\norders: ${total} sales, concurrency ${concurrency}, ${kioskCount} kiosks, ${new Date().toISOString()}\n`);
    console.log("| path | sales | concurrency | sales/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|");
    console.log(report("services end to end (create → paid → completed)", services));
    console.log(report("baseline: the same DB writes, no services", baseline));
  } finally {
    await sim.stop();
  }
});

/** The sale's writes as the services make them, in as many transactions, on a scratch schema. */
async function baselineWrites(databaseUrl: string) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
  await pool.query(`DROP SCHEMA IF EXISTS bench_baseline CASCADE; CREATE SCHEMA bench_baseline; SET search_path = bench_baseline`);
  const ddl = `
    CREATE TABLE bench_baseline.stock (kiosk_id text, sku text, on_hand bigint, reserved bigint, PRIMARY KEY (kiosk_id, sku));
    CREATE TABLE bench_baseline.reservations (id uuid PRIMARY KEY, kiosk_id text, state text, expires_at timestamptz);
    CREATE TABLE bench_baseline.reservation_items (reservation_id uuid, sku text, quantity bigint, price bigint);
    CREATE TABLE bench_baseline.idempotency_keys (scope text, key text, hash bytea, response bytea, PRIMARY KEY (scope, key));
    CREATE TABLE bench_baseline.intents (id uuid PRIMARY KEY, order_id text, amount bigint, state text);
    CREATE TABLE bench_baseline.jobs (id bigserial PRIMARY KEY, intent_id uuid, done boolean DEFAULT false);
    CREATE TABLE bench_baseline.webhook_events (id text PRIMARY KEY);
    CREATE TABLE bench_baseline.ledger (id bigserial, intent_id uuid, account text, amount bigint);
    CREATE TABLE bench_baseline.outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), subject text, payload bytea, published_at timestamptz);
    CREATE TABLE bench_baseline.orders (id uuid PRIMARY KEY, kiosk_id text, key text, hash bytea, state text, total bigint, receipt bytea, UNIQUE (kiosk_id, key));
    CREATE TABLE bench_baseline.order_lines (order_id uuid, line int, sku text, quantity bigint, price bigint);
    CREATE TABLE bench_baseline.inbox (stream text, seq bigint, PRIMARY KEY (stream, seq));`;
  await pool.query(ddl);
  for (let k = 0; k < kioskCount; k++) await pool.query("INSERT INTO bench_baseline.stock VALUES ($1, 'c', 1000000, 0)", [`bench-${k}`]);
  const tx = async (work: (c: pg.PoolClient) => Promise<void>) => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await work(client);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
  };
  let seq = 0;
  const payload = randomBytes(300);
  const result = await run(total, concurrency, async (i) => {
    const kiosk = `bench-${i % kioskCount}`;
    const orderId = randomUUID();
    const intentId = randomUUID();
    // orders: the idempotency record
    await pool.query("INSERT INTO bench_baseline.orders VALUES ($1, $2, $3, $4, 'created', 0, NULL) ON CONFLICT DO NOTHING", [orderId, kiosk, `k${i}`, payload.subarray(0, 32)]);
    // catalog: Reserve
    await tx(async (c) => {
      await c.query("SELECT * FROM bench_baseline.stock WHERE kiosk_id = $1 AND sku = 'c' FOR UPDATE", [kiosk]);
      await c.query("UPDATE bench_baseline.stock SET reserved = reserved + 1 WHERE kiosk_id = $1 AND sku = 'c'", [kiosk]);
      await c.query("INSERT INTO bench_baseline.reservations VALUES ($1, $2, 'held', now() + interval '10 minutes')", [orderId, kiosk]);
      await c.query("INSERT INTO bench_baseline.reservation_items VALUES ($1, 'c', 1, 250)", [orderId]);
    });
    // orders: lines
    await tx(async (c) => {
      await c.query("UPDATE bench_baseline.orders SET total = 250 WHERE id = $1", [orderId]);
      await c.query("INSERT INTO bench_baseline.order_lines VALUES ($1, 1, 'c', 1, 250)", [orderId]);
    });
    // payments: CreatePaymentIntent (key + intent + provider job)
    await tx(async (c) => {
      await c.query("INSERT INTO bench_baseline.idempotency_keys VALUES ($1, $2, $3, NULL)", [`kiosk:${kiosk}`, `order-${orderId}`, payload.subarray(0, 32)]);
      await c.query("INSERT INTO bench_baseline.intents VALUES ($1, $2, 250, 'processing')", [intentId, orderId]);
      await c.query("INSERT INTO bench_baseline.jobs (intent_id) VALUES ($1)", [intentId]);
      await c.query("UPDATE bench_baseline.idempotency_keys SET response = $3 WHERE scope = $1 AND key = $2", [`kiosk:${kiosk}`, `order-${orderId}`, payload]);
    });
    await pool.query("UPDATE bench_baseline.orders SET state = 'pending_payment' WHERE id = $1", [orderId]);
    // payments: the provider worker's job, then the webhook (event + state + ledger + outbox)
    await pool.query("UPDATE bench_baseline.jobs SET done = true WHERE intent_id = $1", [intentId]);
    await tx(async (c) => {
      await c.query("INSERT INTO bench_baseline.webhook_events VALUES ($1)", [`evt-${intentId}`]);
      await c.query("SELECT * FROM bench_baseline.intents WHERE id = $1 FOR UPDATE", [intentId]);
      await c.query("UPDATE bench_baseline.intents SET state = 'succeeded' WHERE id = $1", [intentId]);
      await c.query("INSERT INTO bench_baseline.ledger (intent_id, account, amount) VALUES ($1, 'clearing', 250), ($1, 'sales', -250)", [intentId]);
      await c.query("INSERT INTO bench_baseline.outbox (subject, payload) VALUES ('payments.succeeded', $1)", [payload]);
    });
    // the outbox relay marks it published
    await pool.query("UPDATE bench_baseline.outbox SET published_at = now() WHERE published_at IS NULL AND subject = 'payments.succeeded'");
    // catalog: CommitReservation
    await tx(async (c) => {
      await c.query("SELECT * FROM bench_baseline.reservations WHERE id = $1 FOR UPDATE", [orderId]);
      await c.query("SELECT * FROM bench_baseline.stock WHERE kiosk_id = $1 AND sku = 'c' FOR UPDATE", [kiosk]);
      await c.query("UPDATE bench_baseline.stock SET reserved = reserved - 1, on_hand = on_hand - 1 WHERE kiosk_id = $1 AND sku = 'c'", [kiosk]);
      await c.query("UPDATE bench_baseline.reservations SET state = 'committed' WHERE id = $1", [orderId]);
    });
    // orders: completion (inbox + receipt + state + outbox)
    await tx(async (c) => {
      await c.query("INSERT INTO bench_baseline.inbox VALUES ('PAYMENTS', $1)", [++seq]);
      await c.query("SELECT * FROM bench_baseline.orders WHERE id = $1 FOR UPDATE", [orderId]);
      await c.query("UPDATE bench_baseline.orders SET state = 'completed', receipt = $2 WHERE id = $1", [orderId, payload]);
      await c.query("INSERT INTO bench_baseline.outbox (subject, payload) VALUES ('orders.completed', $1)", [payload]);
    });
    await pool.query("UPDATE bench_baseline.outbox SET published_at = now() WHERE published_at IS NULL AND subject = 'orders.completed'");
  });
  await pool.query("DROP SCHEMA bench_baseline CASCADE");
  await pool.end();
  return result;
}

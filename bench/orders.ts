// Sales per second end to end (CreateOrder → payment confirmed by the simulator's signed
// webhook → completion worker → COMPLETED), with p50/p99 latency, against real auth,
// catalog, payments (+ provider simulator) and orders processes on one PostgreSQL, NATS
// and Redis. Baseline in the same run: the same database writes the sale makes (catalog's
// reservation and commit, payments' intent, ledger and outbox, orders' order, lines,
// receipt and outbox), as the same number of transactions, straight from this process,
// without the services, NATS or the provider.
// A sale ends when orders' completed event is heard (BENCH_WAIT=poll: GetOrder every 5 ms);
// BENCH_SINGLE sales (default 40) are then made one at a time and their timeline printed,
// step by step, from the services' own rows. BENCH_CPU_PROF=orders,payments,catalog profiles
// those processes (bench/stack.ts; summarise with bench/cpuprof.ts).
import { randomBytes, randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { connect as natsConnect } from "@nats-io/transport-node";
import pg from "pg";
import { AuthService, DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { InventoryService, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { OrderService, OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { freePort, repoRoot, startProgramProcess } from "@adminkiosk/devstack";
import { generateTicketSigningKey } from "../services/orders/src/tickets.js";
import { benchAdmin, profileArgs, withStack } from "./stack.js";

const total = Number(process.env["BENCH_ORDERS"] ?? 300);
const concurrency = Number(process.env["BENCH_CONCURRENCY"] ?? 16);
/** Sales made one at a time after the concurrent run (the single-sale latency and its timeline). */
const singles = Number(process.env["BENCH_SINGLE"] ?? 40);
/**
 * How the bench learns a sale ended: "event" (default) hears orders' completed event on NATS;
 * "poll" asks GetOrder every 5 ms as the first runs did (50 times the kiosk SDK's 250 ms, so
 * orders spends most of its CPU answering polls).
 */
const waitMode = process.env["BENCH_WAIT"] === "poll" ? "poll" : "event";
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

const report = (name: string, r: { seconds: number; latencies: number[] }, c = concurrency) =>
  `| ${name} | ${r.latencies.length} | ${c} | ${(r.latencies.length / r.seconds).toFixed(1)} | ${pct(r.latencies, 50).toFixed(1)} | ${pct(r.latencies, 99).toFixed(1)} |`;

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
  }, () => {}, { nodeArgs: profileArgs("provider-sim") });
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
    // The end of a sale: orders' own event (orders.order.<id>.completed or .failed, through its
    // outbox and JetStream), heard on core NATS; it may come before CreateOrder's answer does.
    const nc = await natsConnect({ servers: natsUrl });
    const outcomes = new Map<string, string>();
    const waiters = new Map<string, (kind: string) => void>();
    const sub = nc.subscribe("orders.order.*.*");
    void (async () => {
      for await (const m of sub) {
        const [, , id, kind] = m.subject.split(".");
        if (kind !== "completed" && kind !== "failed") continue;
        const waiter = waiters.get(id!);
        if (waiter) {
          waiters.delete(id!);
          waiter(kind);
        } else outcomes.set(id!, kind);
      }
    })();
    await nc.flush();
    const settled = (orderId: string) =>
      new Promise<string>((resolve) => {
        const early = outcomes.get(orderId);
        if (early) {
          outcomes.delete(orderId);
          resolve(early);
        } else waiters.set(orderId, resolve);
      });
    /** Client-side marks of the sales timed one at a time (wall clock, ms since the epoch). */
    const marks = new Map<string, { start: number; answered: number; seen: number }>();
    const sale = async (i: number, mark = false) => {
      const kiosk = kiosks[i % kioskCount]!;
      const start = Date.now();
      const { order } = await ordersClient.createOrder({ idempotencyKey: `bench-${i}-${randomUUID()}`, items: [{ sku: "bench-coffee", quantity: 1n }], paymentMethod: "pm_card_visa" }, bearer(kiosk));
      const answered = Date.now();
      if (waitMode === "event") {
        const kind = await settled(order!.orderId);
        if (kind !== "completed") throw new Error(`order ${order!.orderId} ${kind}`);
        if (mark) marks.set(order!.orderId, { start, answered, seen: Date.now() });
        return;
      }
      for (;;) {
        const { order: now } = await ordersClient.getOrder({ orderId: order!.orderId }, bearer(kiosk));
        if (now?.state === OrderState.COMPLETED) {
          if (mark) marks.set(order!.orderId, { start, answered, seen: Date.now() });
          return;
        }
        if (now?.state === OrderState.FAILED) throw new Error(`order failed: ${now.failureCode} ${now.failureMessage}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await run(20, 4, sale); // warm-up: JWKS, JIT, pools
    const load = () => os.loadavg().map((l) => l.toFixed(1)).join(" / ");
    const loadBefore = load();
    const processes = { orders: orders.child.pid, payments: payments.child.pid, catalog: catalog.child.pid, "provider-sim": sim.child.pid, auth: auth.child.pid };
    const cpuBefore = cpuSnapshot(processes, databaseUrl, natsUrl);
    const services = await run(total, concurrency, (i) => sale(i, true));
    const cpuAfter = cpuSnapshot(processes, databaseUrl, natsUrl);
    const concurrentMarks = new Map(marks);
    marks.clear();
    const single = singles > 0 ? await run(singles, 1, (i) => sale(total + i, true)) : undefined;

    const baseline = await baselineWrites(databaseUrl, total, concurrency);
    const baselineSingle = singles > 0 ? await baselineWrites(databaseUrl, singles, 1) : undefined;
    console.log(`\norders: ${total} sales, concurrency ${concurrency}, ${kioskCount} kiosks, end heard by ${waitMode === "event" ? "orders' completed event" : "GetOrder every 5 ms"}, ${new Date().toISOString()}, load average ${loadBefore} before, ${load()} after\n`);
    console.log("| path | sales | concurrency | sales/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|");
    console.log(report("services end to end (create → paid → completed)", services));
    console.log(report("baseline: the same DB writes, no services", baseline));
    if (single && baselineSingle) {
      console.log(report("services end to end, one at a time", single, 1));
      console.log(report("baseline, one at a time", baselineSingle, 1));
    }
    console.log(`\nCPU per sale at concurrency ${concurrency} (/proc utime+stime over the run, ms per sale; wall ${(services.seconds * 1000 / total).toFixed(1)} ms per sale):\n`);
    console.log("| process | CPU ms per sale |\n|---|---:|");
    let cpuTotal = 0;
    for (const [name, after] of Object.entries(cpuAfter)) {
      const ms = ((after - (cpuBefore[name] ?? 0)) * 1000) / total;
      cpuTotal += ms;
      console.log(`| ${name} | ${ms.toFixed(1)} |`);
    }
    console.log(`| all | ${cpuTotal.toFixed(1)} |`);
    const rate = (r: { seconds: number; latencies: number[] }) => r.latencies.length / r.seconds;
    console.log(`\nservices / baseline at concurrency ${concurrency}: ${(rate(services) / rate(baseline)).toFixed(2)}`);
    await timeline(databaseUrl, concurrentMarks, `the ${concurrentMarks.size} sales at concurrency ${concurrency}`);
    if (marks.size > 0) await timeline(databaseUrl, marks, `${marks.size} sales made one at a time`);
    await nc.close();
  } finally {
    await sim.stop();
  }
});

/** The sale's writes as the services make them, in as many transactions, on a scratch schema. */
async function baselineWrites(databaseUrl: string, total: number, concurrency: number) {
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

/**
 * Where one sale's wall time goes: the steps' commit-side timestamps (each row's now() is its
 * transaction's start) read back from the services' own tables, as medians over the sales
 * timed one at a time, each step measured from the end of the one before.
 */
async function timeline(databaseUrl: string, marks: Map<string, { start: number; answered: number; seen: number }>, which: string) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  const ms = (col: string) => `(extract(epoch FROM ${col}) * 1000)::float8`;
  const { rows } = await pool.query<Record<string, number | string>>(
    `SELECT o.id,
       ${ms("o.created_at")} AS order_created,
       ${ms("r.created_at")} AS reserved,
       ${ms("i.created_at")} AS intent_created,
       ${ms("j.done_at")} AS charge_submitted,
       ${ms("i.updated_at")} AS webhook_applied,
       ${ms("po.published_at")} AS payment_event_published,
       ${ms("r.updated_at")} AS reservation_committed,
       ${ms("o.completed_at")} AS completed,
       ${ms("oo.published_at")} AS completed_event_published
     FROM orders.orders o
     JOIN catalog.reservations r ON r.reservation_id = o.id
     JOIN payments.payment_intents i ON i.id::text = o.payment_intent_id
     LEFT JOIN payments.provider_jobs j ON j.intent_id = i.id AND j.kind = 'charge'
     LEFT JOIN payments.outbox po ON po.subject = 'payments.intent.' || i.id || '.succeeded'
     LEFT JOIN orders.outbox oo ON oo.subject = 'orders.order.' || o.id || '.completed'
     WHERE o.id = ANY($1::uuid[])`,
    [[...marks.keys()]],
  );
  await pool.end();
  const steps: [string, string][] = [
    ["CreateOrder sent → order row inserted (orders)", "order_created"],
    ["→ reservation made (catalog)", "reserved"],
    ["→ payment intent created (payments)", "intent_created"],
    ["→ CreateOrder answered (kiosk)", "answered"],
    ["→ charge submitted, provider answered (payments' provider worker)", "charge_submitted"],
    ["→ signed webhook applied: succeeded (payments)", "webhook_applied"],
    ["→ payments.intent.succeeded published (outbox relay)", "payment_event_published"],
    ["→ reservation committed (orders' completion worker → catalog)", "reservation_committed"],
    ["→ COMPLETED committed (orders)", "completed"],
    [waitMode === "event" ? "→ orders.order.completed heard (outbox relay, JetStream)" : "→ GetOrder sees COMPLETED (polling every 5 ms)", "seen"],
  ];
  const deltas = steps.map(() => [] as number[]);
  for (const row of rows) {
    const m = marks.get(String(row["id"]))!;
    const at: Record<string, number> = { start: m.start, answered: m.answered, seen: m.seen };
    for (const [, col] of steps) if (!(col in at)) at[col] = Number(row[col]);
    // Steps happen in this order except CreateOrder's answer, which races the charge.
    let prev = m.start;
    steps.forEach(([, col], k) => {
      deltas[k]!.push(at[col]! - prev);
      prev = at[col]!;
    });
  }
  console.log(`\na sale's timeline over ${which} (payment event → orders' consumer is inside the commit step):\n`);
  console.log("| step | p50 ms | p90 ms |\n|---|---:|---:|");
  steps.forEach(([name], k) => {
    const d = deltas[k]!.sort((a, b) => a - b);
    console.log(`| ${name} | ${pct(d, 50).toFixed(1)} | ${pct(d, 90).toFixed(1)} |`);
  });
  const totals = [...marks.values()].map((m) => m.seen - m.start).sort((a, b) => a - b);
  console.log(`| total | ${pct(totals, 50).toFixed(1)} | ${pct(totals, 90).toFixed(1)} |`);
}

/** CPU seconds so far of the named processes, of this one, of PostgreSQL (postmaster and backends) and of nats-server. */
function cpuSnapshot(pids: Record<string, number | undefined>, databaseUrl: string, natsUrl: string): Record<string, number> {
  const tick = 100; // USER_HZ
  const stat = (pid: number) => {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
      return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / tick };
    } catch {
      return undefined;
    }
  };
  const cmdline = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
      return [];
    }
  };
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) if (pid) out[name] = stat(pid)?.cpu ?? 0;
  const self = process.cpuUsage();
  out["bench (client and its NATS listener)"] = (self.user + self.system) / 1e6;
  const all = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number);
  const pgPort = new URL(databaseUrl).port;
  const natsPort = new URL(natsUrl.replace(/^nats:/, "http:")).port;
  const postmaster = all.find((pid) => {
    const args = cmdline(pid);
    return args[0]?.endsWith("/postgres") && args.includes("-p") && args[args.indexOf("-p") + 1] === pgPort;
  });
  if (postmaster) out["postgres (all backends)"] = all.reduce((sum, pid) => {
    const st = pid === postmaster ? stat(pid) : undefined;
    if (st) return sum + st.cpu;
    const child = stat(pid);
    return child && child.ppid === postmaster ? sum + child.cpu : sum;
  }, 0);
  const nats = all.find((pid) => {
    const args = cmdline(pid);
    return args[0]?.endsWith("nats-server") && args.includes(natsPort);
  });
  if (nats) out["nats-server"] = stat(nats)?.cpu ?? 0;
  return out;
}

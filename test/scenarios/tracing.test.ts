// Distributed tracing end to end (issue 19), on real processes exporting their spans over
// OTLP/HTTP to devstack's span store (the one npm start runs on :7111; here on a free port):
//   - a sale is one trace: the kiosk's CreateOrder at orders, its calls to catalog and
//     payments, payments' charge at the provider simulator, the simulator's webhook back to
//     payments, the outbox relay publishing payment.succeeded, its time in JetStream, and
//     orders' completion worker applying it — each span after the one that caused it;
//   - a command is one trace from fleet's SendCommand through link to the kiosk's result;
//   - every log line written while a span is active carries its trace_id and span_id.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { CommandService, CommandState } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { eventually, formatTrace, repoRoot, startSpanStore, waitFor, type SpanStore, type StoredSpan } from "@adminkiosk/devstack";
import { startSale, type SaleFixture } from "../../services/orders/test/fixture.js";
import { Role } from "../support/auth.js";
import { startFleet, type FleetFixture } from "../support/fleet.js";

const run = promisify(execFile);
let store: SpanStore;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  store = await startSpanStore(0);
  // Every process these tests start inherits the environment (devstack spawns with it).
  for (const [k, v] of Object.entries({ TRACING_SAMPLE_RATIO: "1", TRACING_OTLP_URL: store.otlpUrl })) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});
afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await store?.stop();
});

/** The span of `service` whose name matches, failing with the whole trace when there is none. */
function find(spans: StoredSpan[], service: string, name: RegExp): StoredSpan {
  const s = spans.find((x) => x.service === service && name.test(x.name));
  if (!s) throw new Error(`no ${service} span matching ${name} in:\n${formatTrace(spans)}`);
  return s;
}

/** Whether `a` is an ancestor of `b` in the trace (b was caused by a). */
function causes(spans: StoredSpan[], a: StoredSpan, b: StoredSpan): boolean {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (let s: StoredSpan | undefined = byId.get(b.parentSpanId); s; s = byId.get(s.parentSpanId)) if (s.spanId === a.spanId) return true;
  return false;
}

describe("a sale", () => {
  let f: SaleFixture;
  beforeAll(async () => {
    f = await startSale();
    await f.product("trace-coffee", 250n, { "trace-kiosk": 10n });
  });
  afterAll(async () => {
    await f?.stop();
  });

  it("is one trace from the kiosk's CreateOrder through catalog, payments, the provider's webhook, the outbox relay and JetStream to the completion worker, in causal order", async () => {
    const kiosk = await f.device("trace-kiosk");
    const traceparent = `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`;
    const traceId = traceparent.split("-")[1]!;
    const { order } = await f.ordersAs(kiosk).createOrder(
      { idempotencyKey: `trace-${randomBytes(4).toString("hex")}`, items: [{ sku: "trace-coffee", quantity: 1n }], paymentMethod: "pm_card_visa" },
      { headers: { traceparent } },
    );
    await f.waitFor(kiosk, order!.orderId, [OrderState.COMPLETED]);

    // Each process sends its spans in batches of its own, so they arrive in any order: wait
    // for every span the sale must have.
    const required: [string, RegExp][] = [
      ["orders", /OrderService\/CreateOrder$/],
      ["catalog", /^adminkiosk\.catalog\.v1\..*\/(Reserve|Hold)/],
      ["payments", /PaymentService\/CreatePaymentIntent$/],
      ["provider-sim", /^POST \/v1\/charges$/],
      ["provider-sim", /^POST webhook charge\.succeeded$/],
      ["payments", /^POST \/webhooks\/provider$/],
      ["payments", /^outbox relay payments\./],
      ["payments", /^JetStream publish PAYMENTS$/],
      ["orders", /^JetStream PAYMENTS$/],
      ["orders", /^process orders-payments/],
    ];
    const spans = await waitFor("every span of the sale's trace", () => {
      const t = store.trace(traceId);
      return required.every(([service, name]) => t.some((s) => s.service === service && name.test(s.name))) ? t : undefined;
    }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; the trace so far:\n${formatTrace(store.trace(traceId))}`);
    });
    const createOrder = find(spans, "orders", /OrderService\/CreateOrder$/);
    const reserve = find(spans, "catalog", /^adminkiosk\.catalog\.v1\..*\/(Reserve|Hold)/);
    const payment = find(spans, "payments", /PaymentService\/CreatePaymentIntent$/);
    const charge = find(spans, "provider-sim", /^POST \/v1\/charges$/);
    const webhookSent = find(spans, "provider-sim", /^POST webhook charge\.succeeded$/);
    const webhook = find(spans, "payments", /^POST \/webhooks\/provider$/);
    const relay = find(spans, "payments", /^outbox relay payments\./);
    const publish = find(spans, "payments", /^JetStream publish PAYMENTS$/);
    const inStream = find(spans, "orders", /^JetStream PAYMENTS$/);
    const completion = find(spans, "orders", /^process orders-payments/);

    // The caller's trace was continued: CreateOrder's parent is the kiosk's span.
    expect(createOrder.parentSpanId).toBe(traceparent.split("-")[2]);
    const chain = [createOrder, payment, charge, webhookSent, webhook, relay, publish, inStream, completion];
    for (let i = 1; i < chain.length; i++) {
      expect(causes(spans, chain[i - 1]!, chain[i]!), `${chain[i - 1]!.name} → ${chain[i]!.name}\n${formatTrace(spans)}`).toBe(true);
      expect(chain[i]!.startMs).toBeGreaterThanOrEqual(chain[i - 1]!.startMs);
    }
    expect(causes(spans, createOrder, reserve)).toBe(true);
    // Database statements are child spans of the work that made them.
    expect(spans.some((s) => s.service === "orders" && s.name.startsWith("pg ") && causes(spans, completion, s))).toBe(true);

    // npm run traces prints the latest sale's trace as a tree with timings.
    const { stdout } = await run(process.execPath, ["--import", "tsx", "packages/devstack/src/traces-cli.ts"], { cwd: repoRoot, env: { ...process.env, DEV_SPAN_STORE_URL: store.url } });
    expect(stdout).toContain(`trace ${traceId}`);
    const lines = stdout.split("\n");
    const at = (text: string) => lines.findIndex((l) => l.includes(text));
    for (const text of ["orders: adminkiosk.orders.v1.OrderService/CreateOrder", "provider-sim: POST /v1/charges", "payments: POST /webhooks/provider", "orders: process orders-payments"])
      expect(at(text), `${text} in\n${stdout}`).toBeGreaterThan(0);
    expect(at("orders: process orders-payments")).toBeGreaterThan(at("payments: POST /webhooks/provider"));
    expect(lines[at("orders: adminkiosk.orders.v1.OrderService/CreateOrder")]).toMatch(/\+\s*[\d.]+\s+[\d.]+ ms/);
  });

  it("puts the trace ids on every log line written inside a span", async () => {
    const kiosk = await f.device("trace-kiosk");
    const traceparent = `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`;
    const traceId = traceparent.split("-")[1]!;
    const { order } = await f.ordersAs(kiosk).createOrder(
      { idempotencyKey: `trace-${randomBytes(4).toString("hex")}`, items: [{ sku: "trace-coffee", quantity: 1n }], paymentMethod: "pm_card_visa" },
      { headers: { traceparent } },
    );
    await f.waitFor(kiosk, order!.orderId, [OrderState.COMPLETED]);
    // One query (the trace id) finds the sale's lines in every service that worked on it.
    const linesOf = (output: string[]) => output.filter((l) => l.includes(`"trace_id":"${traceId}"`)).map((l) => JSON.parse(l) as { span_id?: string; msg: string });
    await expect.poll(() => linesOf(f.orders.output).some((l) => l.msg === "rpc"), eventually).toBe(true);
    await expect.poll(() => [f.catalog, f.payments].map((service) => linesOf(service.output).length > 0), eventually).toEqual([true, true]);
    for (const service of [f.orders, f.catalog, f.payments]) {
      const lines = linesOf(service.output);
      expect(lines.length, service.name).toBeGreaterThan(0);
      for (const l of lines) expect(l.span_id).toMatch(/^[0-9a-f]{16}$/);
    }
  });
});

describe("a command", () => {
  let f: FleetFixture;
  beforeAll(async () => {
    f = await startFleet({ name: "trace" });
  });
  afterAll(async () => {
    await f?.stop();
  });

  it("is one trace from fleet's SendCommand through link down the kiosk's stream to the kiosk's result", async () => {
    const operator = (await f.auth.userWithRole(Role.OPERATOR)).accessToken;
    const creds = await f.enroll(["trace-cmd"]);
    const kiosk = f.kiosk(creds.get("trace-cmd")!).onCommand("displayMessage", () => undefined);
    kiosk.start();
    await expect.poll(async () => (await f.fleetClient(KioskService).getKiosk({ kioskId: "trace-cmd" })).kiosk?.status, eventually).toBe(KioskStatus.ONLINE);

    const traceparent = `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`;
    const traceId = traceparent.split("-")[1]!;
    const commands = f.fleetClient(CommandService, operator);
    const { command } = await commands.sendCommand({ kioskId: "trace-cmd", action: { kind: { case: "displayMessage", value: { text: "traced" } } } }, { headers: { traceparent } });
    await expect.poll(async () => (await commands.getCommand({ commandId: command!.commandId })).command?.state, eventually).toBe(CommandState.SUCCEEDED);

    // fleet's and link's spans arrive in batches of each process's own: wait for all of them.
    const required: [string, RegExp][] = [
      ["fleet", /CommandService\/SendCommand$/],
      ["fleet", /^fleet deliver command$/],
      ["link", /^link send command$/],
      ["link", /^kiosk command ack$/],
      ["link", /^kiosk command result$/],
    ];
    const spans = await waitFor("every span of the command's trace", () => {
      const t = store.trace(traceId);
      return required.every(([service, name]) => t.some((s) => s.service === service && name.test(s.name))) ? t : undefined;
    }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; the trace so far:\n${formatTrace(store.trace(traceId))}`);
    });
    const send = find(spans, "fleet", /CommandService\/SendCommand$/);
    const dispatch = find(spans, "fleet", /^fleet deliver command$/);
    const down = find(spans, "link", /^link send command$/);
    const ack = find(spans, "link", /^kiosk command ack$/);
    const result = find(spans, "link", /^kiosk command result$/);
    expect(send.parentSpanId).toBe(traceparent.split("-")[2]);
    for (const [a, b] of [[send, dispatch], [dispatch, down], [down, ack], [down, result]] as const)
      expect(causes(spans, a, b), `${a.name} → ${b.name}\n${formatTrace(spans)}`).toBe(true);
    expect(result.attributes["command.id"]).toBe(command!.commandId);
  });
});

// payments as its callers meet it: a real auth (tokens, enrolled kiosks, the orders
// service's own service token, the only one that creates, confirms and refunds), a real
// payments process on its own database, and the provider simulator as its own process,
// wired to each other the way npm start wires them. Helpers read the simulator's state
// (its charges, refunds and webhook deliveries), steer it, and read payment events
// from JetStream.
import { randomBytes } from "node:crypto";
import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { expect, inject } from "vitest";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { LedgerService, PaymentIntentState, PaymentService, type PaymentIntent } from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import { createDatabase, eventually, freePort, startTestProgram, startTestService, type StartedService } from "@adminkiosk/devstack";
import { bearer, clientFor, freshToken, Role, startAuth, type AuthFixture, type PlatformServiceName } from "../../../test/support/auth.js";

export interface SimCharge {
  id: string;
  reference: string;
  status: string;
  amount_minor: number;
}
export interface SimRefund {
  id: string;
  charge: string;
  reference: string;
  status: string;
  amount_minor: number;
}
export interface SimDelivery {
  event_id: string;
  type: string;
  body: string;
  signature: string;
  last_status: number;
}

export interface PaymentsFixture {
  auth: AuthFixture;
  payments: StartedService;
  sim: StartedService;
  webhookUrl: string;
  webhookSecret: string;
  tokens: { admin: string; operator: string; viewer: string };
  /** Enrolls a kiosk and returns its device credential. */
  enroll(kioskId: string): Promise<string>;
  paymentsAs(token?: string): ReturnType<typeof clientFor<typeof PaymentService>>;
  /** PaymentService as the orders service (its own service token, renewed before it expires). */
  asOrders(): ReturnType<typeof clientFor<typeof PaymentService>>;
  /** PaymentService as another platform service, with that service's own token. */
  asService(name: PlatformServiceName): ReturnType<typeof clientFor<typeof PaymentService>>;
  ledgerAs(token?: string): ReturnType<typeof clientFor<typeof LedgerService>>;
  /** Makes the simulator's next `count` charges behave so. */
  nextCharges(
    behavior: "succeed" | "decline" | "timeout" | "duplicate_webhooks" | "delay_webhook" | "capture_on_void",
    extra?: { count?: number; decline_code?: string; delay_ms?: number; drop_webhook?: boolean },
  ): Promise<void>;
  simCharges(reference: string): Promise<SimCharge[]>;
  simRefunds(chargeId: string): Promise<SimRefund[]>;
  simDeliveries(reference: string): Promise<SimDelivery[]>;
  /** Polls GetPaymentIntent (as `token`) until the intent is in `state`. */
  waitForState(token: string, id: string, state: PaymentIntentState, timeoutMs?: number): Promise<PaymentIntent>;
  /** The events published for an intent so far, waiting until there are at least `count`. */
  events(intentId: string, count: number, timeoutMs?: number): Promise<{ subject: string; data: Uint8Array }[]>;
  /** Fails the test unless every currency's ledger sums to zero. */
  expectLedgerBalanced(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPayments(settings: Record<string, string> = {}): Promise<PaymentsFixture> {
  const infra = inject("infra");
  const auth = await startAuth();
  const apiKey = randomBytes(24).toString("hex");
  const webhookSecret = randomBytes(32).toString("hex");
  const simPort = await freePort();
  const payments = await startTestService("payments", {
    DATABASE_URL: await createDatabase(infra.databaseUrl, "payments"),
    REDIS_URL: auth.redisUrl,
    NATS_URL: infra.natsUrl,
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    PROVIDER_URL: `http://127.0.0.1:${simPort}`,
    PROVIDER_API_KEY: apiKey,
    PROVIDER_WEBHOOK_SECRET: webhookSecret,
    PAYMENT_CONFIRM_TIMEOUT: "5s",
    PROVIDER_TIMEOUT: "3s",
    HEALTH_PROBE_INTERVAL_MS: "300",
    SHUTDOWN_GRACE_MS: "3000",
    ...settings,
  });
  const webhookUrl = `${payments.url}/webhooks/provider`;
  const sim = await startTestProgram(
    "provider-sim",
    "services/payments/src/provider-sim/main.ts",
    "PROVIDER_SIM_PORT",
    { PROVIDER_API_KEY: apiKey, PROVIDER_WEBHOOK_SECRET: webhookSecret, PROVIDER_WEBHOOK_URL: webhookUrl, WEBHOOK_DELAY: "100ms" },
    simPort,
  );
  const nc: NatsConnection = await connect({ servers: infra.natsUrl });
  const admin = await auth.adminToken();
  const tokens = { admin, operator: (await auth.userWithRole(Role.OPERATOR)).accessToken, viewer: (await auth.userWithRole(Role.VIEWER)).accessToken };

  const simCall = async <T>(path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${sim.url}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`simulator ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const paymentsAs = (token?: string) => clientFor(PaymentService, payments.url, token);
  const serviceClients = new Map<PlatformServiceName, ReturnType<typeof paymentsAs>>();
  /** One client per service, sending that service's own token (renewed before it expires). */
  const asService = (name: PlatformServiceName) => {
    let client = serviceClients.get(name);
    if (!client) {
      const token = freshToken(() => auth.serviceToken(name));
      client = createClient(PaymentService, createGrpcTransport({ baseUrl: payments.url, interceptors: [bearer(token)] }));
      serviceClients.set(name, client);
    }
    return client;
  };

  return {
    auth,
    payments,
    sim,
    webhookUrl,
    webhookSecret,
    tokens,
    async enroll(kioskId) {
      const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId });
      return (await auth.client(DeviceService).enrollDevice({ code })).deviceCredential;
    },
    paymentsAs,
    asOrders: () => asService("orders"),
    asService,
    ledgerAs: (token) => clientFor(LedgerService, payments.url, token),
    async nextCharges(behavior, extra = {}) {
      await simCall("/control/next-charges", { behavior, ...extra });
    },
    simCharges: async (reference) => (await simCall<{ data: SimCharge[] }>(`/v1/charges?reference=${reference}`)).data,
    simRefunds: async (chargeId) => (await simCall<{ data: SimRefund[] }>(`/v1/refunds?charge=${chargeId}`)).data,
    simDeliveries: async (reference) => (await simCall<{ data: SimDelivery[] }>(`/control/deliveries?reference=${reference}`)).data,
    async waitForState(token, id, state, timeoutMs = eventually.timeout) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { paymentIntent } = await paymentsAs(token).getPaymentIntent({ paymentIntentId: id });
        if (paymentIntent?.state === state) return paymentIntent;
        if (Date.now() > deadline) {
          throw new Error(`intent ${id} is ${PaymentIntentState[paymentIntent?.state ?? 0]}, not ${PaymentIntentState[state]}, after ${timeoutMs} ms`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async events(intentId, count, timeoutMs = eventually.timeout) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = await readSubject(nc, `payments.intent.${intentId}.>`);
        if (found.length >= count || Date.now() > deadline) return found;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async expectLedgerBalanced() {
      const { totals } = await clientFor(LedgerService, payments.url, admin).getLedgerBalance({});
      for (const t of totals) expect(t.balanceMinor, `ledger total in ${t.currency}`).toBe(0n);
    },
    async stop() {
      await nc?.close();
      await sim?.stop();
      await payments?.stop();
      await auth?.stop();
    },
  };
}

/** Everything in the stream PAYMENTS on `subject` so far (empty until the stream exists). */
async function readSubject(nc: NatsConnection, subject: string): Promise<{ subject: string; data: Uint8Array }[]> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info("PAYMENTS");
  } catch {
    return [];
  }
  const info = await jsm.consumers.add("PAYMENTS", { filter_subject: subject, ack_policy: AckPolicy.None, deliver_policy: "all", inactive_threshold: 10_000_000_000 });
  const consumer = await jetstream(nc).consumers.get("PAYMENTS", info.name);
  const out: { subject: string; data: Uint8Array }[] = [];
  for (let pending = info.num_pending; pending > 0; pending--) {
    const msg = await consumer.next({ expires: 2_000 });
    if (!msg) break;
    out.push({ subject: msg.subject, data: msg.data });
  }
  await jsm.consumers.delete("PAYMENTS", info.name).catch(() => {});
  return out;
}

export function decode<D extends DescMessage>(schema: D, data: Uint8Array): MessageShape<D> {
  return fromBinary(schema, data);
}

// A real auth and customers process (their own databases and Redis DB), enrolled kiosk devices,
// and helpers that publish orders' and catalog's events on JetStream as those services would
// (through their outboxes: protobuf bodies, the row id as Nats-Msg-Id).
import { randomUUID } from "node:crypto";
import { create, toBinary, type DescService } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { inject } from "vitest";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { MemberService } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { OrderCompletedEventSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/events_pb";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { createDatabase, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { ensureStream, ordersSubjects } from "@adminkiosk/runtime";
import { clientFor, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";

export interface CustomersFixture {
  auth: AuthFixture;
  customers: StartedService;
  databaseUrl: string;
  tokens: { admin: string; operator: string; viewer: string };
  /** A device credential for `kioskId` (enrolled once, then cached). */
  device(kioskId: string): Promise<string>;
  as<S extends DescService>(service: S, token: string): Client<S>;
  /** Publishes orders.order.<id>.completed as orders would; `msgId` defaults to a fresh outbox row id. */
  publishCompleted(order: { orderId: string; kioskId: string; totalMinor: bigint; lines?: { sku: string; quantity: bigint; totalMinor: bigint }[] }, msgId?: string): Promise<void>;
  /** Stops customers and starts it again on the same database (`env` added). */
  restart(env?: Record<string, string>): Promise<void>;
  nats(): Promise<NatsConnection>;
  stop(): Promise<void>;
}

export const ordersConsumer = `customers-orders-test-${process.pid}-${Date.now()}`;

export async function startCustomers(settings: Record<string, string> = {}, auth?: AuthFixture): Promise<CustomersFixture> {
  const infra = inject("infra");
  const ownAuth = !auth;
  const a = auth ?? (await startAuth());
  const databaseUrl = await createDatabase(infra.databaseUrl, "customers");
  const env = {
    REDIS_URL: a.redisUrl,
    NATS_URL: infra.natsUrl,
    AUTH_JWKS_URL: `${a.service.url}/.well-known/jwks.json`,
    DATABASE_URL: databaseUrl,
    ORDERS_EVENTS_CONSUMER: ordersConsumer,
    CATALOG_EVENTS_CONSUMER: `customers-catalog-test-${process.pid}-${Date.now()}`,
    FLEET_EVENTS_CONSUMER: `customers-fleet-test-${process.pid}-${Date.now()}`,
    EVENTS_SINCE_START: "true",
    SHUTDOWN_GRACE_MS: "2000",
    HEALTH_PROBE_INTERVAL_MS: "300",
    ...settings,
  };
  let customers = await startTestService("customers", env);
  const tokens = {
    admin: await a.adminToken(),
    operator: (await a.userWithRole(Role.OPERATOR)).accessToken,
    viewer: (await a.userWithRole(Role.VIEWER)).accessToken,
  };
  const ready = async () => {
    // A fresh process fetches auth's JWKS on its first authenticated call; go on once that works.
    const client = clientFor(MemberService, customers.url, tokens.operator);
    await waitFor("customers to verify tokens", async () => (await client.searchMembers({ pageSize: 1 }), true), {
      timeout: 60_000,
      interval: 300,
      retry: (err) => ConnectError.from(err).code === Code.Unavailable,
    });
  };
  await ready();
  const devices = new Map<string, string>();
  let nc: NatsConnection | undefined;
  const nats = async () => (nc ??= await connect({ servers: infra.natsUrl }));
  return {
    auth: a,
    get customers() {
      return customers;
    },
    databaseUrl,
    tokens,
    async device(kioskId) {
      const known = devices.get(kioskId);
      if (known) return known;
      const { code } = await a.client(DeviceService, tokens.admin).createEnrollmentCode({ kioskId });
      const credential = (await a.client(DeviceService).enrollDevice({ code })).deviceCredential;
      devices.set(kioskId, credential);
      return credential;
    },
    as: (service, token) => clientFor(service, customers.url, token),
    async publishCompleted(o, msgId = randomUUID()) {
      const conn = await nats();
      await ensureStream(conn, ordersSubjects.stream);
      const lines = (o.lines ?? [{ sku: "water", quantity: 1n, totalMinor: o.totalMinor }]).map((l, i) => ({ lineNumber: i + 1, sku: l.sku, quantity: l.quantity, unitPriceMinor: l.totalMinor / l.quantity, totalMinor: l.totalMinor }));
      const now = timestampFromDate(new Date());
      const event = create(OrderCompletedEventSchema, {
        order: { orderId: o.orderId, kioskId: o.kioskId, state: OrderState.COMPLETED, lines, totalMinor: o.totalMinor, currency: "EUR", completeTime: now },
        time: now,
      });
      const h = headers();
      h.set("Nats-Msg-Id", msgId);
      await jetstream(conn).publish(ordersSubjects.order(o.orderId, "completed"), toBinary(OrderCompletedEventSchema, event), { headers: h });
    },
    async restart(extra = {}) {
      await customers.stop();
      customers = await startTestService("customers", { ...env, ...extra });
      await ready();
    },
    nats,
    async stop() {
      await nc?.close();
      await customers.stop();
      if (ownAuth) await a.stop();
    },
  };
}

/** Deletes a durable consumer at JetStream (so a restarted process creates it again from the stream's start). */
export async function deleteConsumer(nc: NatsConnection, stream: string, durable: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.delete(stream, durable);
}

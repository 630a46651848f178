// A real auth, link, fleet (the kiosk registry: groups and tags) and notifications process
// (on their own databases and Redis DB), a
// real SMTP server (the dev mailbox) notifications sends to, and helpers to act as a
// kiosk on link or to publish link's and ai's events on JetStream directly.
import { create, toBinary, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { inject } from "vitest";
import { StockoutPredictedEventSchema } from "@adminkiosk/proto/adminkiosk/ai/v1/events_pb";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskDisconnectedEventSchema, KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus, LinkService, type ConnectRequestSchema } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { RuleService } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { createDatabase, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { aiSubjects, ensureStream, linkSubjects } from "@adminkiosk/runtime";
import { bearer, clientFor, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";
import { startMailbox, type Mailbox } from "../src/dev-mailbox/mailbox.js";

export const webhookSecret = "test-webhook-secret-0123456789";

export interface NotificationsFixture {
  auth: AuthFixture;
  link: StartedService;
  fleet: StartedService;
  notifications: StartedService;
  mailbox: Mailbox;
  tokens: { admin: string; operator: string; viewer: string };
  as<S extends DescService>(service: S, token: string): Client<S>;
  /** A kiosk's raw stream to link: hello, then whatever the test sends (nothing: link finds it silent). */
  kiosk(kioskId: string): Promise<{ send(m: MessageInitShape<typeof ConnectRequestSchema>): void; close(): void; ended: Promise<unknown> }>;
  /** Publishes link's events as link would (for storms too large to connect). */
  publishDisconnected(kioskId: string, reason?: string): Promise<void>;
  publishTelemetry(kioskId: string, sample: { paperLevelPercent?: number; printer?: DeviceStatus }): Promise<void>;
  /** Publishes ai's ai.stockout.<kiosk>.predicted | cleared as ai would (through its outbox, on stream AI). */
  publishStockout(kioskId: string, sku: string, kind: "predicted" | "cleared", probability: number): Promise<void>;
  stop(): Promise<void>;
}

/** An async iterable a test pushes a kiosk's messages into. */
function outbox<T>() {
  const items: T[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  return {
    push(item: T) {
      items.push(item);
      wake?.();
    },
    close() {
      closed = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = items.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (closed) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    },
  };
}

/**
 * `natsUrl`: a NATS of the test file's own instead of the run's shared one (for tests about
 * what every process of a service announces, which other files' processes would also say).
 * `link`: link's settings over the fixture's (e.g. a heartbeat interval the kiosk SDK's client keeps).
 */
export async function startNotifications(settings: Record<string, string> = {}, options: { natsUrl?: string; link?: Record<string, string> } = {}): Promise<NotificationsFixture> {
  const infra = { ...inject("infra"), ...(options.natsUrl ? { natsUrl: options.natsUrl } : {}) };
  const auth = await startAuth();
  const mailbox = await startMailbox();
  const shared = { REDIS_URL: auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`, SHUTDOWN_GRACE_MS: "2000" };
  const [link, fleet, notifications] = await Promise.all([
    startTestService("link", { ...shared, LINK_REPLICA_ID: `link-notifications-${process.pid}`, SILENT_TIMEOUT_SECONDS: "2", HELLO_TIMEOUT_MS: "2000", ...options.link }),
    createDatabase(infra.databaseUrl, "fleet").then((db) =>
      startTestService("fleet", { ...shared, DATABASE_URL: db, AUTH_URL: auth.service.url, LINK_EVENTS_CONSUMER: `fleet-notifications-${process.pid}`, LINK_EVENTS_SINCE_START: "true" }),
    ),
    createDatabase(infra.databaseUrl, "notifications").then((db) =>
      startTestService("notifications", {
        ...shared,
        DATABASE_URL: db,
        SMTP_URL: `smtp://127.0.0.1:${mailbox.smtpPort}`,
        DEV_MAILBOX_URL: mailbox.httpUrl,
        WEBHOOK_SECRETS: `hooks=${webhookSecret}`,
        LINK_EVENTS_CONSUMER: `notifications-test-${process.pid}-${Date.now()}`,
        LINK_EVENTS_SINCE_START: "true",
        FLEET_EVENTS_CONSUMER: `notifications-fleet-test-${process.pid}-${Date.now()}`,
        FLEET_EVENTS_SINCE_START: "true",
        AI_EVENTS_CONSUMER: `notifications-ai-test-${process.pid}-${Date.now()}`,
        AI_EVENTS_SINCE_START: "true",
        GROUP_WAIT: "1s",
        GROUP_INTERVAL: "1s",
        SWEEP_MS: "200",
        DELIVERY_MAX_ATTEMPTS: "4",
        DELIVERY_RETRY_INITIAL: "100ms",
        DELIVERY_RETRY_MAX: "400ms",
        DELIVERY_TIMEOUT: "3s",
        HEALTH_PROBE_INTERVAL_MS: "300",
        ...settings,
      }),
    ),
  ]);
  const tokens = {
    admin: await auth.adminToken(),
    operator: (await auth.userWithRole(Role.OPERATOR)).accessToken,
    viewer: (await auth.userWithRole(Role.VIEWER)).accessToken,
  };
  // A fresh process fetches auth's JWKS on its first authenticated call; start once that works.
  const rulesClient = clientFor(RuleService, notifications.url, tokens.admin);
  await waitFor("notifications to verify tokens", async () => (await rulesClient.listRules({ pageSize: 1 }), true), {
    timeout: 60_000,
    interval: 500,
    retry: (err) => ConnectError.from(err).code === Code.Unavailable,
  });
  let nc: NatsConnection | undefined;
  const js = async () => jetstream((nc ??= await connect({ servers: infra.natsUrl })));
  const streams: { close(): void }[] = [];
  return {
    auth,
    link,
    fleet,
    notifications,
    mailbox,
    tokens,
    as: (service, token) => clientFor(service, notifications.url, token),
    async kiosk(kioskId) {
      const { code } = await auth.client(DeviceService, tokens.admin).createEnrollmentCode({ kioskId });
      const credential = (await auth.client(DeviceService).enrollDevice({ code })).deviceCredential;
      const up = outbox<MessageInitShape<typeof ConnectRequestSchema>>();
      const client = createClient(LinkService, createGrpcTransport({ baseUrl: link.url, interceptors: [bearer(credential)] }));
      up.push({ body: { case: "hello", value: { firmwareVersion: "1.0.0", appVersion: "1.0.0" } } });
      const down = client.connect(up)[Symbol.asyncIterator]();
      const first = await down.next();
      if (first.done || first.value.body.case !== "welcome") throw new Error(`${kioskId}: no welcome`);
      const ended = (async () => {
        try {
          for (let r = await down.next(); !r.done; r = await down.next());
        } catch (err) {
          return err;
        }
      })();
      const stream = { send: (m: MessageInitShape<typeof ConnectRequestSchema>) => up.push(m), close: () => up.close(), ended };
      streams.push(stream);
      return stream;
    },
    async publishDisconnected(kioskId, reason = "error") {
      const event = create(KioskDisconnectedEventSchema, { kioskId, linkReplica: "test", reason, time: timestampFromDate(new Date()) });
      await (await js()).publish(linkSubjects.disconnected(kioskId), toBinary(KioskDisconnectedEventSchema, event));
    },
    async publishTelemetry(kioskId, sample) {
      const now = new Date();
      const event = create(KioskTelemetryEventSchema, {
        kioskId,
        receiveTime: timestampFromDate(now),
        batch: { batchId: `b-${now.getTime()}-${Math.random()}`, samples: [{ sampleId: `s-${now.getTime()}-${Math.random()}`, time: timestampFromDate(now), paperLevelPercent: sample.paperLevelPercent ?? 80, printer: sample.printer ?? DeviceStatus.OK, scanner: DeviceStatus.OK }] },
      });
      await (await js()).publish(linkSubjects.telemetry(kioskId), toBinary(KioskTelemetryEventSchema, event));
    },
    async publishStockout(kioskId, sku, kind, probability) {
      const js$ = await js();
      await ensureStream(nc!, aiSubjects.stream);
      const event = create(StockoutPredictedEventSchema, {
        risk: { kioskId, sku, available: 3n, stockoutProbability: probability, stockoutExpected: kind === "predicted", stockoutHours: kind === "predicted" ? 20 : 0, modelVersion: 1n },
        threshold: 0.5,
        visitIntervalHours: 72,
        time: timestampFromDate(new Date()),
      });
      const subject = kind === "predicted" ? aiSubjects.stockoutPredicted(kioskId) : aiSubjects.stockoutCleared(kioskId);
      await js$.publish(subject, toBinary(StockoutPredictedEventSchema, event));
    },
    async stop() {
      for (const s of streams) s.close();
      await nc?.close();
      await Promise.all([notifications.stop(), link.stop(), fleet.stop()]);
      await auth.stop();
      await mailbox.close();
    },
  };
}

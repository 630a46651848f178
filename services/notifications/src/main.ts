// notifications: wire-up only. Reads config, runs migrations, starts the consumers of
// link's events (stream LINK), fleet's kiosk registry events (stream FLEET) and ai's stock-out
// predictions (stream AI), the other rule kinds' and buyers' receipts' consumers (conditions.ts:
// link's telemetry, streams CATALOG, PAYMENTS, ORDERS, AI's silent failures, OPS's service
// health announcements, CUSTOMERS' calls for help and back-in-stock messages), the channels
// (email, webhook, SMS, Web Push), the sweeper (fire, group, deliver), the alert feed for
// WatchAlerts, the outbox relay (stream NOTIFICATIONS) and the server.
import { fileURLToPath } from "node:url";
import {
  aiSubjects,
  closeNats,
  connectNats,
  createLogger,
  createPool,
  createRedis,
  createTokenVerifier,
  ensureStream,
  fleetSubjects,
  linkSubjects,
  loadConfig,
  migrate,
  notificationsSubjects,
  onShutdownSignal,
  redisRevocationCheck,
  remoteKeys,
  runService,
  serviceCredentials,
  serviceTransport,
  startConsumer,
  startOutboxRelay,
  startService,
} from "@adminkiosk/runtime";
import { createClient } from "@connectrpc/connect";
import { OrderService } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { PushService } from "@adminkiosk/proto/adminkiosk/notifications/v1/push_pb";
import { ReceiptService } from "@adminkiosk/proto/adminkiosk/notifications/v1/receipts_pb";
import { emailChannel, webhookChannel, type Channel } from "./channels.js";
import { startConditions } from "./conditions.js";
import { pushRoutes, webPushChannel } from "./push.js";
import { configureReviewLinks, receiptRoutes } from "./receipts.js";
import { smsChannel } from "./sms.js";
import { notificationsConfigShape } from "./config.js";
import { applyAiEvent, applyFleetEvents, applyLinkEvents } from "./evaluate.js";
import { createNotificationsMetrics } from "./metrics.js";
import { policyRoutes, policyServices } from "./policy-server.js";
import { notificationsRoutes, notificationsServices } from "./server.js";
import { startSweeper } from "./sweeper.js";
import { startAlertFeed } from "./watch.js";

const migrations = fileURLToPath(new URL("../migrations", import.meta.url));

async function main() {
  const config = loadConfig(notificationsConfigShape);
  const log = createLogger("notifications", config.LOG_LEVEL);
  await migrate(config.DATABASE_URL, "notifications", migrations, log, { consumerTables: true });
  const pool = createPool(config.DATABASE_URL, "notifications", log);
  const redis = createRedis(config.REDIS_URL, log);
  const nats = connectNats(config.NATS_URL, "notifications", log);
  const outbox = startOutboxRelay({ pool, nats, log, stream: notificationsSubjects.stream, batchSize: 500 });
  const linkEvents = startConsumer({
    pool,
    nats,
    log,
    stream: linkSubjects.stream.name,
    durable: config.LINK_EVENTS_CONSUMER,
    filter: linkSubjects.allKioskEvents,
    since: config.LINK_EVENTS_SINCE_START ? new Date() : undefined,
    // Batches of up to 250 in one transaction each, applied set-wise (a storm of disconnections).
    concurrency: 2,
    batchSize: 250,
    applyBatch: applyLinkEvents,
  });
  // Kiosks' labels, in order (one batch at a time: an older event changes nothing newer anyway).
  // The stream is fleet's; made here too (same definition) so this consumer starts at once
  // whichever service starts first.
  void nats.then((nc) => ensureStream(nc, fleetSubjects.stream)).catch((err: unknown) => log.warn({ err }, "could not create stream FLEET yet; its consumer retries"));
  const fleetEvents = startConsumer({
    pool,
    nats,
    log,
    stream: fleetSubjects.stream.name,
    durable: config.FLEET_EVENTS_CONSUMER,
    filter: fleetSubjects.allKiosks,
    since: config.FLEET_EVENTS_SINCE_START ? new Date() : undefined,
    batchSize: 500,
    applyBatch: applyFleetEvents,
  });
  // ai's stock-out predictions and clearances, in order (stream AI is ai's; made here too, as FLEET).
  void nats.then((nc) => ensureStream(nc, aiSubjects.stream)).catch((err: unknown) => log.warn({ err }, "could not create stream AI yet; its consumer retries"));
  const aiEvents = startConsumer({
    pool,
    nats,
    log,
    stream: aiSubjects.stream.name,
    durable: config.AI_EVENTS_CONSUMER,
    filter: aiSubjects.allStockouts,
    since: config.AI_EVENTS_SINCE_START ? new Date() : undefined,
    apply: applyAiEvent,
  });
  // link's telemetry, catalog's, payments', orders' and ai's silent-failure events: the other rule kinds and buyers' receipts.
  const conditions = startConditions({
    pool,
    nats,
    log,
    consumers: {
      telemetry: config.TELEMETRY_EVENTS_CONSUMER,
      catalog: config.CATALOG_EVENTS_CONSUMER,
      payments: config.PAYMENTS_EVENTS_CONSUMER,
      orders: config.ORDERS_EVENTS_CONSUMER,
      silentFailures: config.SILENT_FAILURE_EVENTS_CONSUMER,
      serviceHealth: config.SERVICE_HEALTH_CONSUMER,
      customers: config.CUSTOMERS_EVENTS_CONSUMER,
    },
    sinceStart: config.COMMERCE_EVENTS_SINCE_START,
    upkeepMs: Math.max(config.SWEEP_MS, 1_000),
  });
  const metrics = createNotificationsMetrics();
  const { SMS_PROVIDER_URL, SMS_API_KEY, WEB_PUSH_VAPID_PUBLIC_KEY, WEB_PUSH_VAPID_PRIVATE_KEY, ORDERS_URL, AUTH_URL, SERVICE_SECRET } = config;
  const sms = SMS_PROVIDER_URL && SMS_API_KEY ? smsChannel({ url: SMS_PROVIDER_URL, apiKey: SMS_API_KEY, from: config.SMS_FROM, timeoutMs: config.DELIVERY_TIMEOUT }) : undefined;
  if (!sms) log.warn("SMS_PROVIDER_URL or SMS_API_KEY is not set: rules cannot send SMS");
  const vapid = WEB_PUSH_VAPID_PUBLIC_KEY && WEB_PUSH_VAPID_PRIVATE_KEY ? { publicKey: WEB_PUSH_VAPID_PUBLIC_KEY, privateKey: WEB_PUSH_VAPID_PRIVATE_KEY, subject: config.WEB_PUSH_SUBJECT } : undefined;
  if (!vapid) log.warn("WEB_PUSH_VAPID_PUBLIC_KEY or WEB_PUSH_VAPID_PRIVATE_KEY is not set: no Web Push");
  // Buyers' receipts read the order from orders as notifications itself (its service token).
  const orders = ORDERS_URL && AUTH_URL && SERVICE_SECRET ? createClient(OrderService, serviceTransport(ORDERS_URL, serviceCredentials({ authUrl: AUTH_URL, service: "notifications", secret: SERVICE_SECRET }), { upstream: "orders" })) : undefined;
  if (!orders) log.warn("ORDERS_URL, AUTH_URL or SERVICE_SECRET is not set: kiosks cannot ask for receipts");
  const { REVIEW_LINK_SECRET, REVIEW_LINK_BASE_URL } = config;
  configureReviewLinks(REVIEW_LINK_SECRET && REVIEW_LINK_BASE_URL ? { secret: REVIEW_LINK_SECRET, baseUrl: REVIEW_LINK_BASE_URL, ttlMs: config.REVIEW_LINK_TTL } : undefined);
  if (!REVIEW_LINK_SECRET || !REVIEW_LINK_BASE_URL) log.info("REVIEW_LINK_SECRET or REVIEW_LINK_BASE_URL is not set: receipts carry no review link");
  const channels: Channel[] = [
    emailChannel(config.SMTP_URL, config.MAIL_FROM, config.DELIVERY_TIMEOUT),
    webhookChannel(config.WEBHOOK_SECRETS, config.DELIVERY_TIMEOUT),
    ...(sms ? [sms] : []),
    ...(vapid ? [webPushChannel(pool, vapid, config.DELIVERY_TIMEOUT)] : []),
  ];
  const available = { sms: !!sms, webPush: !!vapid };
  const sweeper = startSweeper({
    pool,
    log,
    channels,
    metrics,
    sweepMs: config.SWEEP_MS,
    groupWaitMs: config.GROUP_WAIT,
    groupIntervalMs: config.GROUP_INTERVAL,
    maxAttempts: config.DELIVERY_MAX_ATTEMPTS,
    retry: { initialMs: config.DELIVERY_RETRY_INITIAL, maxMs: config.DELIVERY_RETRY_MAX, jitter: 0.2 },
    leaseMs: config.DELIVERY_TIMEOUT * 3,
  });
  const feed = startAlertFeed(nats, log);

  const service = await startService(
    {
      name: "notifications",
      nats,
      log,
      config,
      services: [...notificationsServices, ...policyServices, ReceiptService, PushService],
      routes: (router) => {
        notificationsRoutes({ pool, secretNames: new Set(config.WEBHOOK_SECRETS.keys()), feed, metrics, available, devMailboxUrl: config.DEV_MAILBOX_URL })(router);
        receiptRoutes({ pool, orders, ttlMs: config.RECEIPT_REQUEST_TTL })(router);
        pushRoutes({ pool, vapid })(router);
        policyRoutes({ pool, secretNames: new Set(config.WEBHOOK_SECRETS.keys()), available })(router);
      },
      verifyToken: createTokenVerifier({ keys: remoteKeys(config.AUTH_JWKS_URL), isRevoked: redisRevocationCheck(redis) }),
      probes: [
        { name: "postgres", check: () => pool.query("SELECT 1") },
        { name: "redis", check: () => redis.ping() },
      ],
      consumers: [linkEvents, fleetEvents, aiEvents, ...conditions.consumers],
    },
    config.HOST,
    config.NOTIFICATIONS_PORT,
  );
  metrics.register(service.metrics, pool);

  onShutdownSignal(log, async () => {
    await service.close();
    await sweeper.stop();
    await feed.stop();
    await linkEvents.stop();
    await fleetEvents.stop();
    await aiEvents.stop();
    await conditions.stop();
    await outbox.stop();
    for (const c of channels) c.close?.();
    await Promise.allSettled([redis.quit(), closeNats(nats)]);
    await pool.end();
  });
}

runService("notifications", main);

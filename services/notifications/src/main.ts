// notifications: wire-up only. Reads config, runs migrations, starts the consumers of
// link's events (stream LINK), fleet's kiosk registry events (stream FLEET) and ai's stock-out
// predictions (stream AI), the sweeper (fire, group, deliver), the alert feed for
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
  startConsumer,
  startOutboxRelay,
  startService,
} from "@adminkiosk/runtime";
import { emailChannel, webhookChannel } from "./channels.js";
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
  const metrics = createNotificationsMetrics();
  const channels = [emailChannel(config.SMTP_URL, config.MAIL_FROM, config.DELIVERY_TIMEOUT), webhookChannel(config.WEBHOOK_SECRETS, config.DELIVERY_TIMEOUT)];
  const sweeper = startSweeper({
    pool,
    log,
    channels,
    metrics,
    sweepMs: config.SWEEP_MS,
    groupWaitMs: config.GROUP_WAIT,
    maxAttempts: config.DELIVERY_MAX_ATTEMPTS,
    retry: { initialMs: config.DELIVERY_RETRY_INITIAL, maxMs: config.DELIVERY_RETRY_MAX, jitter: 0.2 },
    leaseMs: config.DELIVERY_TIMEOUT * 3,
  });
  const feed = startAlertFeed(nats, log);

  const service = await startService(
    {
      name: "notifications",
      log,
      config,
      services: [...notificationsServices, ...policyServices],
      routes: (router) => {
        notificationsRoutes({ pool, secretNames: new Set(config.WEBHOOK_SECRETS.keys()), feed, metrics, devMailboxUrl: config.DEV_MAILBOX_URL })(router);
        policyRoutes({ pool, secretNames: new Set(config.WEBHOOK_SECRETS.keys()) })(router);
      },
      verifyToken: createTokenVerifier({ keys: remoteKeys(config.AUTH_JWKS_URL), isRevoked: redisRevocationCheck(redis) }),
      probes: [
        { name: "postgres", check: () => pool.query("SELECT 1") },
        { name: "redis", check: () => redis.ping() },
      ],
      consumers: [linkEvents, fleetEvents, aiEvents],
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
    await outbox.stop();
    for (const c of channels) c.close?.();
    await Promise.allSettled([redis.quit(), closeNats(nats)]);
    await pool.end();
  });
}

runService("notifications", main);

// fleet: wire-up only. Reads config, runs migrations, starts the outbox relay (stream
// FLEET: the kiosk registry's events), the link consumer, the dispatcher, jobs and the server.
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import {
  closeNats,
  connectNats,
  createLogger,
  createPool,
  createRedis,
  createTokenVerifier,
  fleetSubjects,
  loadConfig,
  migrate,
  onShutdownSignal,
  redisRevocationCheck,
  remoteKeys,
  runService,
  serviceTransport,
  startOutboxRelay,
  startService,
} from "@adminkiosk/runtime";
import { createChangeFeed } from "./changes.js";
import { fleetConfigShape } from "./config.js";
import { startDispatcher } from "./dispatch.js";
import { consumeLinkEvents } from "./events.js";
import { startJobRunner } from "./jobs.js";
import { startPresenceSweep } from "./presence-sweep.js";
import { startRolloutEngine } from "./rollouts/index.js";
import { startEventBlackouts } from "./rollouts/blackouts.js";
import { createGateForecasts } from "./rollouts/forecast.js";
import { createAutoWindows, forecastClient } from "./rollouts/windows.js";
import { startAlertsProjection } from "./open-alerts.js";
import { startSalesProjection } from "./sales.js";
import { startStockProjection } from "./stock.js";
import { fleetRoutes, fleetServices } from "./server.js";
import { artifactRoutes, registerReleaseMetrics, releasesFromConfig } from "./releases/wire.js";
import { startTelemetryStore } from "./telemetry.js";
import { fleetStatusGauge } from "./status-metrics.js";

const migrations = fileURLToPath(new URL("../migrations", import.meta.url));

async function main() {
  const config = loadConfig(fleetConfigShape);
  const log = createLogger("fleet", config.LOG_LEVEL);
  await migrate(config.DATABASE_URL, "fleet", migrations, log, { consumerTables: true });
  const pool = createPool(config.DATABASE_URL, "fleet", log);
  const redis = createRedis(config.REDIS_URL, log);
  // Deleting a kiosk revokes its device as the admin who deleted it (auth judges the
  // person), so calls carry the caller's authorization; fleet has no service identity.
  const authDevices = createClient(DeviceService, serviceTransport(config.AUTH_URL, undefined, { upstream: "auth" }));
  // AUTO rollout windows: each kiosk's quietest hours from ai's forecast, asked as fleet itself.
  // The same client holds rollout gates to ai's forecast (sales_vs_forecast).
  const forecasts = forecastClient({ aiUrl: config.AI_URL, authUrl: config.AUTH_URL, secret: config.SERVICE_SECRET });
  const factsBucketMs = config.FLEET_FACTS_BUCKET_SECONDS * 1000;
  const autoWindows = createAutoWindows({
    client: forecasts,
    aiUrl: config.AI_URL,
    authUrl: config.AUTH_URL,
    secret: config.SERVICE_SECRET,
    sku: config.ROLLOUT_AUTO_SKU,
    maxForecasts: config.ROLLOUT_AUTO_MAX_FORECASTS,
    hours: config.ROLLOUT_AUTO_WINDOW_HOURS,
    log,
  });
  // Ticketed events keep rollouts' installs away from kiosks nearby (rollouts/blackouts.ts), read from catalog as fleet itself.
  const eventBlackouts =
    config.CATALOG_URL && config.SERVICE_SECRET
      ? startEventBlackouts({
          pool,
          catalogUrl: config.CATALOG_URL,
          authUrl: config.AUTH_URL,
          secret: config.SERVICE_SECRET,
          settings: {
            radiusKm: config.ROLLOUT_EVENT_RADIUS_KM,
            beforeMs: config.ROLLOUT_EVENT_BEFORE_HOURS * 3_600_000,
            afterMs: config.ROLLOUT_EVENT_AFTER_HOURS * 3_600_000,
            maxAgeMs: config.ROLLOUT_EVENTS_MAX_AGE_MS,
          },
          refreshMs: config.ROLLOUT_EVENTS_REFRESH_MS,
          log,
        })
      : undefined;
  if (!eventBlackouts) log.warn("CATALOG_URL or SERVICE_SECRET is not set: rollouts do not check ticketed events nearby");
  const nats = connectNats(config.NATS_URL, "fleet", log);
  const changes = createChangeFeed(nats, log);
  const outbox = startOutboxRelay({ pool, nats, log, stream: fleetSubjects.stream });
  const telemetry = startTelemetryStore(pool, config.TELEMETRY_RETENTION_DAYS, log);
  const dispatcher = startDispatcher({
    pool,
    nats,
    changes,
    log,
    resendAfterMs: config.COMMAND_RESEND_MS,
    sweepMs: config.COMMAND_SWEEP_MS,
    deliverTimeoutMs: config.DELIVER_TIMEOUT_MS,
  });
  const linkEvents = consumeLinkEvents({
    pool,
    nats,
    durable: config.LINK_EVENTS_CONSUMER,
    since: config.LINK_EVENTS_SINCE_START ? new Date() : undefined,
    telemetry,
    changes,
    onReconnected: (ids) => dispatcher.kick(ids, true),
    factsBucketMs,
    log,
  });
  const sales = startSalesProjection({ pool, nats, log, durable: config.ORDERS_EVENTS_CONSUMER, facts: { bucketMs: factsBucketMs, forecastSku: config.ROLLOUT_AUTO_SKU } });
  const stock = startStockProjection({ pool, nats, log, durable: config.CATALOG_EVENTS_CONSUMER });
  const openAlerts = startAlertsProjection({ pool, nats, log, durable: config.NOTIFICATIONS_EVENTS_CONSUMER });
  const jobs = startJobRunner({ pool, dispatcher, changes, tickMs: config.JOB_TICK_MS, log });
  const sweep = startPresenceSweep(pool, redis, config.PRESENCE_SWEEP_MS, changes, log);
  const releases = releasesFromConfig(config, log);
  const verifyToken = createTokenVerifier({ keys: remoteKeys(config.AUTH_JWKS_URL), isRevoked: redisRevocationCheck(redis) });
  const gates = {
    bucketMs: factsBucketMs,
    forecasts: forecasts && config.ROLLOUT_GATE_FORECAST_KIOSKS > 0 ? createGateForecasts({ client: forecasts, sku: config.ROLLOUT_AUTO_SKU, log }) : undefined,
    forecastKiosks: config.ROLLOUT_GATE_FORECAST_KIOSKS,
  };
  const rollouts = startRolloutEngine({ pool, dispatcher, changes, log, gates, tickMs: config.ROLLOUT_TICK_MS, installTtlMs: config.ROLLOUT_INSTALL_TTL_MS, events: eventBlackouts?.settings });

  const service = await startService(
    {
      name: "fleet",
      nats,
      log,
      config,
      services: fleetServices,
      routes: fleetRoutes({ pool, authDevices, changes, dispatcher, telemetry, bulkApprovalOver: config.BULK_APPROVAL_OVER, releases, autoWindows, eventBlackouts: eventBlackouts?.settings }),
      consumers: [linkEvents.consumer, sales.consumer, stock.consumer, openAlerts.consumer],
      verifyToken,
      // Release artifacts: PUT /v1/artifacts, GET /v1/artifacts/<sha256> (releases/http.ts).
      httpPrefixRoutes: artifactRoutes({ pool, store: releases.store, verify: verifyToken, maxBytes: config.FLEET_ARTIFACT_MAX_BYTES, log }),
      probes: [
        { name: "postgres", check: () => pool.query("SELECT 1") },
        { name: "redis", check: () => redis.ping() },
      ],
    },
    config.HOST,
    config.FLEET_PORT,
  );

  dispatcher.registerMetrics(service.metrics);
  linkEvents.registerMetrics(service.metrics);
  service.metrics.registerMetric(fleetStatusGauge(pool, log));
  registerReleaseMetrics(service.metrics);

  onShutdownSignal(log, async () => {
    await service.close();
    sweep.stop();
    jobs.stop();
    rollouts.stop();
    eventBlackouts?.stop();
    telemetry.stop();
    await linkEvents.stop();
    await sales.stop();
    await stock.stop();
    await openAlerts.stop();
    await dispatcher.stop();
    await outbox.stop();
    changes.close();
    await Promise.allSettled([redis.quit(), closeNats(nats)]);
    await pool.end();
  });
}

runService("fleet", main);

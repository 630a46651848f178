// ai: wire-up only. Reads config, runs migrations, loads the serving model version (if any),
// starts the server, the consumers of completed orders (stream ORDERS), of kiosks'
// telemetry (stream LINK) and of moderated reviews (stream CUSTOMERS), the silent-failure pass and the retraining scheduler.
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { InventoryService, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import {
  aiSubjects,
  closeNats,
  connectNats,
  createLogger,
  createPool,
  createRedis,
  createTokenVerifier,
  loadConfig,
  migrate,
  onShutdownSignal,
  redisRevocationCheck,
  remoteKeys,
  runService,
  serviceCredentials,
  serviceTransport,
  startOutboxRelay,
  startService,
} from "@adminkiosk/runtime";
import { aiConfigShape } from "./config.js";
import { startTelemetryConsumer } from "./health.js";
import { createLifecycle } from "./lifecycle.js";
import { maintenanceRoutes, maintenanceServices, registerMaintenanceMetrics } from "./maintenance-server.js";
import { createAiMetrics } from "./metrics.js";
import { startOrdersConsumer } from "./orders.js";
import { startReviewConsumer } from "./ratings.js";
import { startBasketPruner } from "./recommend.js";
import { recommendationRoutes, recommendationServices } from "./recommend-server.js";
import { keepProductIndex } from "./search.js";
import { aiRoutes, aiServices } from "./server.js";
import { startScheduler } from "./schedule.js";
import { startSilentSweeper } from "./silent.js";
import { startStockSweeper } from "./stock.js";

const migrations = fileURLToPath(new URL("../migrations", import.meta.url));

async function main() {
  const config = loadConfig(aiConfigShape);
  const log = createLogger("ai", config.LOG_LEVEL);
  await migrate(config.DATABASE_URL, "ai", migrations, log, { consumerTables: true });
  const pool = createPool(config.DATABASE_URL, "ai", log);
  const redis = createRedis(config.REDIS_URL, log);
  const nats = connectNats(config.NATS_URL, "ai", log);
  const metrics = createAiMetrics();
  const lifecycle = createLifecycle(pool, log, metrics, config.AI_MODEL_REFRESH_MS);
  // No model yet is fine: the service serves, and GetForecast says so.
  await lifecycle.refresh().catch((err: unknown) => log.warn({ err }, "loading the serving model failed; retrying in the background"));
  const consumer = startOrdersConsumer(pool, nats, log, config.ORDERS_EVENTS_CONSUMER);
  // customers' moderated reviews (stream CUSTOMERS): approved ratings weigh in recommendations.
  const reviews = startReviewConsumer({ pool, nats, log, durable: config.AI_CUSTOMERS_EVENTS_CONSUMER, since: config.AI_CUSTOMERS_EVENTS_SINCE_START ? new Date() : undefined });
  const outbox = startOutboxRelay({ pool, nats, log, stream: aiSubjects.stream });
  // Kiosks' telemetry and connections (stream LINK): maintenance risk, who is online and healthy.
  const staleMs = config.AI_TELEMETRY_STALE_SECONDS * 1000;
  const telemetry = startTelemetryConsumer({
    pool,
    nats,
    log,
    durable: config.AI_LINK_EVENTS_CONSUMER,
    since: config.AI_LINK_EVENTS_SINCE_START ? new Date() : undefined,
    staleMs,
    thresholds: {
      paperDueHours: config.AI_PAPER_DUE_HOURS,
      paperLowPercent: config.AI_PAPER_LOW_PERCENT,
      faultDueProbability: config.AI_FAULT_DUE_PROBABILITY,
      temperatureDriftCelsius: config.AI_TEMPERATURE_DRIFT_CELSIUS,
    },
  });
  const silent = startSilentSweeper({
    pool,
    log,
    lifecycle,
    intervalMs: config.AI_SILENT_INTERVAL_MS,
    settings: { windowHours: config.AI_SILENT_WINDOW_HOURS, threshold: config.AI_SILENT_FAILURE_PROBABILITY, minExpected: config.AI_SILENT_MIN_EXPECTED_UNITS, staleMs },
  });
  // Scheduled retraining: every replica checks, one trains per due time.
  const scheduler = startScheduler({
    pool,
    log,
    schedule: config.AI_RETRAIN_SCHEDULE,
    job: "retrain",
    leaseMs: config.AI_RETRAIN_LEASE_MINUTES * 60_000,
    run: async () => {
      const r = await lifecycle.retrain("scheduler");
      return `v${r.model.version} ${r.promoted ? "promoted" : "rejected"}: ${r.model.gate_reason}`;
    },
  });
  // catalog's stock levels, read as ai itself (its service token); without them no stock-out risks.
  const { CATALOG_URL, AUTH_URL, SERVICE_SECRET } = config;
  const stockSettings = CATALOG_URL && AUTH_URL && SERVICE_SECRET ? { visitHours: config.AI_VISIT_INTERVAL_HOURS, serviceLevel: config.AI_SERVICE_LEVEL } : undefined;
  if (!stockSettings) log.warn("CATALOG_URL, AUTH_URL or SERVICE_SECRET is not set: no stock-out risks nor restock plans");
  const catalogTransport = stockSettings ? serviceTransport(CATALOG_URL!, serviceCredentials({ authUrl: AUTH_URL!, service: "ai", secret: SERVICE_SECRET! }), { upstream: "catalog" }) : undefined;
  const sweeper = catalogTransport
    ? startStockSweeper({
        pool,
        log,
        lifecycle,
        catalog: createClient(InventoryService, catalogTransport),
        intervalMs: config.AI_STOCK_REFRESH_MS,
        visitHours: config.AI_VISIT_INTERVAL_HOURS,
        threshold: config.AI_STOCKOUT_ALERT_PROBABILITY,
      })
    : undefined;
  const pruner = config.AI_BASKET_RETENTION_DAYS > 0 ? startBasketPruner({ pool, log, retentionDays: config.AI_BASKET_RETENTION_DAYS, intervalMs: config.AI_BASKET_PRUNE_INTERVAL_MS }) : undefined;
  // catalog's active products, read as ai, for product search and recommendations.
  const products = catalogTransport ? keepProductIndex({ catalog: createClient(ProductService, catalogTransport), log, intervalMs: config.AI_CATALOG_REFRESH_MS }) : undefined;

  const service = await startService(
    {
      name: "ai",
      nats,
      log,
      config,
      services: [...aiServices, ...recommendationServices, ...maintenanceServices],
      routes: (router) => {
        aiRoutes({ pool, lifecycle, stock: stockSettings })(router);
        recommendationRoutes({ pool, log, products })(router);
        maintenanceRoutes({ pool, staleMs, threshold: config.AI_SILENT_FAILURE_PROBABILITY })(router);
      },
      verifyToken: createTokenVerifier({ keys: remoteKeys(config.AUTH_JWKS_URL), isRevoked: redisRevocationCheck(redis) }),
      probes: [
        { name: "postgres", check: () => pool.query("SELECT 1") },
        { name: "redis", check: () => redis.ping() },
      ],
      consumers: [consumer, telemetry, reviews],
    },
    config.HOST,
    config.AI_PORT,
  );
  metrics.register(service.metrics, pool);
  registerMaintenanceMetrics(service.metrics, pool);

  onShutdownSignal(log, async () => {
    await service.close();
    await consumer.stop();
    await reviews.stop();
    await telemetry.stop();
    await silent.stop();
    await scheduler.stop();
    await sweeper?.stop();
    await products?.stop();
    await pruner?.stop();
    await outbox.stop();
    await lifecycle.stop();
    await Promise.allSettled([redis.quit(), closeNats(nats)]);
    await pool.end();
  });
}

runService("ai", main);

// customers: wire-up only. Reads config, runs migrations, starts the consumers of completed orders
// (stream ORDERS: points, purchase history), restocks (stream CATALOG: back-in-stock requests) and
// fleet's registry (stream FLEET: kiosks' groups and locations for nearby requests),
// the outbox relay (stream CUSTOMERS, for notifications), the retention pass and the server.
import { fileURLToPath } from "node:url";
import type { CountryCode } from "libphonenumber-js";
import {
  closeNats,
  connectNats,
  createLogger,
  createPool,
  createRedis,
  createTokenVerifier,
  customersSubjects,
  loadConfig,
  migrate,
  onShutdownSignal,
  redisRevocationCheck,
  remoteKeys,
  runService,
  startIdempotencyCleanup,
  startOutboxRelay,
  startService,
} from "@adminkiosk/runtime";
import { startFleetConsumer, startRestockConsumer } from "./back-in-stock.js";
import { customersConfigShape } from "./config.js";
import { startRetention } from "./retention.js";
import { startOrdersConsumer } from "./sales.js";
import { customersRoutes, customersServices } from "./server.js";

const migrations = fileURLToPath(new URL("../migrations", import.meta.url));

async function main() {
  const config = loadConfig(customersConfigShape);
  const log = createLogger("customers", config.LOG_LEVEL);
  await migrate(config.DATABASE_URL, "customers", migrations, log, { consumerTables: true, idempotencyKeys: true });
  const pool = createPool(config.DATABASE_URL, "customers", log);
  const redis = createRedis(config.REDIS_URL, log);
  const nats = connectNats(config.NATS_URL, "customers", log);
  const since = config.EVENTS_SINCE_START ? new Date() : undefined;
  const orders = startOrdersConsumer({ pool, nats, log, durable: config.ORDERS_EVENTS_CONSUMER, since, minorPerPoint: config.MINOR_UNITS_PER_POINT });
  const restocks = startRestockConsumer({ pool, nats, log, durable: config.CATALOG_EVENTS_CONSUMER, since });
  // Kiosks' groups and locations (nearby back-in-stock requests): the whole registry, not only what changed since the start.
  const places = startFleetConsumer({ pool, nats, log, durable: config.FLEET_EVENTS_CONSUMER });
  const outbox = startOutboxRelay({ pool, nats, log, stream: customersSubjects.stream });
  const stopKeyCleanup = startIdempotencyCleanup(pool, config.IDEMPOTENCY_KEY_TTL);
  const retention = startRetention({
    pool,
    log,
    intervalMs: config.RETENTION_INTERVAL_MS,
    memberRetentionMs: config.MEMBER_RETENTION,
    backInStockTtlMs: config.BACK_IN_STOCK_TTL,
    saleMatchWindowMs: config.SALE_MATCH_WINDOW,
  });

  const service = await startService(
    {
      name: "customers",
      nats,
      log,
      config,
      services: customersServices,
      routes: customersRoutes({
        pool,
        minorPerPoint: config.MINOR_UNITS_PER_POINT,
        phoneRegion: config.CUSTOMERS_PHONE_REGION === "" ? undefined : (config.CUSTOMERS_PHONE_REGION as CountryCode),
        reviewLinkSecrets: config.REVIEW_LINK_SECRETS,
      }),
      verifyToken: createTokenVerifier({ keys: remoteKeys(config.AUTH_JWKS_URL), isRevoked: redisRevocationCheck(redis) }),
      probes: [
        { name: "postgres", check: () => pool.query("SELECT 1") },
        { name: "redis", check: () => redis.ping() },
      ],
      consumers: [orders, restocks, places],
    },
    config.HOST,
    config.CUSTOMERS_PORT,
  );

  onShutdownSignal(log, async () => {
    await service.close();
    await orders.stop();
    await restocks.stop();
    await places.stop();
    await retention.stop();
    stopKeyCleanup();
    await outbox.stop();
    await Promise.allSettled([redis.quit(), closeNats(nats)]);
    await pool.end();
  });
}

runService("customers", main);

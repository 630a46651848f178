// catalog: wire-up only. Reads config, runs migrations, starts the server, the outbox
// relay (stream CATALOG) and the reservation sweeper.
import { fileURLToPath } from "node:url";
import {
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
  startOutboxRelay,
  startService,
} from "@adminkiosk/runtime";
import { catalogConfigShape } from "./config.js";
import { catalogStream } from "./events.js";
import { createCatalogMetrics } from "./metrics.js";
import { createReservationBook } from "./reservations.js";
import { createLeaseBook } from "./leases.js";
import { createLeaseForecaster } from "./lease-forecast.js";
import { leaseRoutes } from "./lease-server.js";
import { catalogRoutes, catalogServices } from "./server.js";
import { startLeaseSweeper, startReservationSweeper } from "./sweeper.js";
import { LeaseService } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";

const migrations = fileURLToPath(new URL("../migrations", import.meta.url));

async function main() {
  const config = loadConfig(catalogConfigShape);
  const log = createLogger("catalog", config.LOG_LEVEL);
  await migrate(config.DATABASE_URL, "catalog", migrations, log);
  const pool = createPool(config.DATABASE_URL, "catalog", log);
  const redis = createRedis(config.REDIS_URL, log);
  const nats = connectNats(config.NATS_URL, "catalog", log);
  const outbox = startOutboxRelay({ pool, nats, log, stream: catalogStream });
  const metrics = createCatalogMetrics();
  const reservations = createReservationBook(pool, metrics, { maxHeldPerKiosk: config.MAX_HELD_RESERVATIONS_PER_KIOSK });
  const sweeper = startReservationSweeper(reservations, config.RESERVATION_SWEEP_MS, log);
  // Leases (docs/offline.md): granted on a kiosk's request within this policy, or by an
  // operator; either may have them sized from ai's demand forecast (forecast_hours).
  const leases = createLeaseBook(pool, config.LEASE_SYNC_GRACE_SECONDS);
  const leaseSweeper = startLeaseSweeper(leases, config.RESERVATION_SWEEP_MS, log);
  const policy = {
    maxUnitsPerSku: config.LEASE_MAX_UNITS_PER_SKU,
    maxUnits: config.LEASE_MAX_UNITS_PER_KIOSK,
    maxSeats: config.LEASE_MAX_SEATS_PER_KIOSK,
    maxTtlSeconds: config.LEASE_MAX_TTL_SECONDS,
    maxActive: config.LEASE_MAX_ACTIVE_PER_KIOSK,
    syncGraceSeconds: config.LEASE_SYNC_GRACE_SECONDS,
  };
  const catalog = catalogRoutes({ pool, reservations, defaultTtlSeconds: config.RESERVATION_TTL_SECONDS });
  const forecaster = createLeaseForecaster({ aiUrl: config.AI_URL, authUrl: config.AUTH_URL, secret: config.SERVICE_SECRET, log });
  const leaseHandlers = leaseRoutes({ leases, policy, defaultTtlSeconds: config.LEASE_DEFAULT_TTL_SECONDS, forecaster, forecastFallbackUnits: config.LEASE_FORECAST_FALLBACK_UNITS });

  const service = await startService(
    {
      name: "catalog",
      nats,
      log,
      config,
      services: [...catalogServices, LeaseService],
      routes: (router) => {
        catalog(router);
        leaseHandlers(router);
      },
      verifyToken: createTokenVerifier({ keys: remoteKeys(config.AUTH_JWKS_URL), isRevoked: redisRevocationCheck(redis) }),
      probes: [
        { name: "postgres", check: () => pool.query("SELECT 1") },
        { name: "redis", check: () => redis.ping() },
      ],
    },
    config.HOST,
    config.CATALOG_PORT,
  );
  metrics.register(service.metrics, pool);

  onShutdownSignal(log, async () => {
    await service.close();
    await sweeper.stop();
    await leaseSweeper.stop();
    await outbox.stop();
    await Promise.allSettled([redis.quit(), closeNats(nats)]);
    await pool.end();
  });
}

runService("catalog", main);

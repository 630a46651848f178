// orders: wire-up only. Reads config, runs migrations, starts the completion worker
// (JetStream consumers on PAYMENTS and CATALOG), the abandoned-order sweeper, the outbox
// relay and the server.
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
  serviceCredentials,
  startOutboxRelay,
  startService,
} from "@adminkiosk/runtime";
import { startAbandonedSweeper } from "./abandoned.js";
import { startCompletionWorker } from "./completion.js";
import { ordersConfigShape } from "./config.js";
import { ordersStream } from "./events.js";
import { paymentStarts } from "./payment-starts.js";
import { offlineRoutes } from "./offline-server.js";
import { ordersRoutes, ordersServices } from "./server.js";
import { OfflineSaleService } from "@adminkiosk/proto/adminkiosk/orders/v1/offline_pb";
import { createTicketSigner } from "./tickets.js";
import { createUpstream } from "./upstream.js";

const migrations = fileURLToPath(new URL("../migrations", import.meta.url));

async function main() {
  const config = loadConfig(ordersConfigShape);
  const log = createLogger("orders", config.LOG_LEVEL);
  const signer = await createTicketSigner(config.ORDERS_TICKET_SIGNING_KEY, config.ORDERS_TICKET_PREVIOUS_KEYS);
  await migrate(config.DATABASE_URL, "orders", migrations, log, { consumerTables: true });
  const pool = createPool(config.DATABASE_URL, "orders", log);
  const redis = createRedis(config.REDIS_URL, log);
  const nats = connectNats(config.NATS_URL, "orders", log);
  const outbox = startOutboxRelay({ pool, nats, log, stream: ordersStream });
  const credentials = serviceCredentials({ authUrl: config.AUTH_URL, service: "orders", secret: config.SERVICE_SECRET });
  const upstream = createUpstream(config.CATALOG_URL, config.PAYMENTS_URL, credentials);
  const starts = paymentStarts();
  const worker = startCompletionWorker({
    pool,
    nats,
    upstream,
    signer,
    log,
    consumers: { payments: config.PAYMENTS_EVENTS_CONSUMER, catalog: config.CATALOG_EVENTS_CONSUMER },
    paymentStarts: starts,
  });

  const abandoned = startAbandonedSweeper({
    pool,
    upstream,
    log,
    holdSeconds: config.ORDER_HOLD_SECONDS,
    marginSeconds: config.ORDERS_ABANDONED_MARGIN_SECONDS,
    intervalMs: config.ORDERS_ABANDONED_SWEEP_MS,
  });

  const service = await startService(
    {
      name: "orders",
      nats,
      log,
      config,
      services: [...ordersServices, OfflineSaleService],
      routes: (router) => {
        ordersRoutes({ pool, upstream, signer, log, holdSeconds: config.ORDER_HOLD_SECONDS, paymentStarts: starts })(router);
        // Offline selling (docs/offline.md).
        offlineRoutes({
          pool,
          upstream,
          signer,
          log,
          cardFloorLimitMinor: config.ORDERS_OFFLINE_CARD_FLOOR_LIMIT_MINOR,
          delegationMaxSeconds: config.ORDERS_DELEGATION_MAX_SECONDS,
        })(router);
      },
      consumers: worker.consumers,
      verifyToken: createTokenVerifier({ keys: remoteKeys(config.AUTH_JWKS_URL), isRevoked: redisRevocationCheck(redis) }),
      probes: [
        { name: "postgres", check: () => pool.query("SELECT 1") },
        { name: "redis", check: () => redis.ping() },
      ],
    },
    config.HOST,
    config.ORDERS_PORT,
  );
  worker.registerMetrics(service.metrics);

  onShutdownSignal(log, async () => {
    await service.close();
    await abandoned.stop();
    await worker.stop();
    await outbox.stop();
    await Promise.allSettled([redis.quit(), closeNats(nats)]);
    await pool.end();
  });
}

runService("orders", main);

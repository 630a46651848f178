// payments: wire-up only. Reads config, runs migrations, starts the provider worker,
// the confirmation sweeper, the reconciler, the outbox relay and the server (RPCs and the webhook route).
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
  startIdempotencyCleanup,
  onShutdownSignal,
  redisRevocationCheck,
  remoteKeys,
  runService,
  startOutboxRelay,
  startService,
} from "@adminkiosk/runtime";
import { paymentsConfigShape } from "./config.js";
import { paymentsStream } from "./events.js";
import { createPaymentsMetrics } from "./metrics.js";
import { httpProvider } from "./provider.js";
import { startConfirmationSweeper, startProviderWorker } from "./provider-worker.js";
import { startReconciler } from "./reconcile.js";
import { paymentsRoutes, paymentsServices } from "./server.js";
import { providerWebhookRoute, webhookPath } from "./webhooks.js";

const migrations = fileURLToPath(new URL("../migrations", import.meta.url));

async function main() {
  const config = loadConfig(paymentsConfigShape);
  const log = createLogger("payments", config.LOG_LEVEL);
  await migrate(config.DATABASE_URL, "payments", migrations, log, { idempotencyKeys: true });
  const pool = createPool(config.DATABASE_URL, "payments", log);
  const redis = createRedis(config.REDIS_URL, log);
  const nats = connectNats(config.NATS_URL, "payments", log);
  const outbox = startOutboxRelay({ pool, nats, log, stream: paymentsStream });
  const metrics = createPaymentsMetrics(pool);
  const provider = httpProvider({
    baseUrl: config.PROVIDER_URL,
    apiKey: config.PROVIDER_API_KEY,
    webhookSecrets: [config.PROVIDER_WEBHOOK_SECRET, ...(config.PROVIDER_WEBHOOK_PREVIOUS_SECRET ? [config.PROVIDER_WEBHOOK_PREVIOUS_SECRET] : [])],
    webhookToleranceMs: config.WEBHOOK_TOLERANCE,
    timeoutMs: config.PROVIDER_TIMEOUT,
  });
  const worker = startProviderWorker({ pool, provider, metrics, log });
  const reconciler = startReconciler({ pool, provider, metrics, log, wakeProviderWorker: worker.wake, afterMs: config.PAYMENT_RECONCILE_AFTER, intervalMs: config.PAYMENT_RECONCILE_INTERVAL });
  const sweeper = startConfirmationSweeper({
    pool,
    metrics,
    log,
    timeoutMs: config.PAYMENT_CONFIRM_TIMEOUT,
    wakeProviderWorker: worker.wake,
    askProviderFirst: reconciler.reconcileOlderThan,
  });
  const stopCleanup = startIdempotencyCleanup(pool, config.IDEMPOTENCY_KEY_TTL);

  const service = await startService(
    {
      name: "payments",
      nats,
      log,
      config,
      services: paymentsServices,
      routes: paymentsRoutes({ pool, metrics, wakeProviderWorker: worker.wake }),
      verifyToken: createTokenVerifier({ keys: remoteKeys(config.AUTH_JWKS_URL), isRevoked: redisRevocationCheck(redis) }),
      probes: [
        { name: "postgres", check: () => pool.query("SELECT 1") },
        { name: "redis", check: () => redis.ping() },
      ],
      httpPostRoutes: { [webhookPath]: providerWebhookRoute({ pool, provider, metrics, log, wakeProviderWorker: worker.wake, bodyTimeoutMs: config.WEBHOOK_BODY_TIMEOUT }) },
    },
    config.HOST,
    config.PAYMENTS_PORT,
  );
  metrics.register(service.metrics);

  onShutdownSignal(log, async () => {
    await service.close();
    sweeper.stop();
    await reconciler.stop();
    stopCleanup();
    await worker.stop();
    await outbox.stop();
    await Promise.allSettled([redis.quit(), closeNats(nats)]);
    await pool.end();
  });
}

runService("payments", main);

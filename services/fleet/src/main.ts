// fleet: wire-up only. Reads config, runs migrations, starts the server.
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
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
  startService,
} from "@adminkiosk/runtime";
import { fleetConfigShape } from "./config.js";
import { consumeLinkEvents } from "./events.js";
import { startPresenceSweep } from "./presence-sweep.js";
import { fleetRoutes, fleetServices } from "./server.js";

const migrations = fileURLToPath(new URL("../migrations", import.meta.url));

async function main() {
  const config = loadConfig(fleetConfigShape);
  const log = createLogger("fleet", config.LOG_LEVEL);
  await migrate(config.DATABASE_URL, "fleet", migrations, log);
  const pool = createPool(config.DATABASE_URL, "fleet", log);
  const redis = createRedis(config.REDIS_URL, log);
  const authDevices = createClient(DeviceService, createGrpcTransport({ baseUrl: config.AUTH_URL }));
  const nats = connectNats(config.NATS_URL, "fleet", log);
  const linkEvents = consumeLinkEvents(pool, nats, config.LINK_EVENTS_CONSUMER, log);
  const sweep = startPresenceSweep(pool, redis, config.PRESENCE_SWEEP_MS, log);

  const service = await startService(
    {
      name: "fleet",
      log,
      config,
      services: fleetServices,
      routes: fleetRoutes({ pool, authDevices }),
      verifyToken: createTokenVerifier({ keys: remoteKeys(config.AUTH_JWKS_URL), isRevoked: redisRevocationCheck(redis) }),
      probes: [
        { name: "postgres", check: () => pool.query("SELECT 1") },
        { name: "redis", check: () => redis.ping() },
      ],
    },
    config.HOST,
    config.FLEET_PORT,
  );

  onShutdownSignal(log, async () => {
    await service.close();
    sweep.stop();
    await linkEvents.stop();
    await Promise.allSettled([redis.quit(), closeNats(nats)]);
    await pool.end();
  });
}

runService("fleet", main);

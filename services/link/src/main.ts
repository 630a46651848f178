// link: wire-up only.
import {
  closeNats,
  createAdmission,
  connectNats,
  createLogger,
  createRedis,
  createTokenVerifier,
  loadConfig,
  onShutdownSignal,
  redisRevocationCheck,
  remoteKeys,
  runService,
  startService,
} from "@adminkiosk/runtime";
import { Gauge } from "prom-client";
import { LinkService } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { linkConfigShape } from "./config.js";
import { createLinkEvents } from "./events.js";
import { createCooldown } from "./limits.js";
import { createPresence } from "./presence.js";
import { createLink, linkServices } from "./server.js";

async function main() {
  const config = loadConfig(linkConfigShape);
  const log = createLogger("link", config.LOG_LEVEL).child({ replica: config.LINK_REPLICA_ID });
  const redis = createRedis(config.REDIS_URL, log);
  // link cannot do its job without NATS (events, replacement, revocation): it waits for it.
  const nats = await connectNats(config.NATS_URL, "link", log);
  const events = await createLinkEvents(nats, log, config.LINK_REPLICA_ID);
  const link = createLink({
    config,
    presence: createPresence(redis, config.PRESENCE_TTL_SECONDS),
    cooldown: createCooldown(redis, config.LINK_RATE_COOLDOWN_SECONDS),
    events,
    log,
  });

  const service = await startService(
    {
      name: "link",
      nats,
      log,
      config,
      services: linkServices,
      // The kiosk stream is served by grpc-js (every HTTP/2 connection); HTTP/1.1 keeps
      // Connect for /metrics, /readyz and health over Connect or gRPC-Web.
      routes: () => {},
      grpc: link.grpcHandlers,
      // A storm of reconnects waits its turn (or is told when to come back) instead of piling up.
      admission: { methods: [LinkService.method.connect], admission: createAdmission({ concurrency: config.LINK_CONNECT_CONCURRENCY, queue: config.LINK_ACCEPT_QUEUE, rate: config.LINK_CONNECT_RATE }) },
      verifyToken: createTokenVerifier({ keys: remoteKeys(config.AUTH_JWKS_URL), isRevoked: redisRevocationCheck(redis) }),
      probes: [
        { name: "redis", check: () => redis.ping() },
        { name: "nats", check: () => nats.flush() },
      ],
    },
    config.HOST,
    config.LINK_PORT,
  );

  link.registerMetrics(service.metrics);
  // For dashboards and, later, autoscaling on connections rather than CPU.
  new Gauge({
    name: "link_connected_kiosks",
    help: "Kiosk streams this replica holds.",
    registers: [service.metrics],
    collect() {
      this.set(link.connectedCount());
    },
  });

  onShutdownSignal(log, async () => {
    link.drainAll();
    link.stop();
    await service.close();
    await events.close();
    await Promise.allSettled([redis.quit(), closeNats(nats)]);
  });
}

runService("link", main);

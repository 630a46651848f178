// Redis through ioredis; commands fail fast while Redis is down instead of queueing.
import { Redis } from "ioredis";
import type { Logger } from "./logger.js";

export { Redis };

export function createRedis(redisUrl: string, log: Logger): Redis {
  const redis = new Redis(redisUrl, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 3_000,
    lazyConnect: false,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  let down = false;
  redis.on("error", (err) => {
    if (!down) log.warn({ err: err.message }, "redis unavailable");
    down = true;
  });
  redis.on("ready", () => {
    if (down) log.info("redis reconnected");
    down = false;
  });
  return redis;
}

/**
 * Where link records which replica holds a kiosk's stream (a hash with a TTL that
 * heartbeats renew). link writes it; fleet's presence sweep reads it.
 */
export const kioskPresenceKey = (kioskId: string) => `link:presence:${kioskId}`;

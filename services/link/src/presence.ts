// Which link replica holds which kiosk, in Redis with a TTL: a replica that dies
// leaves no stale "online" behind for longer than PRESENCE_TTL_SECONDS.
import { kioskPresenceKey as key, type Redis } from "@adminkiosk/runtime";

// Both act only on a record that is still this stream's (a newer stream may own it),
// in one round trip: touch runs on every heartbeat of every kiosk.
const releaseScript = `if redis.call("HGET", KEYS[1], "session") == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`;
const touchScript = `if redis.call("HGET", KEYS[1], "session") == ARGV[1] then redis.call("HSET", KEYS[1], "lastSeen", ARGV[2]); return redis.call("EXPIRE", KEYS[1], ARGV[3]) else return 0 end`;

export interface PresenceRecord {
  replica: string;
  session: string;
  deviceId: string;
  since: string;
  lastSeen: string;
}

export function createPresence(redis: Redis, ttlSeconds: number) {
  return {
    async claim(kioskId: string, r: Omit<PresenceRecord, "lastSeen">) {
      await redis.multi().hset(key(kioskId), { ...r, lastSeen: new Date().toISOString() }).expire(key(kioskId), ttlSeconds).exec();
    },
    /** False when the record is gone or another stream's (it expired, or Redis lost it). */
    async touch(kioskId: string, session: string): Promise<boolean> {
      return (await redis.eval(touchScript, 1, key(kioskId), session, new Date().toISOString(), ttlSeconds)) === 1;
    },
    async release(kioskId: string, session: string) {
      await redis.eval(releaseScript, 1, key(kioskId), session);
    },
    async get(kioskId: string): Promise<PresenceRecord | undefined> {
      const r = await redis.hgetall(key(kioskId));
      return r["session"] ? { replica: r["replica"] ?? "", session: r["session"], deviceId: r["deviceId"] ?? "", since: r["since"] ?? "", lastSeen: r["lastSeen"] ?? "" } : undefined;
    },
  };
}

export type Presence = ReturnType<typeof createPresence>;

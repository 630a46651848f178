// Which link replica holds which kiosk, in Redis with a TTL: a replica that dies
// leaves no stale "online" behind for longer than PRESENCE_TTL_SECONDS.
import { kioskPresenceKey as key, type Redis } from "@adminkiosk/runtime";

// Both act only on a record that is still this stream's (a newer stream may own it).
const releaseScript = `if redis.call("HGET", KEYS[1], "session") == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`;
// Refreshes many kiosks' records at once (KEYS[i] for the stream ARGV[i]; then the time and the
// TTL): 1 refreshed, 0 gone, -1 another stream's. Heartbeats are collected and sent this way once
// per tick, so 100,000 kiosks heartbeating every 30 s cost a few calls a second, not 3,333.
const touchManyScript = `local n = #KEYS
local out = {}
for i = 1, n do
  local s = redis.call("HGET", KEYS[i], "session")
  if s == ARGV[i] then
    redis.call("HSET", KEYS[i], "lastSeen", ARGV[n + 1])
    redis.call("EXPIRE", KEYS[i], ARGV[n + 2])
    out[i] = 1
  elseif s then
    out[i] = -1
  else
    out[i] = 0
  end
end
return out`;
/** Records refreshed per script call (several calls go out in one pipeline). */
const touchChunk = 500;

/** What refreshing a stream's record found: refreshed, gone (expired or lost), or another stream's. */
export type Touched = "refreshed" | "gone" | "taken";

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
    /** Refreshes the records of these streams (kiosk id, session) in one pipeline; what each found, in order. */
    async touchMany(streams: readonly (readonly [kioskId: string, session: string])[]): Promise<Touched[]> {
      if (streams.length === 0) return [];
      const now = new Date().toISOString();
      const pipeline = redis.pipeline();
      for (let i = 0; i < streams.length; i += touchChunk) {
        const chunk = streams.slice(i, i + touchChunk);
        pipeline.eval(touchManyScript, chunk.length, ...chunk.map(([k]) => key(k)), ...chunk.map(([, s]) => s), now, ttlSeconds);
      }
      const results = (await pipeline.exec()) ?? [];
      const out: Touched[] = [];
      for (const [err, found] of results) {
        if (err) throw err;
        for (const r of found as number[]) out.push(r === 1 ? "refreshed" : r === 0 ? "gone" : "taken");
      }
      return out;
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

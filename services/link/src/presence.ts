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
// Replaces the record (unless ARGV[7] is "1" and another session holds it) and returns the
// previous owner's replica and session (nil when there was none).
const claimScript = `local old = redis.call("HMGET", KEYS[1], "replica", "session")
if ARGV[7] == "1" and old[2] and old[2] ~= ARGV[2] then return old end
redis.call("HSET", KEYS[1], "replica", ARGV[1], "session", ARGV[2], "deviceId", ARGV[3], "since", ARGV[4], "lastSeen", ARGV[5])
redis.call("EXPIRE", KEYS[1], ARGV[6])
return old`;

/** Who held a kiosk's presence record. */
export interface Owner {
  replica: string;
  session: string;
}

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
    /**
     * Makes the record this stream's and returns whose it was (replica and session), so the
     * replica holding the older stream can be told to end it: the record is where the owner
     * is looked up, once, instead of every replica hearing of every connection. With
     * `onlyIfFree` a record another stream holds is left alone (a heartbeat's re-claim must
     * not take a kiosk back from a newer stream); the answer then names that stream.
     */
    async claim(kioskId: string, r: Omit<PresenceRecord, "lastSeen">, onlyIfFree = false): Promise<Owner | undefined> {
      const [replica, session] = (await redis.eval(claimScript, 1, key(kioskId), r.replica, r.session, r.deviceId, r.since, new Date().toISOString(), ttlSeconds, onlyIfFree ? "1" : "0")) as [string | null, string | null];
      return session ? { replica: replica ?? "", session } : undefined;
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

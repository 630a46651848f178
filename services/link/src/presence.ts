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

// The claims of the streams opening in one tick, in one call (KEYS: n presence keys, then n
// cool-down keys when cool-downs are on; ARGV: n, replica, now, TTL, cool-downs on, then each
// stream's session, device and since). A kiosk still in its cool-down is not claimed: {"c", ms
// left}; otherwise the record is the new stream's and the answer names the previous owner: {"p",
// replica, session} ("" for none). One round trip and one script run per tick instead of a PTTL
// and an EVAL per connect.
const claimManyScript = `local n = tonumber(ARGV[1])
local replica, now, ttl, cool = ARGV[2], ARGV[3], ARGV[4], ARGV[5] == "1"
local out = {}
for i = 1, n do
  local left = -2
  if cool then left = redis.call("PTTL", KEYS[n + i]) end
  if left > 0 then
    out[i] = {"c", tostring(left)}
  else
    local old = redis.call("HMGET", KEYS[i], "replica", "session")
    local a = 5 + 3 * (i - 1)
    redis.call("HSET", KEYS[i], "replica", replica, "session", ARGV[a + 1], "deviceId", ARGV[a + 2], "since", ARGV[a + 3], "lastSeen", now)
    redis.call("EXPIRE", KEYS[i], ttl)
    out[i] = {"p", old[1] or "", old[2] or ""}
  end
end
return out`;

/** Who held a kiosk's presence record. */
export interface Owner {
  replica: string;
  session: string;
}

/** Records refreshed per script call (several calls go out in one pipeline). */
const touchChunk = 500;

/** A stream opening: its kiosk, and its record (the replica is the caller's). */
export interface Opening {
  kioskId: string;
  session: string;
  deviceId: string;
  since: string;
  /** The kiosk's cool-down key, when cool-downs are on (limits.ts). */
  cooldownKey?: string;
}

/** What claiming an opening stream's record found: the kiosk is cooling down, or the previous owner (if any). */
export type Claimed = { cooldownMs: number } | { cooldownMs: 0; previous: Owner | undefined };

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
    /**
     * Claims the records of many opening streams in one round trip (a script call per 500, in
     * one pipeline), each as `claim` does, except that a kiosk still cooling down (its
     * `cooldownKey` has time left) is not claimed. What each found, in order.
     */
    async claimMany(replica: string, streams: readonly Opening[]): Promise<Claimed[]> {
      if (streams.length === 0) return [];
      const now = new Date().toISOString();
      const pipeline = redis.pipeline();
      for (let i = 0; i < streams.length; i += touchChunk) {
        const chunk = streams.slice(i, i + touchChunk);
        const cool = chunk.every((s) => s.cooldownKey !== undefined);
        pipeline.eval(
          claimManyScript,
          cool ? 2 * chunk.length : chunk.length,
          ...chunk.map((s) => key(s.kioskId)),
          ...(cool ? chunk.map((s) => s.cooldownKey!) : []),
          chunk.length,
          replica,
          now,
          ttlSeconds,
          cool ? "1" : "0",
          ...chunk.flatMap((s) => [s.session, s.deviceId, s.since]),
        );
      }
      const results = (await pipeline.exec()) ?? [];
      const out: Claimed[] = [];
      for (const [err, found] of results) {
        if (err) throw err;
        for (const [tag, a, b] of found as [string, string, string?][]) {
          out.push(tag === "c" ? { cooldownMs: Number(a) } : { cooldownMs: 0, previous: b ? { replica: a, session: b } : undefined });
        }
      }
      return out;
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

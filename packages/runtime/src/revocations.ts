// Whether credentials were revoked (the token verifier's isRevoked, tokens.ts), asked of
// auth's Redis keys for all the calls of one tick together: one SMISMEMBER for devices and
// one MGET for people's sessions, instead of a round trip (and a socket write) per call.
// Link opens hundreds of streams per tick in a reconnect storm; fleet serves SendCommand to
// dozens of callers at once. Each call still gets its own answer, asked after it arrived.
import type { Redis } from "ioredis";
import { endedSessionKey, revokedDevicesKey, type RevocableCredential } from "./tokens.js";

interface Asked {
  id: string;
  resolve: (revoked: boolean) => void;
  reject: (err: unknown) => void;
}

export function batchedRevocationCheck(redis: Pick<Redis, "smismember" | "mget">): (credential: RevocableCredential) => Promise<boolean> {
  let devices: Asked[] = [];
  let sessions: Asked[] = [];
  const answer = (asked: Asked[], reply: Promise<boolean[]>) =>
    reply.then(
      (revoked) => asked.forEach((a, i) => a.resolve(revoked[i] === true)),
      (err: unknown) => asked.forEach((a) => a.reject(err)),
    );
  const flush = () => {
    const [d, s] = [devices, sessions];
    devices = [];
    sessions = [];
    if (d.length) answer(d, redis.smismember(revokedDevicesKey, ...d.map((a) => a.id)).then((r) => r.map((x) => x === 1)));
    if (s.length) answer(s, redis.mget(...s.map((a) => endedSessionKey(a.id))).then((r) => r.map((x) => x !== null)));
  };
  return (c) =>
    new Promise<boolean>((resolve, reject) => {
      if (devices.length === 0 && sessions.length === 0) setImmediate(flush);
      if (c.kind === "device") devices.push({ id: c.deviceId, resolve, reject });
      else sessions.push({ id: c.sessionId, resolve, reject });
    });
}

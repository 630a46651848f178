// Whether a device credential was revoked, asked for every stream that opens (the runtime's
// token verifier calls it after the signature check). In a reconnect storm hundreds of
// streams open per tick: their devices are asked together, one SMISMEMBER per tick against
// auth's set of revoked devices, instead of a SISMEMBER each (a Redis round trip and a socket
// write per connect). People's sessions (refused by link anyway) are asked one by one.
import { redisRevocationCheck, revokedDevicesKey, type Redis, type RevocableCredential } from "@adminkiosk/runtime";

export function batchedRevocationCheck(redis: Redis): (credential: RevocableCredential) => Promise<boolean> {
  const single = redisRevocationCheck(redis);
  let due: { deviceId: string; resolve: (revoked: boolean) => void; reject: (err: unknown) => void }[] = [];
  const flush = () => {
    const asked = due;
    due = [];
    redis.smismember(revokedDevicesKey, ...asked.map((a) => a.deviceId)).then(
      (answers) => asked.forEach((a, i) => a.resolve(answers[i] === 1)),
      (err: unknown) => asked.forEach((a) => a.reject(err)),
    );
  };
  return (c) => {
    if (c.kind !== "device") return single(c);
    return new Promise<boolean>((resolve, reject) => {
      if (due.length === 0) setImmediate(flush);
      due.push({ deviceId: c.deviceId, resolve, reject });
    });
  };
}

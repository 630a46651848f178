// Login throttling in Redis, shared by every auth replica: attempts per client
// address per minute, and failed attempts per account per window.
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Redis } from "@adminkiosk/runtime";

export interface LoginLimiter {
  /** Counts an attempt from `ip` and refuses when the address or the account is over its limit. */
  admit(ip: string, email: string): Promise<void>;
  recordFailure(email: string): Promise<void>;
  recordSuccess(email: string): Promise<void>;
  /** Enrollment is public too: the same per-address budget, counted separately. */
  admitEnrollment(ip: string): Promise<void>;
}

export class LoginThrottled extends ConnectError {
  constructor(readonly scope: "ip" | "account", retryAfterMs: number) {
    const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
    super(
      scope === "ip" ? `too many attempts from this address; retry in ${seconds} s` : `too many failed logins for this account; retry in ${seconds} s`,
      Code.ResourceExhausted,
      { "retry-after": String(seconds) },
    );
  }
}

export function createLoginLimiter(redis: Redis, perIpPerMinute: number, failuresPerAccount: number, failureWindowMs: number): LoginLimiter {
  const perIp = new RateLimiterRedis({ storeClient: redis, keyPrefix: "auth:login:ip", points: perIpPerMinute, duration: 60 });
  const enrollPerIp = new RateLimiterRedis({ storeClient: redis, keyPrefix: "auth:enroll:ip", points: perIpPerMinute, duration: 60 });
  const failures = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: "auth:login:failed",
    points: failuresPerAccount,
    duration: Math.ceil(failureWindowMs / 1000),
  });
  const unavailable = (err: unknown) => new ConnectError("login throttling is unavailable; retry later", Code.Unavailable, undefined, undefined, err);
  return {
    async admit(ip, email) {
      try {
        await perIp.consume(ip);
      } catch (err) {
        if (err instanceof RateLimiterRes) throw new LoginThrottled("ip", err.msBeforeNext);
        throw unavailable(err);
      }
      const state = await failures.get(email).catch((err: unknown) => {
        throw unavailable(err);
      });
      if (state && state.consumedPoints >= failuresPerAccount) throw new LoginThrottled("account", state.msBeforeNext);
    },
    async recordFailure(email) {
      await failures.penalty(email, 1).catch((err: unknown) => {
        throw unavailable(err);
      });
    },
    async admitEnrollment(ip) {
      try {
        await enrollPerIp.consume(ip);
      } catch (err) {
        if (err instanceof RateLimiterRes) throw new LoginThrottled("ip", err.msBeforeNext);
        throw unavailable(err);
      }
    },
    async recordSuccess(email) {
      await failures.delete(email).catch(() => false);
    },
  };
}

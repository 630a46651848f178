// Login throttling in Redis, shared by every auth replica. The client address is the
// real one (client-address.ts), so one caller's budget is never another's:
// - attempts per client address per minute (every attempt counts);
// - failed logins per account *and* address within a window: that address is refused for
//   that account until the window passes. Other addresses are not, so a stranger who
//   knows an admin's email cannot lock the admin out;
// - failed logins per account from all addresses: past the same threshold each further
//   attempt for the account waits a little longer (doubling, capped), which slows guessing
//   spread over many addresses without ever refusing the right password.
import { setTimeout as sleep } from "node:timers/promises";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Redis } from "@adminkiosk/runtime";

export interface LoginLimiter {
  /**
   * Counts an attempt from `ip`; refuses when the address is over its budget or has failed
   * too often for this account; then waits the account's progressive delay, if any.
   */
  admit(ip: string, email: string, signal?: AbortSignal): Promise<void>;
  recordFailure(ip: string, email: string): Promise<void>;
  recordSuccess(ip: string, email: string): Promise<void>;
  /** Enrollment is public too: the same per-address budget, counted separately. */
  admitEnrollment(ip: string): Promise<void>;
  /** Beginning a single sign-on stores an attempt: the same per-address budget, counted separately. */
  admitSsoBegin(ip: string): Promise<void>;
}

export interface LoginLimits {
  /** Attempts per client address per minute. */
  perIpPerMinute: number;
  /** Failures per account and address within `failureWindowMs`; also where the delay starts. */
  failuresPerAccount: number;
  failureWindowMs: number;
  /** The longest progressive delay. */
  maxDelayMs: number;
}

/** The first delay past the threshold; each further failure doubles it, up to the cap. */
export const firstDelayMs = 250;

export class LoginThrottled extends ConnectError {
  constructor(readonly scope: "ip" | "account", retryAfterMs: number) {
    const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
    super(
      scope === "ip"
        ? `too many attempts from this address; retry in ${seconds} s`
        : `too many failed logins for this account from this address; retry in ${seconds} s`,
      Code.ResourceExhausted,
      { "retry-after": String(seconds) },
    );
  }
}

/** The wait before an attempt for an account with `failures` recent failures from all addresses. */
export function progressiveDelayMs(failures: number, threshold: number, maxDelayMs: number): number {
  const excess = failures - threshold;
  if (excess <= 0) return 0;
  return Math.min(maxDelayMs, firstDelayMs * 2 ** Math.min(excess - 1, 30));
}

export function createLoginLimiter(redis: Redis, limits: LoginLimits): LoginLimiter {
  const { perIpPerMinute, failuresPerAccount, failureWindowMs, maxDelayMs } = limits;
  const window = Math.ceil(failureWindowMs / 1000);
  const perIp = new RateLimiterRedis({ storeClient: redis, keyPrefix: "auth:login:ip", points: perIpPerMinute, duration: 60 });
  const enrollPerIp = new RateLimiterRedis({ storeClient: redis, keyPrefix: "auth:enroll:ip", points: perIpPerMinute, duration: 60 });
  const ssoPerIp = new RateLimiterRedis({ storeClient: redis, keyPrefix: "auth:sso-begin:ip", points: perIpPerMinute, duration: 60 });
  // Keyed by account and address: "<email> <address>" (an email has no spaces).
  const pairFailures = new RateLimiterRedis({ storeClient: redis, keyPrefix: "auth:login:failed-from", points: failuresPerAccount, duration: window });
  // Keyed by account; only read and counted, never refuses by itself.
  const accountFailures = new RateLimiterRedis({ storeClient: redis, keyPrefix: "auth:login:failed-account", points: 1_000_000, duration: window });
  const pair = (ip: string, email: string) => `${email} ${ip}`;
  const consumeFrom = async (limiter: RateLimiterRedis, ip: string) => {
    try {
      await limiter.consume(ip);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw new LoginThrottled("ip", err.msBeforeNext);
      throw unavailable(err);
    }
  };
  const unavailable = (err: unknown) => new ConnectError("login throttling is unavailable; retry later", Code.Unavailable, undefined, undefined, err);
  const orUnavailable = <T>(p: Promise<T>) =>
    p.catch((err: unknown) => {
      throw unavailable(err);
    });
  return {
    async admit(ip, email, signal) {
      try {
        await perIp.consume(ip);
      } catch (err) {
        if (err instanceof RateLimiterRes) throw new LoginThrottled("ip", err.msBeforeNext);
        throw unavailable(err);
      }
      const [fromHere, overall] = await orUnavailable(Promise.all([pairFailures.get(pair(ip, email)), accountFailures.get(email)]));
      if (fromHere && fromHere.consumedPoints >= failuresPerAccount) throw new LoginThrottled("account", fromHere.msBeforeNext);
      const delay = progressiveDelayMs(overall?.consumedPoints ?? 0, failuresPerAccount, maxDelayMs);
      // Ends early with the call (its deadline or a cancel), as the reason the call ended.
      if (delay > 0) await sleep(delay, undefined, { signal }).catch((err: unknown) => Promise.reject(ConnectError.from(signal?.reason ?? err)));
    },
    async recordFailure(ip, email) {
      await orUnavailable(Promise.all([pairFailures.penalty(pair(ip, email), 1), accountFailures.penalty(email, 1)]));
    },
    admitEnrollment: (ip) => consumeFrom(enrollPerIp, ip),
    admitSsoBegin: (ip) => consumeFrom(ssoPerIp, ip),
    async recordSuccess(ip, email) {
      // Only this address's count: a success elsewhere says nothing about the other addresses.
      await pairFailures.delete(pair(ip, email)).catch(() => false);
    },
  };
}

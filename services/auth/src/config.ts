import { z } from "zod";
import { baseConfigShape, duration, port, url } from "@adminkiosk/runtime";
import { serviceSecrets } from "./service-tokens.js";
import { ssoConfigShape } from "./sso-config.js";

export const authConfigShape = {
  ...baseConfigShape,
  AUTH_PORT: port(7001),
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  REDIS_URL: url(["redis:", "rediss:"]),
  NATS_URL: url(["nats:", "tls:"]),
  /** 32 random bytes, base64: encrypts the signing keys' private halves at rest. */
  AUTH_KEY_ENCRYPTION_KEY: z
    .string()
    .refine((v) => Buffer.from(v, "base64").length === 32, "must be 32 bytes, base64-encoded (openssl rand -base64 32)"),
  ACCESS_TOKEN_TTL: duration("15m"),
  REFRESH_TOKEN_TTL: duration("30d"),
  /** A session's absolute end, counted from the login: refreshing never takes it past this. */
  SESSION_MAX_LIFETIME: duration("30d"),
  /**
   * A refresh retried with the token it spent (its answer was lost on the way) is answered again
   * within this long of the first use, while the token that answer carried is still unused;
   * "0s" takes every second use for theft. At most 5 minutes: a stolen token replayed within it
   * keeps working until the owner's next refresh ends the session.
   */
  REFRESH_REUSE_GRACE: duration("60s").refine((ms) => ms <= 300_000, "must be at most 5m"),
  DEVICE_CREDENTIAL_TTL: duration("90d"),
  /** The platform's services that may sign in as themselves: `name=secret,...` (secrets of 32+ characters). */
  SERVICE_SECRETS: serviceSecrets(),
  /** How long a service token lives; its holder renews it before then. */
  SERVICE_TOKEN_TTL: duration("10m"),
  /** A signing key older than this is rotated automatically at start and hourly. */
  SIGNING_KEY_MAX_AGE: duration("30d"),
  /** Login attempts allowed per client address per minute. */
  LOGIN_RATE_PER_IP: z.coerce.number().int().min(1).max(100_000).default(30),
  /**
   * Failed logins allowed per account from one client address within LOGIN_FAILURE_WINDOW before
   * that address is refused for that account for the window; past as many failures from all
   * addresses, each attempt for the account is delayed (see rate-limit.ts).
   */
  LOGIN_FAILURES_PER_ACCOUNT: z.coerce.number().int().min(1).max(1000).default(5),
  LOGIN_FAILURE_WINDOW: duration("15m"),
  /** The longest progressive delay before a login attempt for an account under attack. */
  LOGIN_FAILURE_MAX_DELAY: duration("5s"),
  /**
   * Take the client address from the x-adminkiosk-client-address header the edge sets (only where
   * the edge is the only way to reach auth: a direct caller could set it). See client-address.ts.
   */
  TRUST_PROXY: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),
  /** scrypt cost (log2 N); 15 uses 32 MiB and ~100 ms per hash. */
  PASSWORD_SCRYPT_LOG_N: z.coerce.number().int().min(10).max(20).default(15),
  /** Single sign-on with OpenID Connect providers (sso-config.ts, docs/sso.md). */
  ...ssoConfigShape,
};

export type AuthConfig = z.infer<z.ZodObject<typeof authConfigShape>>;

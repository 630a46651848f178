import { z } from "zod";
import { baseConfigShape, duration, port, url } from "@adminkiosk/runtime";

const secret = z.string().min(32, "must be at least 32 characters (openssl rand -hex 32)");

export const paymentsConfigShape = {
  ...baseConfigShape,
  PAYMENTS_PORT: port(7006),
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  /** auth's revocation keys (ended sessions, revoked devices) live here. */
  REDIS_URL: url(["redis:", "rediss:"]),
  /** payment.* events go to the JetStream stream PAYMENTS through the outbox. */
  NATS_URL: url(["nats:", "tls:"]),
  AUTH_JWKS_URL: url(["http:", "https:"]),
  /** The payment provider's API (the simulator locally). */
  PROVIDER_URL: url(["http:", "https:"]),
  /** payments' API key at the provider. */
  PROVIDER_API_KEY: secret,
  /** Signs the provider's webhooks (HMAC-SHA256). */
  PROVIDER_WEBHOOK_SECRET: secret,
  /** The secret being rotated out: webhooks signed with it are accepted too while it is set. */
  PROVIDER_WEBHOOK_PREVIOUS_SECRET: secret.optional(),
  /** How far a webhook's signed timestamp may be from now, either way. */
  WEBHOOK_TOLERANCE: duration("5m"),
  /** A webhook's body must arrive within this long of its request (a sender that dribbles bytes is cut off with 408). */
  WEBHOOK_BODY_TIMEOUT: duration("10s"),
  /** An intent still PROCESSING this long after it was submitted fails with failure_code "timeout". */
  PAYMENT_CONFIRM_TIMEOUT: duration("2m"),
  /** An intent PROCESSING this long is looked up at the provider (its webhook is overdue); keep it under PAYMENT_CONFIRM_TIMEOUT. */
  PAYMENT_RECONCILE_AFTER: duration("30s"),
  /** How often the reconciler looks for such intents. */
  PAYMENT_RECONCILE_INTERVAL: duration("10s").refine((ms) => ms > 0, "must be more than 0 (it is how often the reconciler runs)"),
  /** Each call to the provider's API gives up after this long (and is retried). */
  PROVIDER_TIMEOUT: duration("10s"),
  /** How long idempotency keys (and their stored responses) are kept. */
  IDEMPOTENCY_KEY_TTL: duration("24h"),
};

export type PaymentsConfig = z.infer<z.ZodObject<typeof paymentsConfigShape>>;

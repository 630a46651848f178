import { z } from "zod";
import { baseConfigShape, duration, port, url } from "@adminkiosk/runtime";

const secretName = /^[A-Za-z0-9_-]{1,64}$/;

/** "name=secret,other=secret2": the webhook signing secrets rules name by `secret_name`. */
const webhookSecrets = () =>
  z
    .string()
    .default("")
    .transform((v, ctx) => {
      const secrets = new Map<string, string>();
      for (const pair of v.split(",").map((p) => p.trim()).filter(Boolean)) {
        const eq = pair.indexOf("=");
        const name = pair.slice(0, eq);
        const secret = pair.slice(eq + 1);
        if (eq < 1 || !secretName.test(name) || secret.length < 16) {
          ctx.addIssue({ code: "custom", message: "must be name=secret pairs separated by commas (names of letters, digits, '_' or '-'; secrets of 16+ characters)" });
          return z.NEVER;
        }
        secrets.set(name, secret);
      }
      return secrets;
    });

export const notificationsConfigShape = {
  ...baseConfigShape,
  NOTIFICATIONS_PORT: port(7008),
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  /** auth's revocation keys (ended sessions, revoked devices) live here. */
  REDIS_URL: url(["redis:", "rediss:"]),
  /** link's, fleet's and ai's events come from JetStream (streams LINK, FLEET, AI); alert and delivery events go to stream NOTIFICATIONS. */
  NATS_URL: url(["nats:", "tls:"]),
  AUTH_JWKS_URL: url(["http:", "https:"]),
  /** Where email goes out (smtp://user:pass@host:port, smtps:// for TLS). */
  SMTP_URL: url(["smtp:", "smtps:"]),
  /** The From of alert emails. */
  MAIL_FROM: z.string().min(3).default("Admin Kiosk <alerts@adminkiosk.local>"),
  /**
   * The development mailbox's HTTP API (dev-mailbox/, GET /messages), which npm start sets:
   * DeliveryService.ListDevMail relays it to the admin web. Unset (production): FailedPrecondition.
   */
  DEV_MAILBOX_URL: url(["http:", "https:"]).optional(),
  /** Webhook signing secrets by name ("ops=…,oncall=…"); a rule's webhook names one. */
  WEBHOOK_SECRETS: webhookSecrets(),
  /** How long alert changes of one rule and group are collected into one notification. */
  GROUP_WAIT: duration("10s"),
  /**
   * After a group's notification, how long new changes joining it (rule + kiosk group + status)
   * are collected before the next one (Alertmanager's group_interval): a storm spread over
   * minutes is a notification per GROUP_INTERVAL, not one per GROUP_WAIT. 0 … 1 day.
   */
  GROUP_INTERVAL: duration("5m").refine((ms) => ms <= 86_400_000, "must be at most 1d"),
  /** How often each replica fires due alerts, groups changes and sends due deliveries (SKIP LOCKED shares the work). */
  SWEEP_MS: z.coerce.number().int().min(50).max(60_000).default(1_000),
  /** Attempts per delivery before it is dead-lettered. */
  DELIVERY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  /** The first retry's delay, doubling up to DELIVERY_RETRY_MAX. */
  DELIVERY_RETRY_INITIAL: duration("2s"),
  DELIVERY_RETRY_MAX: duration("10m"),
  /** One attempt's time limit (SMTP or HTTP). */
  DELIVERY_TIMEOUT: duration("10s"),
  /** The durable JetStream consumer notifications reads link's events with; replicas share it. */
  LINK_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("notifications"),
  /**
   * Only when the durable consumer is first created: true starts it at the events published
   * since this process started instead of all that stream LINK still holds. Tests sharing one NATS use it.
   */
  LINK_EVENTS_SINCE_START: z
    .enum(["true", "false"], { message: 'must be "true" or "false"' })
    .default("false")
    .transform((v) => v === "true"),
  /** The durable JetStream consumer notifications reads fleet's kiosk registry events with (stream FLEET: kiosks' group and tags). */
  FLEET_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("notifications-fleet"),
  /** As LINK_EVENTS_SINCE_START, for stream FLEET. */
  FLEET_EVENTS_SINCE_START: z
    .enum(["true", "false"], { message: 'must be "true" or "false"' })
    .default("false")
    .transform((v) => v === "true"),
  /** The durable JetStream consumer notifications reads ai's stock-out predictions with (stream AI: ai.stockout.<kiosk>.predicted | cleared). */
  AI_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("notifications-ai"),
  /** As LINK_EVENTS_SINCE_START, for stream AI. */
  AI_EVENTS_SINCE_START: z
    .enum(["true", "false"], { message: 'must be "true" or "false"' })
    .default("false")
    .transform((v) => v === "true"),
  /** The durable consumers of link's telemetry (alerting_status, telemetry_errors rules), catalog's stock events (low_stock), payments' (payment_failure_rate) and orders' (orders_stuck, buyers' receipts). */
  TELEMETRY_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("notifications-telemetry"),
  CATALOG_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("notifications-catalog"),
  PAYMENTS_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("notifications-payments"),
  ORDERS_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("notifications-orders"),
  /** ai's silent-failure events (stream AI, ai.silent_failure.>: silent_failure rules). */
  SILENT_FAILURE_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("notifications-silent-failures"),
  /** The runtime's health announcements of every service process (stream OPS, ops.health.>: service_not_serving rules). */
  /** customers' events on stream CUSTOMERS: buyers' back-in-stock messages and calls for help (help_requested). */
  CUSTOMERS_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("notifications-customers"),
  SERVICE_HEALTH_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("notifications-service-health"),
  /** As LINK_EVENTS_SINCE_START, for the seven consumers above. */
  COMMERCE_EVENTS_SINCE_START: z
    .enum(["true", "false"], { message: 'must be "true" or "false"' })
    .default("false")
    .transform((v) => v === "true"),
  /**
   * Buyers' receipts: orders' API (read as notifications with a service token; auth's
   * SERVICE_SECRETS lists "notifications"). Without all three, RequestReceipt is FailedPrecondition.
   */
  ORDERS_URL: url(["http:", "https:"]).optional(),
  AUTH_URL: url(["http:", "https:"]).optional(),
  /** notifications' client secret, as auth's SERVICE_SECRETS lists it for "notifications" (32+ characters). */
  SERVICE_SECRET: z.string().min(32, "must be notifications' client secret from auth's SERVICE_SECRETS (32+ characters)").optional(),
  /** How long a receipt request (the buyer's address) is kept when its order never completes. */
  RECEIPT_REQUEST_TTL: duration("1h"),
  /**
   * The receipt's review link (issue 22): <REVIEW_LINK_BASE_URL>/review/<token>, the token
   * signed with REVIEW_LINK_SECRET (customers lists it in its REVIEW_LINK_SECRETS) for the
   * order, valid REVIEW_LINK_TTL. Without the secret and the base URL, receipts carry no link.
   */
  REVIEW_LINK_SECRET: z.string().min(32, "must be 32+ characters (customers' REVIEW_LINK_SECRETS lists it)").optional(),
  /** The admin web's public address (its /review/<token> page needs no sign-in). */
  REVIEW_LINK_BASE_URL: url(["http:", "https:"]).optional(),
  /** How long a receipt's review link works (customers keeps sales without a member SALE_MATCH_WINDOW, 7d). */
  REVIEW_LINK_TTL: duration("7d"),
  /** SMS: the provider's API (npm start runs the SMS simulator); unset, rules cannot name phone numbers. */
  SMS_PROVIDER_URL: url(["http:", "https:"]).optional(),
  /** notifications' API key at the SMS provider. */
  SMS_API_KEY: z.string().min(32, "must be at least 32 characters").optional(),
  /** The sender name or number SMS go out from. */
  SMS_FROM: z.string().min(1).max(20).default("AdminKiosk"),
  /** Web Push (VAPID, base64url as web-push's generateVAPIDKeys makes them); unset, no push. */
  WEB_PUSH_VAPID_PUBLIC_KEY: z.string().regex(/^[A-Za-z0-9_-]{80,100}$/, "must be a base64url P-256 public key (87 characters)").optional(),
  WEB_PUSH_VAPID_PRIVATE_KEY: z.string().regex(/^[A-Za-z0-9_-]{40,50}$/, "must be a base64url P-256 private key (43 characters)").optional(),
  /** The VAPID subject push services may contact (mailto: or https:). */
  WEB_PUSH_SUBJECT: z.string().regex(/^(mailto:|https:\/\/)\S+$/, "must be a mailto: or https: URL").default("mailto:alerts@adminkiosk.local"),
};

export type NotificationsConfig = z.infer<z.ZodObject<typeof notificationsConfigShape>>;

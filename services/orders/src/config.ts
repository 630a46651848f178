import { z } from "zod";
import { baseConfigShape, port, url } from "@adminkiosk/runtime";

export const ordersConfigShape = {
  ...baseConfigShape,
  ORDERS_PORT: port(7005),
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  /** auth's revocation keys (ended sessions, revoked devices) live here. */
  REDIS_URL: url(["redis:", "rediss:"]),
  /** Consumes PAYMENTS and CATALOG; publishes orders.* to the stream ORDERS through the outbox. */
  NATS_URL: url(["nats:", "tls:"]),
  AUTH_JWKS_URL: url(["http:", "https:"]),
  /** auth, where orders obtains its own service token (it calls catalog and payments as orders). */
  AUTH_URL: url(["http:", "https:"]),
  /** orders' client secret, as auth's SERVICE_SECRETS lists it for "orders" (32+ characters). */
  SERVICE_SECRET: z.string().min(32, "must be orders' client secret from auth's SERVICE_SECRETS (32+ characters)"),
  CATALOG_URL: url(["http:", "https:"]),
  PAYMENTS_URL: url(["http:", "https:"]),
  /**
   * The Ed25519 private key tickets are signed with, as a JWK (JSON with kty OKP, crv
   * Ed25519, d and x). Scanners get its public half from GetTicketVerificationKeys.
   */
  ORDERS_TICKET_SIGNING_KEY: z.string().min(1, "must be an Ed25519 private JWK (npm start generates one)"),
  /** Public JWKs (a JSON array) of keys rotated out, still published so tickets they signed verify. */
  ORDERS_TICKET_PREVIOUS_KEYS: z.string().default("[]"),
  /** How long catalog holds an order's stock and seats while the payment is confirmed (seconds). */
  ORDER_HOLD_SECONDS: z.coerce.number().int().min(30).max(3600).default(600),
  /** An order still 'created' (no payment started) this long past its hold is failed and its reservation released (abandoned.ts). */
  ORDERS_ABANDONED_MARGIN_SECONDS: z.coerce.number().int().min(0).max(3600).default(60),
  /** How often every replica looks for such orders. */
  ORDERS_ABANDONED_SWEEP_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  /** Offline selling (docs/offline.md): a card may be taken offline up to this much per sale (minor units). */
  ORDERS_OFFLINE_CARD_FLOOR_LIMIT_MINOR: z.coerce.number().int().min(0).max(1_000_000).default(5_000),
  /** A ticket-signing delegation to a kiosk lasts at most this long (and never past its lease's expiry). */
  ORDERS_DELEGATION_MAX_SECONDS: z.coerce.number().int().min(60).max(86_400).default(14_400),
  /** The durable JetStream consumers the completion worker reads with; replicas share them. */
  PAYMENTS_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]+$/).default("orders-payments"),
  CATALOG_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]+$/).default("orders-catalog"),
};

export type OrdersConfig = z.infer<z.ZodObject<typeof ordersConfigShape>>;

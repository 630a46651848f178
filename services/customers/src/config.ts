import { z } from "zod";
import { baseConfigShape, duration, port, url } from "@adminkiosk/runtime";
import { isPhoneRegion } from "./contacts.js";

const consumerName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'");
const flag = z
  .enum(["true", "false"], { message: 'must be "true" or "false"' })
  .default("false")
  .transform((v) => v === "true");

export const customersConfigShape = {
  ...baseConfigShape,
  CUSTOMERS_PORT: port(7009),
  /** customers' schema: members, points ledger, sales, back-in-stock requests, reviews, calls for help. */
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  /** auth's revocation keys (ended sessions, revoked devices). */
  REDIS_URL: url(["redis:", "rediss:"]),
  /** orders' events (stream ORDERS), catalog's restocks (stream CATALOG); customers' own events go to stream CUSTOMERS. */
  NATS_URL: url(["nats:", "tls:"]),
  AUTH_JWKS_URL: url(["http:", "https:"]),
  /** The durable consumer of completed orders on stream ORDERS (tests sharing one NATS give each process its own). */
  ORDERS_EVENTS_CONSUMER: consumerName.default("customers-orders"),
  /** The durable consumer of restocks on stream CATALOG. */
  CATALOG_EVENTS_CONSUMER: consumerName.default("customers-catalog"),
  /** The durable consumer of fleet's registry events on stream FLEET (kiosks' groups and locations, for nearby back-in-stock requests). */
  FLEET_EVENTS_CONSUMER: consumerName.default("customers-fleet"),
  /** Phone numbers without a country code are read in this region (ISO 3166 code, libphonenumber's); "" requires international numbers. */
  CUSTOMERS_PHONE_REGION: z
    .string()
    .default("CZ")
    .refine((v) => v === "" || isPhoneRegion(v), 'must be a region code libphonenumber knows ("CZ", "DE", …) or ""'),
  /**
   * The secrets of receipts' review links (shared with notifications, which signs with its
   * REVIEW_LINK_SECRET): comma-separated, each 32+ characters, any of them accepted (rotation).
   * Empty: the public review RPCs answer FAILED_PRECONDITION.
   */
  REVIEW_LINK_SECRETS: z
    .string()
    .default("")
    .transform((v) => v.split(",").map((s) => s.trim()).filter(Boolean))
    .refine((l) => l.every((s) => s.length >= 32), "each secret must be 32+ characters"),
  /** Only when those consumers are first created: true starts them at the events published since this process started. */
  EVENTS_SINCE_START: flag,
  /** Points per order: floor(total in minor units / this). 100: one point per whole euro. */
  MINOR_UNITS_PER_POINT: z.coerce.number().int().min(1).max(1_000_000).default(100),
  /** Completed orders no member is attached to are kept this long (a kiosk may attach after checkout; reviews need the order). */
  SALE_MATCH_WINDOW: duration("7d"),
  /** Retention limit: a member with no activity (purchase, redemption, consent) this long is erased automatically. 0 keeps members. */
  MEMBER_RETENTION: duration("730d"),
  /** A back-in-stock request not restocked within this is expired and its contact forgotten. */
  BACK_IN_STOCK_TTL: duration("30d"),
  /** Idempotency keys of RedeemPoints are remembered this long. */
  IDEMPOTENCY_KEY_TTL: duration("7d"),
  /** How often retention is applied (one pass per replica; the statements are idempotent). */
  RETENTION_INTERVAL_MS: z.coerce.number().int().min(100).max(86_400_000).default(3_600_000),
};

export type CustomersConfig = z.infer<z.ZodObject<typeof customersConfigShape>>;

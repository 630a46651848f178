import { z } from "zod";
import { baseConfigShape, port, url } from "@adminkiosk/runtime";

export const aiConfigShape = {
  ...baseConfigShape,
  AI_PORT: port(7007),
  /** ai's schema: its sales history and the model registry. */
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  /** auth's revocation keys (ended sessions, revoked devices) live here. */
  REDIS_URL: url(["redis:", "rediss:"]),
  /** Completed orders arrive on stream ORDERS (durable consumer "ai-orders"). */
  NATS_URL: url(["nats:", "tls:"]),
  /** The durable consumer's name on stream ORDERS (tests sharing one NATS give each process its own). */
  ORDERS_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]+$/).default("ai-orders"),
  AUTH_JWKS_URL: url(["http:", "https:"]),
  /** How often each replica checks which model version serves (hot swap after another replica's Retrain/Rollback). */
  AI_MODEL_REFRESH_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  /**
   * catalog's stock levels, read as ai with a service token (auth's SERVICE_SECRETS lists
   * "ai"). Without the three, ai forecasts but GetStockoutRisks/GetRestockPlan say so.
   */
  CATALOG_URL: url(["http:", "https:"]).optional(),
  AUTH_URL: url(["http:", "https:"]).optional(),
  /** ai's client secret, as auth's SERVICE_SECRETS lists it for "ai" (32+ characters). */
  SERVICE_SECRET: z.string().min(32, "must be ai's client secret from auth's SERVICE_SECRETS (32+ characters)").optional(),
  /** How often catalog's stock levels are read and the stock-out risks re-evaluated (one replica at a time). */
  AI_STOCK_REFRESH_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  /** How often catalog's active products are read again into the product-search index (catalog publishes no product events). */
  AI_CATALOG_REFRESH_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  /** Hours until the next visit, when a request does not say. */
  AI_VISIT_INTERVAL_HOURS: z.coerce.number().int().min(1).max(336).default(72),
  /** The restock plan's service level, when a request does not say. */
  AI_SERVICE_LEVEL: z.coerce.number().min(0.5).max(0.999).default(0.95),
  /** ai.stockout.<kiosk>.predicted is published when the probability of running out before the next visit reaches this (.cleared when it falls back below). */
  AI_STOCKOUT_ALERT_PROBABILITY: z.coerce.number().min(0.01).max(1).default(0.5),
};

export type AiConfig = z.infer<z.ZodObject<typeof aiConfigShape>>;

import { z } from "zod";
import { baseConfigShape, port, url } from "@adminkiosk/runtime";
import { scheduleSetting } from "./schedule.js";

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
  /** Order baskets (for recommendations) older than this many days are pruned with their counts; 0 keeps them forever. */
  AI_BASKET_RETENTION_DAYS: z.coerce.number().int().min(0).max(3650).default(180),
  /** How often old baskets are pruned (one replica at a time). */
  AI_BASKET_PRUNE_INTERVAL_MS: z.coerce.number().int().min(100).max(86_400_000).default(3_600_000),
  /** Hours until the next visit, when a request does not say. */
  AI_VISIT_INTERVAL_HOURS: z.coerce.number().int().min(1).max(336).default(72),
  /** The restock plan's service level, when a request does not say. */
  AI_SERVICE_LEVEL: z.coerce.number().min(0.5).max(0.999).default(0.95),
  /** ai.stockout.<kiosk>.predicted is published when the probability of running out before the next visit reaches this (.cleared when it falls back below). */
  AI_STOCKOUT_ALERT_PROBABILITY: z.coerce.number().min(0.01).max(1).default(0.5),
  /** The durable consumer on stream LINK (kiosks' connections and telemetry: maintenance risk, who is online and healthy). */
  AI_LINK_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("ai-link"),
  /** Only when that consumer is first created: true starts it at the events published since this process started (tests sharing one NATS). */
  AI_LINK_EVENTS_SINCE_START: z
    .enum(["true", "false"], { message: 'must be "true" or "false"' })
    .default("false")
    .transform((v) => v === "true"),
  /** The durable consumer on stream CUSTOMERS (moderated reviews: approved ratings weigh in recommendations). */
  AI_CUSTOMERS_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("ai-customers"),
  /** Only when that consumer is first created: true starts it at the events published since this process started (tests sharing one NATS). */
  AI_CUSTOMERS_EVENTS_SINCE_START: z
    .enum(["true", "false"], { message: 'must be "true" or "false"' })
    .default("false")
    .transform((v) => v === "true"),
  /** A connected kiosk counts as online while its last telemetry sample is younger than this. */
  AI_TELEMETRY_STALE_SECONDS: z.coerce.number().int().min(30).max(86_400).default(600),
  /** Paper is due (ai.maintenance.<kiosk>.due) when it runs out within this many hours… */
  AI_PAPER_DUE_HOURS: z.coerce.number().min(1).max(168).default(8),
  /** …or is below this level (percent). */
  AI_PAPER_LOW_PERCENT: z.coerce.number().min(0).max(50).default(5),
  /** A printer or scanner is due when its probability of a fault within 24 h reaches this. */
  AI_FAULT_DUE_PROBABILITY: z.coerce.number().min(0.05).max(1).default(0.5),
  /** The temperature is due when it drifts this many °C from the kiosk's own baseline. */
  AI_TEMPERATURE_DRIFT_CELSIUS: z.coerce.number().min(1).max(30).default(6),
  /** How often kiosks online and healthy are checked for silent failures (one replica at a time). */
  AI_SILENT_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(300_000),
  /** The recent window (whole UTC hours of the healthy stretch) whose sales are compared with the forecast. */
  AI_SILENT_WINDOW_HOURS: z.coerce.number().int().min(2).max(48).default(6),
  /** A silent failure is detected when P(sales ≤ observed | forecast) falls below this (cleared at 100 × it). */
  AI_SILENT_FAILURE_PROBABILITY: z.coerce.number().min(1e-12).max(0.01).default(1e-4),
  /** Windows expecting fewer units than this (night hours) are not assessed. */
  AI_SILENT_MIN_EXPECTED_UNITS: z.coerce.number().min(1).max(10_000).default(8),
  /** Scheduled retraining: "off", "daily@HH:MM" (UTC) or "every <n>m|h"; one replica trains per due time (schedule.ts). */
  AI_RETRAIN_SCHEDULE: scheduleSetting,
  /** A scheduled run claimed but not finished this long ago (its replica died) may be claimed by another. */
  AI_RETRAIN_LEASE_MINUTES: z.coerce.number().int().min(5).max(1440).default(60),
};

export type AiConfig = z.infer<z.ZodObject<typeof aiConfigShape>>;

import { z } from "zod";
import { baseConfigShape, port, url } from "@adminkiosk/runtime";

export const catalogConfigShape = {
  ...baseConfigShape,
  CATALOG_PORT: port(7004),
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  /** auth's revocation keys (ended sessions, revoked devices) live here. */
  REDIS_URL: url(["redis:", "rediss:"]),
  /** Low-stock and expired-reservation events go to JetStream (stream CATALOG) through the outbox. */
  NATS_URL: url(["nats:", "tls:"]),
  AUTH_JWKS_URL: url(["http:", "https:"]),
  /** How long a reservation holds stock and seats when the caller does not say (seconds). */
  RESERVATION_TTL_SECONDS: z.coerce.number().int().min(1).max(3600).default(600),
  /** How often overdue reservations are expired (every replica sweeps; SKIP LOCKED shares the work). */
  RESERVATION_SWEEP_MS: z.coerce.number().int().min(100).max(3_600_000).default(1_000),
  /** Reservations a kiosk may hold at once (bulk-holding abuse, OWASP API6). */
  MAX_HELD_RESERVATIONS_PER_KIOSK: z.coerce.number().int().min(1).max(10_000).default(50),
  /** The offline policy (docs/offline.md): what a kiosk may lease for itself; operators grant more. */
  LEASE_MAX_UNITS_PER_SKU: z.coerce.number().int().min(1).max(1000).default(20),
  /** Units across one kiosk's active leases. */
  LEASE_MAX_UNITS_PER_KIOSK: z.coerce.number().int().min(1).max(100_000).default(100),
  /** Seats across one kiosk's active leases. */
  LEASE_MAX_SEATS_PER_KIOSK: z.coerce.number().int().min(0).max(10_000).default(20),
  LEASE_MAX_TTL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(14_400),
  LEASE_MAX_ACTIVE_PER_KIOSK: z.coerce.number().int().min(1).max(100).default(3),
  /** A lease's selling time when the request names none (seconds). */
  LEASE_DEFAULT_TTL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(7_200),
  /** How long unsold leased units and seats stay held after a lease's expiry, for sales made before it to sync. */
  LEASE_SYNC_GRACE_SECONDS: z.coerce.number().int().min(0).max(7 * 86_400).default(86_400),
  /**
   * Leases sized from ai's demand forecast (forecast_hours): catalog asks ai as itself (auth's
   * SERVICE_SECRETS lists "catalog"). Without the three, such leases use the fallback.
   */
  AI_URL: url(["http:", "https:"]).optional(),
  AUTH_URL: url(["http:", "https:"]).optional(),
  /** catalog's client secret, as auth's SERVICE_SECRETS lists it for "catalog" (32+ characters). */
  SERVICE_SECRET: z.string().min(32, "must be catalog's client secret from auth's SERVICE_SECRETS (32+ characters)").optional(),
  /** Units of a SKU a forecast-sized lease gets when ai cannot answer (at most the item's cap). */
  LEASE_FORECAST_FALLBACK_UNITS: z.coerce.number().int().min(0).max(1000).default(5),
};

export type CatalogConfig = z.infer<z.ZodObject<typeof catalogConfigShape>>;

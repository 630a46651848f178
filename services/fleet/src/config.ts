import { z } from "zod";
import { baseConfigShape, port, url } from "@adminkiosk/runtime";

export const fleetConfigShape = {
  ...baseConfigShape,
  FLEET_PORT: port(7002),
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  /** auth's revocation keys (ended sessions, revoked devices) live here. */
  REDIS_URL: url(["redis:", "rediss:"]),
  AUTH_JWKS_URL: url(["http:", "https:"]),
  /** auth's API, for revoking a deleted kiosk's device credential. */
  AUTH_URL: url(["http:", "https:"]),
  /** A kiosk not heard from for this long counts as offline. */
  KIOSK_OFFLINE_AFTER_SECONDS: z.coerce.number().int().min(5).max(3600).default(90),
};

export type FleetConfig = z.infer<z.ZodObject<typeof fleetConfigShape>>;

import { z } from "zod";
import { baseConfigShape, port, url } from "@adminkiosk/runtime";

export const fleetConfigShape = {
  ...baseConfigShape,
  FLEET_PORT: port(7002),
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  /** auth's revocation keys (ended sessions, revoked devices) live here. */
  REDIS_URL: url(["redis:", "rediss:"]),
  /** link's events (connections, telemetry) arrive through JetStream. */
  NATS_URL: url(["nats:", "tls:"]),
  /** The durable JetStream consumer fleet reads link's events with; replicas share it. */
  /** How often kiosks shown online are checked against link's presence records in Redis. */
  PRESENCE_SWEEP_MS: z.coerce.number().int().min(200).max(600_000).default(30_000),
  LINK_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("fleet"),
  AUTH_JWKS_URL: url(["http:", "https:"]),
  /** auth's API, for revoking a deleted kiosk's device credential. */
  AUTH_URL: url(["http:", "https:"]),
};

export type FleetConfig = z.infer<z.ZodObject<typeof fleetConfigShape>>;

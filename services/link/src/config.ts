import { hostname } from "node:os";
import { z } from "zod";
import { baseConfigShape, port, url } from "@adminkiosk/runtime";

export const linkConfigShape = {
  ...baseConfigShape,
  LINK_PORT: port(7003),
  /** Presence (which replica holds which kiosk) and auth's revocation keys. */
  REDIS_URL: url(["redis:", "rediss:"]),
  NATS_URL: url(["nats:", "tls:"]),
  AUTH_JWKS_URL: url(["http:", "https:"]),
  /** This replica's name in presence records and events. */
  LINK_REPLICA_ID: z.string().min(1).max(64).default(`${hostname()}-${process.pid}`),
  HEARTBEAT_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(300).default(30),
  /** A kiosk silent for this long loses its presence record. */
  PRESENCE_TTL_SECONDS: z.coerce.number().int().min(3).max(3600).default(90),
  /** A kiosk that sends nothing for this long loses its stream (3 heartbeats by default). */
  SILENT_TIMEOUT_SECONDS: z.coerce.number().int().min(2).max(3600).default(90),
  /** How long a new stream may take to say hello. */
  HELLO_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  /** Messages waiting for a kiosk that does not read; past this its stream is ended. */
  OUTBOX_LIMIT: z.coerce.number().int().min(8).max(10_000).default(256),
};

export type LinkConfig = z.infer<z.ZodObject<typeof linkConfigShape>>;

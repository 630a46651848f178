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
  AUTH_JWKS_URL: url(["http:", "https:"]),
  /** How often each replica checks which model version serves (hot swap after another replica's Retrain/Rollback). */
  AI_MODEL_REFRESH_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
};

export type AiConfig = z.infer<z.ZodObject<typeof aiConfigShape>>;

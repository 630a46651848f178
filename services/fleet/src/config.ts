import { tmpdir } from "node:os";
import { join } from "node:path";
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
  /** How often kiosks shown online are checked against link's presence records in Redis. */
  PRESENCE_SWEEP_MS: z.coerce.number().int().min(200).max(600_000).default(30_000),
  /** A command sent but not acknowledged after this long is sent again (kiosks dedupe by id). */
  COMMAND_RESEND_MS: z.coerce.number().int().min(500).max(3_600_000).default(15_000),
  /** How often commands past their TTL are expired and leftover deliveries retried. */
  COMMAND_SWEEP_MS: z.coerce.number().int().min(100).max(600_000).default(2_000),
  /** How long to wait for the link replica that holds a kiosk to take a delivery. */
  DELIVER_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(2_000),
  /**
   * A bulk action changing the configuration or group of more kiosks than this needs a
   * second admin's approval (reboots and revocations always do).
   */
  BULK_APPROVAL_OVER: z.coerce.number().int().min(0).max(1_000_000).default(100),
  /** How often bulk jobs roll forward. */
  JOB_TICK_MS: z.coerce.number().int().min(50).max(60_000).default(500),
  /** Telemetry samples are kept this many days (whole daily partitions are dropped). */
  TELEMETRY_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  /**
   * Only when fleet creates its durable consumer (a new fleet database): true starts it at
   * the events published since this process started, instead of all that stream LINK
   * still holds (up to 7 days). Tests sharing one NATS use it.
   */
  LINK_EVENTS_SINCE_START: z
    .enum(["true", "false"], { message: 'must be "true" or "false"' })
    .default("false")
    .transform((v) => v === "true"),
  /** The durable JetStream consumer fleet reads link's events with; replicas share it. */
  LINK_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("fleet"),
  /** The durable JetStream consumer of stream ORDERS feeding the sales the fleet query filters on. */
  ORDERS_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("fleet-orders"),
  /** The durable JetStream consumer of stream CATALOG feeding the stock levels the fleet query filters on (stock("SKU")). */
  CATALOG_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("fleet-catalog"),
  /** The durable JetStream consumer of stream NOTIFICATIONS feeding the open alerts the fleet query filters on (alerts). */
  NOTIFICATIONS_EVENTS_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'").default("fleet-notifications"),
  /**
   * Releases (issue 17): the Ed25519 private JWK manifests are signed with (empty: fleet
   * cannot create releases; npm start generates one), and the public JWKs of earlier keys
   * still published for kiosks (a JSON array; key rotation, docs/security.md).
   */
  FLEET_RELEASE_SIGNING_KEY: z.string().default(""),
  FLEET_RELEASE_PREVIOUS_KEYS: z.string().default("[]"),
  /** Where artifacts are stored: "fs" (FLEET_ARTIFACT_DIR) or "s3" (FLEET_ARTIFACT_S3_*). */
  FLEET_ARTIFACT_STORE: z.enum(["fs", "s3"], { message: 'must be "fs" or "s3"' }).default("fs"),
  /** The filesystem store's directory (and the S3 store's spool for uploads on their way to the bucket). */
  FLEET_ARTIFACT_DIR: z.string().min(1).default(join(tmpdir(), "adminkiosk-fleet-artifacts")),
  /** The largest artifact an upload may carry. */
  FLEET_ARTIFACT_MAX_BYTES: z.coerce.number().int().min(1).max(64 * 1024 ** 3).default(2 * 1024 ** 3),
  FLEET_ARTIFACT_S3_ENDPOINT: z.union([z.literal(""), url(["http:", "https:"])]).default(""),
  FLEET_ARTIFACT_S3_BUCKET: z.string().regex(/^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be an S3 bucket name").default(""),
  FLEET_ARTIFACT_S3_REGION: z.string().default("us-east-1"),
  FLEET_ARTIFACT_S3_PREFIX: z.string().default("artifacts/"),
  FLEET_ARTIFACT_S3_ACCESS_KEY_ID: z.string().default(""),
  FLEET_ARTIFACT_S3_SECRET_ACCESS_KEY: z.string().default(""),
  FLEET_ARTIFACT_S3_SESSION_TOKEN: z.string().default(""),
  /**
   * The width of kiosk_facts' buckets (per-kiosk counts of sales, samples, reconnects that rollout
   * gates read): an hour in production; tests at a speed-up use seconds.
   */
  FLEET_FACTS_BUCKET_SECONDS: z.coerce.number().int().min(1).max(86_400).default(3_600),
  /** Kiosks of each cohort whose forecast a gate asks ai for (sales_vs_forecast); 0: not compared. */
  ROLLOUT_GATE_FORECAST_KIOSKS: z.coerce.number().int().min(0).max(1_000).default(20),
  /** How often rollouts move along (send installs, bake, gates). */
  ROLLOUT_TICK_MS: z.coerce.number().int().min(50).max(60_000).default(1_000),
  /** An install a kiosk has not finished this long after it was sent counts as failed. */
  ROLLOUT_INSTALL_TTL_MS: z.coerce.number().int().min(10_000).max(7 * 24 * 3_600_000).default(3_600_000),
  /**
   * AUTO rollout windows from ai's forecast (docs/rollouts.md): fleet asks ai's GetForecast as
   * itself (auth's SERVICE_SECRETS lists "fleet"). Without AI_URL and SERVICE_SECRET, AUTO keeps
   * the 02:00-05:00 fallback and the rollout says so.
   */
  AI_URL: url(["http:", "https:"]).optional(),
  /** fleet's client secret, as auth's SERVICE_SECRETS lists it for "fleet" (32+ characters). */
  SERVICE_SECRET: z.string().min(32, "must be fleet's client secret from auth's SERVICE_SECRETS (32+ characters)").optional(),
  /** The SKU whose hourly forecast gives a kiosk's hour profile (ai's hour shares are per kiosk, the same for every SKU it sells). */
  ROLLOUT_AUTO_SKU: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "must be a SKU").default("SNK-WATER-05"),
  /** At most this many kiosks of a rollout are asked about one by one; the rest take their group's profile (docs/rollouts.md). */
  ROLLOUT_AUTO_MAX_FORECASTS: z.coerce.number().int().min(0).max(100_000).default(2_000),
  /** AUTO's window length in hours (the quietest consecutive hours). */
  ROLLOUT_AUTO_WINDOW_HOURS: z.coerce.number().int().min(1).max(23).default(3),
  /**
   * Ticketed events as rollout blackouts (docs/rollouts.md, rollouts/blackouts.ts): fleet reads
   * catalog's ListEvents as itself (SERVICE_SECRET). Without CATALOG_URL events are not checked.
   */
  CATALOG_URL: url(["http:", "https:"]).optional(),
  /** A kiosk this close to an event's venue (km) gets no install during the event's blackout. */
  ROLLOUT_EVENT_RADIUS_KM: z.coerce.number().min(0).max(500).default(2),
  /** The blackout starts this long before an event's start (doors, arrivals)… */
  ROLLOUT_EVENT_BEFORE_HOURS: z.coerce.number().min(0).max(48).default(3),
  /** …and ends this long after it (catalog's events have no end time: the event's length and the crowd leaving). */
  ROLLOUT_EVENT_AFTER_HOURS: z.coerce.number().min(0).max(72).default(5),
  /** How often fleet reads catalog's events. */
  ROLLOUT_EVENTS_REFRESH_MS: z.coerce.number().int().min(200).max(3_600_000).default(60_000),
  /** A last good read older than this keeps every AUTO and EXPLICIT rollout from sending installs. */
  ROLLOUT_EVENTS_MAX_AGE_MS: z.coerce.number().int().min(1_000).max(7 * 24 * 3_600_000).default(3_600_000),
  AUTH_JWKS_URL: url(["http:", "https:"]),
  /** auth's API, for revoking a deleted kiosk's device credential. */
  AUTH_URL: url(["http:", "https:"]),
};

export type FleetConfig = z.infer<z.ZodObject<typeof fleetConfigShape>>;

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
  /** Heartbeats are collected and refresh their kiosks' presence in one Redis pipeline this often. */
  PRESENCE_FLUSH_MS: z.coerce.number().int().min(10).max(10_000).default(1_000),
  /** A kiosk silent for this long loses its presence record. */
  PRESENCE_TTL_SECONDS: z.coerce.number().int().min(3).max(3600).default(90),
  /** A kiosk that sends nothing for this long loses its stream (3 heartbeats by default). */
  SILENT_TIMEOUT_SECONDS: z.coerce.number().int().min(2).max(3600).default(90),
  /**
   * Admission control for reconnect storms: streams opening at once (credential check, hello,
   * presence, the connected event), and streams waiting for a turn; past that a new stream is
   * refused with UNAVAILABLE and grpc-retry-pushback-ms (the SDK waits that long, with jitter).
   */
  /**
   * An opening stream mostly waits (its hello, Redis, JetStream's PubAck): a few round trips that
   * on a loaded machine take ~0.5 s or more together, so at 256 at once the wait capped the rate
   * (bench/RESULTS.md, stop 14); a held stream costs ~15 KiB, so 2,048 opening cost ~30 MiB.
   */
  LINK_CONNECT_CONCURRENCY: z.coerce.number().int().min(1).max(100_000).default(2_048),
  /**
   * A waiting stream costs less than a held one (its HTTP/2 stream and call, ~10 of its ~15 KiB),
   * and a refused one costs CPU on both sides and comes back later: a queue as deep as the streams
   * a replica is sized to hold costs no memory it would not spend holding them, and a 100k storm
   * then waits in it, with no refusal (48.5 s to all back against 86.8 s with 32,768 and 52,104
   * pushbacks, bench/RESULTS.md stop 14).
   */
  LINK_ACCEPT_QUEUE: z.coerce.number().int().min(0).max(1_000_000).default(100_000),
  /**
   * Streams a second the replica is assumed to open until it has measured its rate: the turns of a herd
   * refused in the storm's first second (before anything is measured) are spread at 1.5 times
   * this. Above the real rate they come back into the queue early, below it the replica idles.
   */
  LINK_CONNECT_RATE: z.coerce.number().int().min(1).max(1_000_000).default(2_000),
  /** How long a new stream may take to say hello. */
  HELLO_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  /** Messages waiting for a kiosk that does not read; past this its stream is ended. */
  OUTBOX_LIMIT: z.coerce.number().int().min(8).max(10_000).default(256),
  /**
   * Each stream's budget, a token bucket per stream: messages up per second, and how
   * many may come at once. A kiosk on the SDK sends about one message every 10 s
   * (a heartbeat every 30 s, telemetry every 15 s, an ack and a result per command);
   * after an outage it resends its outbox at once (up to 10 batches). Over the budget
   * the stream ends with ResourceExhausted.
   */
  LINK_MESSAGE_RATE: z.coerce.number().min(0.1).max(10_000).default(20),
  LINK_MESSAGE_BURST: z.coerce.number().int().min(10).max(100_000).default(200),
  /** The same for telemetry samples (a batch holds up to 500; the SDK keeps up to 1000 unacked). */
  LINK_SAMPLE_RATE: z.coerce.number().min(1).max(1_000_000).default(200),
  LINK_SAMPLE_BURST: z.coerce.number().int().min(500).max(10_000_000).default(5_000),
  /**
   * Telemetry samples that break the contract are dropped one by one (a broken sensor must
   * not cost the kiosk its stream); a stream sending more of them than this rate (bursts
   * of LINK_INVALID_SAMPLE_BURST) is sending garbage and is cut off like a flood.
   */
  LINK_INVALID_SAMPLE_RATE: z.coerce.number().min(0.01).max(100_000).default(1),
  LINK_INVALID_SAMPLE_BURST: z.coerce.number().int().min(1).max(1_000_000).default(100),
  /** A kiosk cut off for going over its budget may not open a new stream for this long (0: no cool-down). */
  LINK_RATE_COOLDOWN_SECONDS: z.coerce.number().int().min(0).max(3600).default(30),
};

export type LinkConfig = z.infer<z.ZodObject<typeof linkConfigShape>>;

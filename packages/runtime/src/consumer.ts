// Durable JetStream consumers, written once for every service (the outbox relay's other
// half). A consumer pulls from a durable consumer it creates or updates itself, applies
// each message in a transaction together with an inbox row (so a redelivery changes
// nothing twice), acks only after that commit, retries a failing message a bounded number
// of times with a backoff, and dead-letters what cannot be applied: terminated at
// JetStream, kept in the service's dead_letters table with the reason, counted, logged
// once, listable and replayable through adminkiosk.ops.v1.DeadLetterService.
//
//   const consumer = startConsumer({
//     pool, nats, log, stream: "PAYMENTS", durable: "orders-payments", filter: "payments.intent.>",
//     apply: async (tx, msg) => { const e = decodeEvent(PaymentSucceededEventSchema, msg); … },
//   });
//   startService({ …, consumers: [consumer] });   // mounts DeadLetterService, registers the metrics
//
// Three ways to handle messages (exactly one):
//   apply(tx, msg)           one message in a transaction the consumer opens, its inbox row claimed in it;
//   applyBatch(tx, msgs)     up to batchSize fresh messages in one transaction (fleet's link events),
//                            afterCommit(result) once it committed;
//   handle(msg, { once })    free-form (calls to other services first), once(tx => …) opens the
//                            transaction with the inbox row; once returns undefined for a repeat.
//
// Failures. A handler error is classified (classifyFailure, or the consumer's own classify):
//   permanent    PermanentError (e.g. decodeEvent's "undecodable"), PostgreSQL data and
//                integrity errors (SQLSTATE classes 22 and 23): dead-lettered at once;
//   unavailable  PostgreSQL, a peer service or the network down: redelivered with a backoff,
//                never dead-lettered (the message is not at fault), logged once per outage;
//   transient    anything else: redelivered with a backoff, dead-lettered ("max deliveries")
//                when it still fails on delivery maxDeliver.
// A failing batch is retried message by message at once, so one bad message holds nothing back.
// JetStream's own max_deliver stays unlimited: at its limit JetStream would drop the message
// silently, during an outage too; the consumer enforces the bound and keeps what it gives up.
//
// Messages a handler applies idempotently by keys of its own (fleet's telemetry: a sample is
// refused by its primary key, its counts come from the rows actually stored) can skip the inbox:
// `idempotentByKeys: msg => …` (or `true` for all) names them, and the consumer claims no
// consumer_inbox row for them — every delivery, a redelivery too, reaches the handler (the
// first of each key in a batch), so the handler's keys are all that keeps it once. For a
// high-volume stream the inbox insert is a large share of a batch (fleet's telemetry drain: about
// a quarter). Their repeats are counted "handled", not "duplicate": the consumer cannot tell.
import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { Counter, Gauge, type Registry } from "prom-client";
import { backoffDelay, runForever, sleep, streamMissing, type BackoffOptions } from "./backoff.js";
import type { Logger } from "./logger.js";
import type { NatsConnection } from "./nats.js";
import type { Pool, PoolClient } from "./postgres.js";
import { traceConsume } from "./tracing.js";

/** A message as handlers see it (also what a replay hands them, rebuilt from the dead letter). */
export interface ConsumedMessage {
  subject: string;
  stream: string;
  /** The stream sequence. */
  seq: number;
  /** Nats-Msg-Id, "" when the producer set none (the outbox relay sets its row id; link its own ids). */
  msgId: string;
  /** The inbox key: `id:<Nats-Msg-Id>`, or `seq:<stream sequence>` without one. */
  key: string;
  headers: Record<string, string>;
  data: Uint8Array;
  /** How often it was delivered, this time included. */
  deliveries: number;
  /** When JetStream stored it (ms since the epoch); absent for a replayed dead letter. */
  publishedMs?: number;
}

/** A handler error that no retry will cure: the message is dead-lettered at once with `reason`. */
export class PermanentError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "PermanentError";
  }
}

/** The message's protobuf body; bytes that do not decode are a PermanentError ("undecodable"). */
export function decodeEvent<D extends DescMessage>(schema: D, msg: Pick<ConsumedMessage, "data" | "subject">): MessageShape<D> {
  try {
    return fromBinary(schema, msg.data);
  } catch (err) {
    throw new PermanentError("undecodable", `${msg.subject}: not a ${schema.typeName} (${(err as Error).message})`, { cause: err });
  }
}

export type FailureKind = "permanent" | "transient" | "unavailable";
export interface Failure {
  kind: FailureKind;
  /** For the dead letter and the metric: why it is permanent. */
  reason: string;
}

const unavailableCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);
const unavailableMessages = /Connection terminated|timeout exceeded when trying to connect|not queryable|Cannot use a pool after calling end/i;

/**
 * What a handler error means for its message. Pure: looks only at the error (and its causes).
 *   PermanentError                           → permanent, its reason
 *   PostgreSQL class 22 (data) / 23 (integrity) → permanent, "refused by the database"
 *   PostgreSQL classes 08, 53, 57 (not 57014), 58; connection errors; Connect Unavailable
 *   and DeadlineExceeded                     → unavailable
 *   anything else (40001 serialization, a handler's own "not yet")  → transient
 */
export function classifyFailure(err: unknown): Failure {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof PermanentError) return { kind: "permanent", reason: e.reason };
    if (e instanceof ConnectError) {
      if (e.code === Code.Unavailable || e.code === Code.DeadlineExceeded) return { kind: "unavailable", reason: "unavailable" };
      continue;
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && !unavailableCodes.has(code)) {
      const cls = code.slice(0, 2);
      if (cls === "22" || cls === "23") return { kind: "permanent", reason: "refused by the database" };
      if (cls === "08" || cls === "53" || cls === "58" || (cls === "57" && code !== "57014")) return { kind: "unavailable", reason: "unavailable" };
      return { kind: "transient", reason: "transient" };
    }
    if (typeof code === "string" && unavailableCodes.has(code)) return { kind: "unavailable", reason: "unavailable" };
    if (e instanceof AggregateError && e.errors.some((inner) => classifyFailure(inner).kind === "unavailable")) return { kind: "unavailable", reason: "unavailable" };
    if (e instanceof Error && unavailableMessages.test(e.message)) return { kind: "unavailable", reason: "unavailable" };
  }
  return { kind: "transient", reason: "transient" };
}

/** The error as stored in a dead letter: SQLSTATE, message and causes, at most 2000 characters. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    const message = e instanceof Error ? e.message : String(e);
    parts.push(`${typeof code === "string" ? `[${code}] ` : ""}${message}`);
  }
  return parts.join(": caused by ").slice(0, 2000);
}

/** The counters every consumer of the process shares (labelled by consumer). */
const metrics = {
  messages: new Counter({
    name: "adminkiosk_consumer_messages_total",
    help: "Messages a durable JetStream consumer finished with, by consumer and outcome (handled, duplicate, retried, dead_lettered).",
    labelNames: ["consumer", "outcome"],
    registers: [],
  }),
  deadLetters: new Counter({
    name: "adminkiosk_consumer_dead_letters_total",
    help: "Messages a durable JetStream consumer gave up on (terminated and kept in dead_letters), by consumer and reason.",
    labelNames: ["consumer", "reason"],
    registers: [],
  }),
};

/** The consumers running in this process, for the lag gauge (asked on each scrape). */
const running = new Map<string, { stream: string; nats: NatsConnection | Promise<NatsConnection> }>();

/**
 * Messages each durable consumer has yet to take (JetStream's num_pending) and has taken but
 * not acked (num_ack_pending): its lag, read from JetStream when Prometheus scrapes (one
 * consumer-info request per consumer and scrape, at most a second; nothing between scrapes).
 */
const lag = new Gauge({
  name: "adminkiosk_consumer_pending_messages",
  help: "Messages a durable JetStream consumer has not finished with, read from JetStream at scrape time: state pending (not yet delivered) or ack_pending (delivered, not acked).",
  labelNames: ["consumer", "stream", "state"],
  registers: [],
  async collect() {
    this.reset();
    await Promise.all(
      [...running].map(async ([durable, c]) => {
        try {
          const nc = await Promise.race([Promise.resolve(c.nats), sleep(1_000).then(() => undefined)]);
          if (!nc) return;
          const jsm = await jetstreamManager(nc, { timeout: 1_000 });
          const info = await jsm.consumers.info(c.stream, durable);
          this.set({ consumer: durable, stream: c.stream, state: "pending" }, info.num_pending);
          this.set({ consumer: durable, stream: c.stream, state: "ack_pending" }, info.num_ack_pending);
        } catch {
          // Not created yet, or NATS away: no sample (the consumer's own logs say why).
        }
      }),
    );
  },
});

export function registerConsumerMetrics(registry: Registry): void {
  if (!registry.getSingleMetric("adminkiosk_consumer_messages_total")) registry.registerMetric(metrics.messages);
  if (!registry.getSingleMetric("adminkiosk_consumer_dead_letters_total")) registry.registerMetric(metrics.deadLetters);
  if (!registry.getSingleMetric("adminkiosk_consumer_pending_messages")) registry.registerMetric(lag);
}

interface CommonOptions {
  pool: Pool;
  /** May still be connecting. */
  nats: NatsConnection | Promise<NatsConnection>;
  log: Logger;
  stream: string;
  /** The durable consumer's name at JetStream; also the dead letters' `consumer`. */
  durable: string;
  filter: string;
  /** When the durable is first created: deliver from this time on (default: all the stream holds). */
  since?: Date;
  /** How soon JetStream redelivers what a crashed replica had taken. Default 30 s. */
  ackWaitMs?: number;
  /** The delivery on which a still failing (transient) message is dead-lettered. Default 10. */
  maxDeliver?: number;
  /** Redelivery delays. Default 500 ms doubling to 30 s, 20 % jitter. */
  retryBackoff?: BackoffOptions;
  /** Batches (or messages) worked on at once. Default 1. */
  concurrency?: number;
  /** Overrides classifyFailure for the errors it knows (may also repair something first). */
  classify?: (err: unknown) => Failure | undefined | Promise<Failure | undefined>;
  /** Inbox rows outlive redelivery by this much: longer than the stream keeps messages. Default 8 days. */
  inboxRetentionDays?: number;
  /**
   * The messages (all of them with `true`) the handler applies so that a repeat changes nothing by
   * keys of its own, not the inbox's: no consumer_inbox row is claimed for them, and a redelivery
   * reaches the handler again. Only for effects that are idempotent by their own keys —
   * counters, notices or anything derived from "this message arrived" must come from what the
   * keys let in (e.g. rows an INSERT … ON CONFLICT DO NOTHING returned). Default: none.
   */
  idempotentByKeys?: true | ((msg: ConsumedMessage) => boolean);
}

export type ConsumerOptions<T = unknown> = CommonOptions &
  (
    | { apply: (tx: PoolClient, msg: ConsumedMessage) => Promise<void> }
    | {
        applyBatch: (tx: PoolClient, msgs: ConsumedMessage[]) => Promise<T>;
        afterCommit?: (result: T) => void;
        batchSize?: number;
        /**
         * Called (synchronously) with a batch as soon as it is taken — while the batch before it
         * may still be in its transaction — so the handler can decode ahead (e.g. into a WeakMap
         * keyed by the messages, which applyBatch is then given). Repeats are among them; a throw
         * is ignored (applyBatch meets the problem again).
         */
        prepare?: (msgs: ConsumedMessage[]) => void;
      }
    | { handle: (msg: ConsumedMessage, ctx: { once<R>(work: (tx: PoolClient) => Promise<R>): Promise<R | undefined> }) => Promise<void> }
  );

export interface DurableConsumer {
  readonly durable: string;
  readonly stream: string;
  readonly pool: Pool;
  /** Runs the handler on a stored message (a dead letter's replay); throws what the handler threw. */
  replay(msg: ConsumedMessage): Promise<void>;
  classify(err: unknown): Promise<Failure>;
  stop(): Promise<void>;
}

/**
 * Opens a transaction that claims the messages' inbox rows and runs `work` with those claimed
 * now (the first of each key, in order); commits when it resolves, rolls back when it throws.
 * BEGIN and the claim go as one simple query (the keys as escaped literals): one round trip.
 * `inbox` is the stream and the durable ("LINK/notifications"): two durable consumers of one
 * stream in one service (notifications reads LINK twice) each apply every message once —
 * keyed by the stream alone, whichever claimed a message first made the other skip it.
 * Messages `unclaimed` names (idempotentByKeys) get no row: the first of each key goes to work.
 */
async function claimed<R>(
  pool: Pool,
  inbox: string,
  msgs: ConsumedMessage[],
  work: (tx: PoolClient, fresh: ConsumedMessage[]) => Promise<R>,
  unclaimed?: (msg: ConsumedMessage) => boolean,
): Promise<R> {
  const client = await pool.connect();
  try {
    const skip = unclaimed ? msgs.map(unclaimed) : undefined;
    const claim = skip ? msgs.filter((_, i) => !skip[i]) : msgs;
    const lit = (v: string) => client.escapeLiteral(v);
    let fresh: Set<string>;
    if (claim.length) {
      const results = (await client.query(
        `BEGIN; INSERT INTO consumer_inbox (stream, msg_key) SELECT ${lit(inbox)}, unnest(ARRAY[${claim.map((m) => lit(m.key)).join(",")}]::text[]) ON CONFLICT DO NOTHING RETURNING msg_key`,
      )) as unknown as { rows: { msg_key: string }[] }[];
      fresh = new Set(results[1]!.rows.map((r) => r.msg_key));
    } else {
      await client.query("BEGIN");
      fresh = new Set();
    }
    const seen = new Set<string>();
    const first = (m: ConsumedMessage, i: number) => {
      if (!skip?.[i]) return fresh.delete(m.key);
      if (seen.has(m.key)) return false;
      seen.add(m.key);
      return true;
    };
    const result = await work(client, msgs.filter(first));
    await client.query("COMMIT");
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

function toConsumed(m: JsMsg): ConsumedMessage {
  const headers: Record<string, string> = {};
  if (m.headers) for (const [k, v] of m.headers) headers[k] = v.join(", ");
  const msgId = m.headers?.get("Nats-Msg-Id") ?? "";
  return { subject: m.subject, stream: m.info.stream, seq: m.seq, msgId, key: msgId ? `id:${msgId}` : `seq:${m.seq}`, headers, data: m.data, deliveries: m.info.deliveryCount, publishedMs: m.info.timestampNanos / 1e6 };
}

export function startConsumer<T>(options: ConsumerOptions<T>): DurableConsumer {
  const { pool, log, stream, durable } = options;
  const maxDeliver = options.maxDeliver ?? 10;
  const concurrency = options.concurrency ?? 1;
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const retryBackoff = { initialMs: 500, maxMs: 30_000, jitter: 0.2, ...options.retryBackoff };
  const batchSize = "applyBatch" in options ? (options.batchSize ?? 100) : 1;
  const fields = { consumer: durable, stream };
  /** The inbox rows' scope (consumer_inbox.stream): this durable's own, see claim. */
  const inbox = `${stream}/${durable}`;
  const byKeys = options.idempotentByKeys;
  const unclaimed = byKeys === true ? () => true : byKeys;
  const abort = new AbortController();
  const counted = (outcome: string, n = 1) => n > 0 && metrics.messages.inc({ consumer: durable, outcome }, n);
  /** When each failing message first failed here (for its dead letter), forgotten once it is settled. */
  const firstFailure = new Map<string, Date>();
  let outage = false;

  /** Applies the messages; commits (and runs afterCommit) or throws. Returns how many were repeats. */
  const run = async (msgs: ConsumedMessage[]): Promise<number> => {
    if ("apply" in options) {
      const fresh = await claimed(
        pool,
        inbox,
        msgs,
        async (tx, [msg]) => {
          if (msg) await options.apply(tx, msg);
          return msg ? 1 : 0;
        },
        unclaimed,
      );
      return msgs.length - fresh;
    }
    if ("applyBatch" in options) {
      const done = await claimed(
        pool,
        inbox,
        msgs,
        async (tx, fresh) => (fresh.length ? { n: fresh.length, result: await options.applyBatch(tx, fresh) } : { n: 0 }),
        unclaimed,
      );
      if ("result" in done) {
        try {
          options.afterCommit?.(done.result as T);
        } catch (err) {
          log.error({ err, ...fields }, "consumer: after-commit step failed (the messages were applied)");
        }
      }
      return msgs.length - done.n;
    }
    let repeats = 0;
    for (const msg of msgs) {
      await options.handle(msg, {
        once: (work) =>
          claimed(
            pool,
            inbox,
            [msg],
            async (tx, fresh) => {
              if (fresh.length === 0) {
                repeats++;
                return undefined;
              }
              return work(tx);
            },
            unclaimed,
          ),
      });
    }
    return repeats;
  };

  const classify = async (err: unknown): Promise<Failure> => (await options.classify?.(err)) ?? classifyFailure(err);
  const idOf = (msg: ConsumedMessage) => `${msg.stream}:${msg.seq}`;
  const settled = (msg: ConsumedMessage) => firstFailure.delete(idOf(msg));
  const retryLater = (m: JsMsg, msg: ConsumedMessage) => {
    m.nak(backoffDelay(msg.deliveries, retryBackoff));
    counted("retried");
  };

  const deadLetter = async (msg: ConsumedMessage, reason: string, err: unknown) => {
    await pool.query(
      `INSERT INTO dead_letters (consumer, stream, stream_seq, subject, msg_id, headers, data, reason, error, first_failed_at, last_failed_at, deliveries)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), $11)
       ON CONFLICT (consumer, stream, stream_seq) DO UPDATE SET reason = EXCLUDED.reason, error = EXCLUDED.error,
         last_failed_at = EXCLUDED.last_failed_at, deliveries = GREATEST(dead_letters.deliveries, EXCLUDED.deliveries), replayed_at = NULL`,
      [durable, msg.stream, msg.seq, msg.subject, msg.msgId, JSON.stringify(msg.headers), Buffer.from(msg.data), reason, describeError(err), firstFailure.get(idOf(msg)) ?? new Date(), msg.deliveries],
    );
  };

  const failed = async (m: JsMsg, msg: ConsumedMessage, err: unknown, failure: Failure) => {
    const id = idOf(msg);
    if (!firstFailure.has(id)) {
      if (firstFailure.size >= 10_000) firstFailure.delete(firstFailure.keys().next().value!);
      firstFailure.set(id, new Date());
    }
    if (failure.kind === "transient" && msg.deliveries < maxDeliver) {
      retryLater(m, msg);
      // One line when a message first fails; its later attempts are debug (the metric counts them).
      if (msg.deliveries === 1) log.warn({ err, ...fields, subject: msg.subject, seq: msg.seq, maxDeliver }, "consumer: message failed; will retry");
      else log.debug({ err, ...fields, subject: msg.subject, seq: msg.seq, deliveries: msg.deliveries }, "consumer: message failed again");
      return;
    }
    const reason = failure.kind === "permanent" ? failure.reason : "max deliveries";
    try {
      await deadLetter(msg, reason, err);
    } catch (dlErr) {
      // Not recorded, so not given up on: delivered again later.
      retryLater(m, msg);
      log.debug({ err: dlErr, ...fields, seq: msg.seq }, "consumer: could not record a dead letter; will retry");
      return;
    }
    m.term(reason);
    settled(msg);
    counted("dead_lettered");
    metrics.deadLetters.inc({ consumer: durable, reason });
    log.error(
      { err, ...fields, subject: msg.subject, seq: msg.seq, msgId: msg.msgId, deliveries: msg.deliveries, reason },
      "consumer: message dead-lettered (kept in dead_letters; list and replay with adminkiosk.ops.v1.DeadLetterService)",
    );
  };

  /** Works a batch: applied and acked, or split, retried or dead-lettered. Never throws. */
  const work = async (batch: JsMsg[], msgs = batch.map(toConsumed)): Promise<void> => {
    try {
      // In the producer's trace (tracing.ts); just run(msgs) when tracing is off.
      const repeats = await traceConsume(stream, durable, msgs, () => run(msgs));
      batch.forEach((m) => m.ack());
      msgs.forEach(settled);
      counted("duplicate", repeats);
      counted("handled", msgs.length - repeats);
      if (outage) log.info(fields, "consumer: applying messages again");
      outage = false;
      return;
    } catch (err) {
      const failure = await classify(err).catch((): Failure => ({ kind: "transient", reason: "transient" }));
      if (failure.kind === "unavailable") {
        batch.forEach((m, i) => retryLater(m, msgs[i]!));
        if (!outage) log.warn({ err, ...fields }, "consumer: cannot apply messages (a dependency is unavailable); retrying with a backoff");
        outage = true;
        return;
      }
      if (batch.length > 1) {
        // One bad message must not hold the others back: each on its own, now.
        for (const m of batch) await work([m]);
        return;
      }
      await failed(batch[0]!, msgs[0]!, err, failure).catch((e: unknown) => log.error({ err: e, ...fields }, "consumer: failure handling failed"));
    }
  };

  const ensureDurable = async (nc: NatsConnection) => {
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    const ackWait = ackWaitMs * 1_000_000;
    const start = options.since ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: options.since.toISOString() } : { deliver_policy: DeliverPolicy.All };
    // Room for everything this replica may hold unacked: the batches being applied, the one
    // prepared ahead, the buffer and the pull outstanding. At JetStream's default (1,000) a
    // consumer of 2,000-message batches got 999 and 1 in turn, and never one to prepare ahead.
    const maxAckPending = Math.max(1_000, 8 * batchSize * concurrency);
    // The same configuration again is a no-op; a changed one (ack wait) is an update. The
    // stream not existing yet fails the add, and the loop retries (waiting for its owner to
    // create it, without a warning: the update's "consumer not found" used to hide that).
    await jsm.consumers
      .add(stream, { durable_name: durable, filter_subject: options.filter, ack_policy: AckPolicy.Explicit, ack_wait: ackWait, max_deliver: -1, max_ack_pending: maxAckPending, ...start })
      .catch(async (err: unknown) => {
        if (streamMissing(err)) throw err;
        await jsm.consumers.update(stream, durable, { ack_wait: ackWait, max_deliver: -1, max_ack_pending: maxAckPending });
      });
  };

  let current: ConsumerMessages | undefined;
  let wake: (() => void) | undefined;
  const session = async (ready: () => void) => {
    const nc = await Promise.race([Promise.resolve(options.nats), new Promise<never>((_, reject) => setTimeout(() => reject(new Error("nats is not connected yet")), 2_000).unref())]);
    await ensureDurable(nc);
    const messages = await jetstream(nc).consumers.get(stream, durable).then((c) => c.consume({ max_messages: Math.max(2 * batchSize * concurrency, 16) }));
    current = messages;
    ready();
    const buffer: JsMsg[] = [];
    const taken = new Set<JsMsg>();
    const inFlight = new Set<Promise<void>>();
    let ended = false;
    const reader = (async () => {
      try {
        for await (const m of messages) {
          buffer.push(m);
          wake?.();
          // Hold back while the handlers catch up (JetStream keeps the rest).
          while (buffer.length > 4 * batchSize * concurrency && !abort.signal.aborted) await sleep(20, abort.signal);
        }
      } finally {
        ended = true;
        wake?.();
      }
    })();
    // Tell JetStream that what waits here or is being worked on is not lost.
    const keepAlive = setInterval(() => [...buffer, ...taken].forEach((m) => m.working()), Math.max(1_000, ackWaitMs / 3));
    keepAlive.unref();
    const prepare = "applyBatch" in options ? options.prepare : undefined;
    /** A batch taken and prepared while the ones before it are still being worked on. */
    let ahead: { batch: JsMsg[]; msgs: ConsumedMessage[] } | undefined;
    const take = () => {
      const batch = buffer.splice(0, batchSize);
      batch.forEach((m) => taken.add(m));
      return { batch, msgs: batch.map(toConsumed) };
    };
    try {
      while (!abort.signal.aborted) {
        if (inFlight.size < concurrency && (ahead || buffer.length > 0)) {
          const { batch, msgs } = ahead ?? take();
          ahead = undefined;
          const job = work(batch, msgs).finally(() => {
            batch.forEach((m) => taken.delete(m));
            inFlight.delete(job);
          });
          inFlight.add(job);
          continue;
        }
        if (inFlight.size >= concurrency && prepare && !ahead && buffer.length >= batchSize) {
          // Decode the next (full) batch while the database works on the current one; a
          // part batch waits, so what arrives meanwhile joins it rather than going alone.
          ahead = take();
          try {
            prepare(ahead.msgs);
          } catch {
            // applyBatch meets it again and handles it as a failure.
          }
          continue;
        }
        if (ended && buffer.length === 0) {
          if (inFlight.size === 0) break;
          await Promise.race(inFlight);
        } else if (inFlight.size < concurrency || (prepare && !ahead && buffer.length < batchSize)) {
          // Wait for more messages (or, prepared ahead, for a batch to finish).
          await Promise.race([...inFlight, new Promise<void>((r) => (wake = r))]);
          wake = undefined;
        } else await Promise.race(inFlight);
      }
    } finally {
      clearInterval(keepAlive);
      messages.stop();
      await Promise.allSettled(inFlight);
      // Pulled but not started: back to JetStream for another replica at once.
      ahead?.batch.forEach((m) => m.nak());
      buffer.splice(0).forEach((m) => m.nak());
      await reader.catch(() => {});
      current = undefined;
    }
  };

  running.set(durable, { stream, nats: options.nats });
  const loop = runForever({ log, what: `consumer ${durable} on ${stream}`, fields, signal: abort.signal }, session);
  const retentionDays = options.inboxRetentionDays ?? 8;
  const cleanup = setInterval(() => {
    pool.query("DELETE FROM consumer_inbox WHERE stream = $1 AND applied_at < now() - make_interval(days => $2)", [inbox, retentionDays]).catch(() => {});
  }, 3_600_000);
  cleanup.unref();

  return {
    durable,
    stream,
    pool,
    classify,
    async replay(msg) {
      await run([msg]);
    },
    async stop() {
      abort.abort();
      clearInterval(cleanup);
      current?.stop();
      wake?.();
      running.delete(durable);
      await Promise.race([loop, sleep(10_000)]);
    },
  };
}

// Sends what a connected kiosk is owed — queued commands, in order, and a newer
// desired configuration — to the link replica holding its stream: core NATS
// request/reply on `kiosks.deliver` with batches for many kiosks
// (adminkiosk.link.v1.DeliverBatch), which every link replica receives and expands to
// the streams it holds, answering for those: a broadcast to 100,000 kiosks is ~100
// messages to each replica, not 100,000 requests. PostgreSQL keeps the truth:
// a command is resent until the kiosk acks it (the kiosk dedupes by command id) and
// never after it expires, so a lost message, a dead link replica or a fleet restart
// only delays delivery.
//
// Work is queued per kiosk and done in batches (one query for many kiosks, requests
// in parallel across kiosks and in order within one), so a broadcast to a whole fleet
// costs a few queries per few thousand kiosks (batches grow with the queue). A periodic sweep expires commands past
// their TTL and re-kicks kiosks with work left over (resend after RESEND_AFTER_MS).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { CommandActionSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { DeliverBatchReplySchema, DeliverBatchSchema, DeliverRequestSchema, type DeliverReply, type DeliverRequest } from "@adminkiosk/proto/adminkiosk/link/v1/delivery_pb";
import { CommandDeliverySchema } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { contextFromTraceparent, currentTraceparent, linkSubjects, SpanKind, startSpan, type Logger, type NatsConnection, type Pool } from "@adminkiosk/runtime";
import { Counter, type Registry } from "prom-client";
import type { ChangeFeed } from "./changes.js";
import { desiredConfigs } from "./desired-config.js";
import { commandStatesFor, openCommandStates, sqlNextState, sqlStates } from "./states.js";

export interface DispatcherOptions {
  pool: Pool;
  nats: Promise<NatsConnection>;
  changes: ChangeFeed;
  log: Logger;
  /** A sent command not acked after this long is sent again (the kiosk dedupes). */
  resendAfterMs: number;
  sweepMs: number;
  /** How long to wait for the link replica's reply. */
  deliverTimeoutMs: number;
  /** Kiosks pumped per batch when few wait (each batch: two reads, its delivery messages, one UPDATE). */
  batchSize?: number;
  /**
   * Kiosks pumped per batch at most: with many waiting (a broadcast), batches grow to share them
   * among the parallel ones, so 100,000 kiosks are a few dozen rounds of PostgreSQL, not 200.
   */
  maxBatchSize?: number;
  /** Batches in flight at once. */
  parallelBatches?: number;
  /** Deliveries per NATS message to the link replicas. */
  deliveriesPerMessage?: number;
  /** How long handed-over commands wait at most behind a round whose delivery link has not answered (default 20 ms). */
  readyHoldMs?: number;
}

export interface Dispatcher {
  /** Something may be owed to these kiosks; `resend` also resends sent, unacked commands at once (a reconnect). */
  kick(kioskIds: Iterable<string>, resend?: boolean): void;
  /**
   * Commands just queued (committed), with what the dispatcher would read for them: sent without
   * reading the database again when nothing else is owed to their kiosk first (see ReadyCommand),
   * else their kiosks are kicked.
   */
  handOver(commands: ReadyCommand[]): void;
  /** Attaches the dispatcher's counters to a metrics registry. */
  registerMetrics(registry: Registry): void;
  stop(): Promise<void>;
}

/** One delivery to hand over: a command (id: its command id) or a desired configuration (id: its version). */
interface Delivery {
  kind: "command" | "config";
  id: string;
  request: DeliverRequest;
}

interface PendingCommand {
  command_id: string;
  kiosk_id: string;
  action: Buffer;
  expire_at: Date;
  /** The SendCommand's trace (tracing on), else null. */
  traceparent: string | null;
}

/**
 * A command as its INSERT returned it, with its kiosk's stream as the same statement read it.
 * `ready`: the kiosk was connected and had no older command still queued, so sending this one
 * now keeps the kiosk's commands in order (sqlReady reads it in the INSERT's statement).
 */
export interface ReadyCommand extends PendingCommand {
  session_id: string | null;
  ready: boolean;
}

/**
 * SQL for ReadyCommand's `session_id` and `ready`, given `c` (the inserted commands, from the
 * INSERT's RETURNING) and `k` (their kiosks): the statement's snapshot does not see the rows it
 * inserts, so "older queued" is any queued command of the kiosk.
 */
export const sqlReady = `k.session_id, (k.connected AND k.session_id IS NOT NULL AND k.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM commands o WHERE o.kiosk_id = c.kiosk_id AND o.open AND o.state = 'queued' AND o.command_id <> c.command_id)) AS ready`;

export function startDispatcher(o: DispatcherOptions): Dispatcher {
  const batchSize = o.batchSize ?? 500;
  const maxBatchSize = Math.max(batchSize, o.maxBatchSize ?? 5_000);
  const deliveriesPerMessage = o.deliveriesPerMessage ?? 1000;
  const parallel = o.parallelBatches ?? 4;
  const readyHoldMs = o.readyHoldMs ?? 20;
  const waiting = new Map<string, boolean>(); // kiosk → resend
  const inFlight = new Set<string>();
  const again = new Map<string, boolean>();
  let running = 0;
  /** Rounds still reading the database (not yet handed to link): a part batch waits until none is. */
  let reading = 0;
  let stopped = false;
  const idle: (() => void)[] = [];
  const messages = new Counter({ name: "fleet_delivery_messages_total", help: "Delivery batches sent to the link replicas (each carries up to 1,000 deliveries and reaches every replica).", registers: [] });
  const delivered = new Counter({ name: "fleet_deliveries_total", help: "Commands and configurations handed to a link replica, by kind and result.", labelNames: ["kind", "result"], registers: [] });

  /** Handed-over commands not yet in a round, by kiosk (in order). */
  let ready = new Map<string, ReadyCommand[]>();
  const handOver = (commands: ReadyCommand[]) => {
    const later: string[] = [];
    for (const c of commands) {
      if (!c.ready || !c.session_id || inFlight.has(c.kiosk_id) || waiting.has(c.kiosk_id)) later.push(c.kiosk_id);
      else ready.set(c.kiosk_id, [...(ready.get(c.kiosk_id) ?? []), c]);
    }
    if (ready.size > 0) setImmediate(pumpReady);
    if (later.length) kick(later);
  };

  /** Handed-over rounds whose delivery link has not answered yet (at most one: see pumpReady). */
  let delivering = 0;
  /**
   * Sends the handed-over commands as one round: no reads, their delivery and one UPDATE. While
   * a round's delivery waits for link's answers (or `readyHoldMs`, whichever is first), the
   * commands handed over meanwhile gather behind it and go as the next round: SendCommand under
   * 32 callers was ~2.5 commands per round (a message to every link replica, its answers and an
   * UPDATE each); a lone command still goes at once.
   */
  function pumpReady() {
    if (ready.size === 0 || stopped || delivering > 0) return;
    const batch = ready;
    ready = new Map();
    for (const id of batch.keys()) inFlight.add(id);
    running++;
    delivering++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(hold);
      delivering--;
      if (ready.size > 0) setImmediate(pumpReady);
    };
    const hold = setTimeout(release, readyHoldMs);
    (async () => {
      const nc = await o.nats;
      const deliveries: Delivery[] = [];
      const spans: { end(): void }[] = [];
      for (const list of batch.values()) for (const c of list) deliveries.push(commandDelivery(c, c.session_id!, spans));
      await handToLink(nc, deliveries, spans, () => {}, release);
    })()
      .catch((err: unknown) => o.log.warn({ err, kiosks: batch.size }, "delivery batch failed; the sweep retries it"))
      .finally(() => {
        release();
        roundDone(batch.keys());
      });
  }

  const kick = (ids: Iterable<string>, resend = false) => {
    for (const id of ids) {
      // Its handed-over commands (committed, queued) go with the round that reads it, not twice.
      ready.delete(id);
      if (inFlight.has(id)) again.set(id, (again.get(id) ?? false) || resend);
      else waiting.set(id, (waiting.get(id) ?? false) || resend);
    }
    schedule();
  };

  /**
   * Starts rounds: a full batch whenever fewer than `parallel` run; a part batch only while no
   * other round is still reading the database, so kicks that come one by one (SendCommand
   * under many callers) gather behind it and go as one round (two reads, one message to the
   * link replicas, one update) instead of a round each. A round waiting for link's answers
   * does not hold them back (a missing answer takes up to DELIVER_TIMEOUT_MS).
   */
  function schedule() {
    while (!stopped && running < parallel && waiting.size > 0 && (reading === 0 || waiting.size >= batchSize)) {
      const size = Math.min(maxBatchSize, Math.max(batchSize, Math.ceil(waiting.size / parallel)));
      const batch = new Map<string, boolean>();
      for (const [id, resend] of waiting) {
        waiting.delete(id);
        inFlight.add(id);
        batch.set(id, resend);
        if (batch.size >= size) break;
      }
      running++;
      reading++;
      let read = false;
      const doneReading = () => {
        if (read) return;
        read = true;
        reading--;
        schedule();
      };
      pumpBatch(batch, doneReading)
        .catch((err: unknown) => o.log.warn({ err, kiosks: batch.size }, "delivery batch failed; the sweep retries it"))
        .finally(() => {
          if (!read) {
            read = true;
            reading--;
          }
          roundDone(batch.keys());
        });
    }
  }

  /** A round is over: its kiosks kicked meanwhile wait for the next. */
  function roundDone(kioskIds: Iterable<string>) {
    running--;
    for (const id of kioskIds) {
      inFlight.delete(id);
      const resend = again.get(id);
      if (resend !== undefined) {
        again.delete(id);
        waiting.set(id, (waiting.get(id) ?? false) || resend);
      }
    }
    if (running === 0 && waiting.size === 0) idle.splice(0).forEach((f) => f());
    schedule();
  }

  /** A command's delivery, in the command's trace when it has one (a span whose traceparent link passes on). */
  function commandDelivery(c: PendingCommand, sessionId: string, spans: { end(): void }[]): Delivery {
    const traced = c.traceparent ? startSpan("fleet deliver command", { kind: SpanKind.PRODUCER, parent: contextFromTraceparent(c.traceparent), attributes: { "command.id": c.command_id, "kiosk.id": c.kiosk_id } }) : undefined;
    if (traced) spans.push(traced.span);
    const command = create(CommandDeliverySchema, {
      commandId: c.command_id,
      action: fromBinary(CommandActionSchema, c.action),
      expireTime: timestampFromDate(c.expire_at),
      traceparent: (traced && currentTraceparent(traced.ctx)) ?? "",
    });
    return { kind: "command", id: c.command_id, request: create(DeliverRequestSchema, { kioskId: c.kiosk_id, sessionId, body: { case: "command", value: command } }) };
  }

  /**
   * Hands the deliveries to the link replicas, in batches of about `deliveriesPerMessage`
   * (a kiosk's own always in one batch, in order): one core NATS request per batch on
   * `kiosks.deliver`, which every replica receives and expands to the streams it holds,
   * answering for those. Collects the answers until every delivery has one or
   * DELIVER_TIMEOUT_MS passes (a delivery nobody answers for is to a kiosk no replica holds).
   * Returns the reply for each delivery index that got one.
   */
  async function deliver(nc: NatsConnection, deliveries: Delivery[]): Promise<Map<number, DeliverReply>> {
    const replies = new Map<number, DeliverReply>();
    const batches: number[][] = [];
    let current: number[] = [];
    deliveries.forEach((d, i) => {
      if (current.length >= deliveriesPerMessage && deliveries[i - 1]?.request.kioskId !== d.request.kioskId) {
        batches.push(current);
        current = [];
      }
      current.push(i);
    });
    if (current.length) batches.push(current);
    await Promise.all(
      batches.map(async (indexes) => {
        const batch = create(DeliverBatchSchema, { deliveries: indexes.map((i) => deliveries[i]!.request) });
        messages.inc();
        let answered = 0;
        try {
          const answers = await nc.requestMany(linkSubjects.deliveries, toBinary(DeliverBatchSchema, batch), { strategy: "timer", maxWait: o.deliverTimeoutMs });
          for await (const m of answers) {
            const r = fromBinary(DeliverBatchReplySchema, m.data);
            for (const a of r.answers) {
              const i = indexes[a.index];
              if (i === undefined || replies.has(i) || !a.reply) continue;
              replies.set(i, a.reply);
              answered++;
            }
            if (answered >= indexes.length) break;
          }
        } catch (err) {
          // No link replica at all (no responders), or NATS went away: nothing was delivered.
          o.log.debug({ err }, "delivery batch not answered");
        }
      }),
    );
    return replies;
  }

  /** Reads what `batch`'s kiosks are owed and hands it to link; `handedOver` once it no longer reads the database. */
  async function pumpBatch(batch: Map<string, boolean>, handedOver: () => void) {
    const nc = await o.nats;
    const ids = [...batch.keys()];
    const resendIds = ids.filter((id) => batch.get(id));
    // The kiosks online and the commands owed to them, asked at once (two connections, one
    // round trip's wait): the commands' own join keeps only online kiosks' ones.
    const [{ rows: online }, { rows: commands }] = await Promise.all([
      o.pool.query<{ kiosk_id: string; session_id: string; config_version: string; config_pushed_version: string; config_stale: boolean; reported_config_version: string; reported_config_failed_version: string }>(
        `SELECT kiosk_id, session_id, config_version, config_pushed_version, reported_config_version, reported_config_failed_version,
                (config_pushed_at IS NULL OR config_pushed_at < now() - make_interval(secs => $2::float8 / 1000)) AS config_stale
         FROM kiosks WHERE kiosk_id = ANY($1) AND connected AND session_id IS NOT NULL AND deleted_at IS NULL`,
        [ids, o.resendAfterMs],
      ),
      o.pool.query<PendingCommand>(
        // Acked but unfinished ones too: a result lost with a dying stream is repeated by
        // the kiosk when it sees the command again (it does not run it again).
        `SELECT c.command_id, c.kiosk_id, c.action, c.expire_at, c.traceparent FROM commands c JOIN kiosks k USING (kiosk_id)
         WHERE c.kiosk_id = ANY($1) AND k.connected AND k.session_id IS NOT NULL AND k.deleted_at IS NULL
           AND c.open AND c.state IN (${sqlStates(openCommandStates)}) AND c.expire_at > now()
           AND (c.state = 'queued' OR c.kiosk_id = ANY($2) OR c.sent_at < now() - make_interval(secs => $3::float8 / 1000))
         ORDER BY c.kiosk_id, c.seq`,
        [ids, resendIds, o.resendAfterMs],
      ),
    ]);
    if (online.length === 0) return;
    const byKiosk = new Map<string, PendingCommand[]>();
    for (const c of commands) {
      const list = byKiosk.get(c.kiosk_id) ?? [];
      list.push(c);
      byKiosk.set(c.kiosk_id, list);
    }
    const configDue = online.filter((k) => {
      const desired = BigInt(k.config_version);
      // A version the kiosk said it cannot apply is not pushed again; a newer one is.
      if (desired === BigInt(k.reported_config_failed_version)) return false;
      return desired > BigInt(k.reported_config_version) && (BigInt(k.config_pushed_version) < desired || k.config_stale || batch.get(k.kiosk_id));
    });
    const configs = configDue.length ? await desiredConfigs(o.pool, configDue.map((k) => k.kiosk_id)) : new Map();

    const deliveries: Delivery[] = [];
    const spans: { end(): void }[] = [];
    for (const k of online) {
      for (const c of byKiosk.get(k.kiosk_id) ?? []) deliveries.push(commandDelivery(c, k.session_id, spans));
      const desired = configs.get(k.kiosk_id);
      if (desired)
        deliveries.push({
          kind: "config",
          id: String(desired.version),
          request: create(DeliverRequestSchema, { kioskId: k.kiosk_id, sessionId: k.session_id, body: { case: "desiredConfig", value: { version: desired.version, config: desired.config } } }),
        });
    }
    await handToLink(nc, deliveries, spans, handedOver);
  }

  /** Hands deliveries to link (`handedOver` once sent, `answered` once link answered), then records what was accepted: commands SENT, configurations pushed. */
  async function handToLink(nc: NatsConnection, deliveries: Delivery[], spans: { end(): void }[], handedOver: () => void, answered?: () => void) {
    const delivering = deliver(nc, deliveries);
    handedOver();
    const replies = await delivering.finally(() => spans.forEach((s) => s.end()));
    answered?.();
    const sent: string[] = [];
    const pushed: { kioskId: string; version: string }[] = [];
    deliveries.forEach((d, i) => {
      const r = replies.get(i);
      // Unanswered: no replica holds that stream (the kiosk just left, or reconnected elsewhere).
      delivered.inc({ kind: d.kind, result: r ? (r.accepted ? "accepted" : r.reason || "refused") : "offline" });
      if (!r?.accepted) return;
      if (d.kind === "command") sent.push(d.id);
      else pushed.push({ kioskId: d.request.kioskId, version: d.id });
    });
    if (sent.length) {
      // Rows the link consumer holds (the kiosk's ack or result being applied, in a broadcast the
      // same thousands of rows at once) are skipped, not waited for: two multi-row UPDATEs
      // locking the same rows in different orders deadlock, and the one PostgreSQL aborted came
      // back only after a retry or the sweep's resend (a 10k broadcast finished after 20 s, not 7).
      // A skipped row is being acked or finished, which says more than SENT.
      const { rows } = await o.pool.query<{ command_id: string; kiosk_id: string }>(
        `UPDATE commands SET state = ${sqlNextState("deliver")}, sent_at = now(), attempts = attempts + 1
         WHERE command_id IN (SELECT command_id FROM commands WHERE command_id = ANY($1) AND state IN (${sqlStates(commandStatesFor("deliver"))}) FOR UPDATE SKIP LOCKED)
         RETURNING command_id, kiosk_id`,
        [sent],
      );
      rows.forEach((r) => o.changes.publish(r.kiosk_id, "command", r.command_id));
    }
    if (pushed.length) {
      await o.pool.query(
        `UPDATE kiosks k SET config_pushed_version = GREATEST(k.config_pushed_version, p.version), config_pushed_at = now()
         FROM unnest($1::text[], $2::bigint[]) AS p(kiosk_id, version) WHERE k.kiosk_id = p.kiosk_id`,
        [pushed.map((p) => p.kioskId), pushed.map((p) => p.version)],
      );
    }
  }

  async function sweep() {
    const { rows: expired } = await o.pool.query<{ command_id: string; kiosk_id: string }>(
      `UPDATE commands SET state = 'expired', finished_at = now()
       WHERE open AND state IN (${sqlStates(commandStatesFor("expire"))}) AND expire_at <= now() RETURNING command_id, kiosk_id`,
    );
    expired.forEach((r) => o.changes.publish(r.kiosk_id, "command", r.command_id));
    // Kiosks online with work left: commands not sent (a delivery that failed) or not
    // acked in time, and configuration not applied.
    const { rows } = await o.pool.query<{ kiosk_id: string }>(
      `SELECT DISTINCT c.kiosk_id FROM commands c JOIN kiosks k USING (kiosk_id)
       WHERE k.connected AND c.open AND c.state IN (${sqlStates(openCommandStates)}) AND c.expire_at > now()
         AND (c.state = 'queued' AND c.created_at < now() - interval '1 second'
              OR c.sent_at < now() - make_interval(secs => $1::float8 / 1000))
       UNION
       SELECT kiosk_id FROM kiosks
       WHERE connected AND deleted_at IS NULL AND config_version > reported_config_version AND config_version <> reported_config_failed_version
         AND (config_pushed_version < config_version OR config_pushed_at < now() - make_interval(secs => $1::float8 / 1000))
       LIMIT 50000`,
      [o.resendAfterMs],
    );
    if (rows.length) kick(rows.map((r) => r.kiosk_id));
  }

  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping || stopped) return;
    sweeping = true;
    sweep()
      .catch((err: unknown) => o.log.warn({ err }, "command sweep failed"))
      .finally(() => (sweeping = false));
  }, o.sweepMs);
  timer.unref();

  return {
    kick,
    handOver,
    registerMetrics(registry) {
      registry.registerMetric(delivered);
      registry.registerMetric(messages);
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      if (running > 0) await Promise.race([new Promise<void>((r) => idle.push(r)), new Promise((r) => setTimeout(r, 3_000))]);
    },
  };
}

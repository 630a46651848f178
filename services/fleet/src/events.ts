// What fleet learns from link: a durable JetStream consumer (the runtime's, consumer.ts)
// on link.kiosk.> applies connections, disconnections, telemetry, command acks/results
// and applied configuration. Messages are applied in batches of up to 2,000, each batch in
// one transaction together with its inbox rows, so a redelivery (after a crash or a late
// ack) changes nothing twice and nothing is acked before it is committed — telemetry has no
// inbox row: its samples' own keys refuse a redelivered batch (storeSamples). A batch that
// fails is retried message by message; a message PostgreSQL refuses (or that does not
// decode) is dead-lettered, so it cannot stop every other kiosk's events. Timestamps
// decide, so order between kiosks' messages does not matter.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { CommandOutcome } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import {
  KioskCommandEventSchema,
  KioskCommandEventsSchema,
  KioskConfigAppliedEventSchema,
  KioskConnectedEventSchema,
  KioskDisconnectedEventSchema,
  KioskTelemetryEventSchema,
  KioskUpdateStatusEventSchema,
  type KioskCommandEvent,
  type KioskConfigAppliedEvent,
  type KioskConnectedEvent,
  type KioskDisconnectedEvent,
  type KioskUpdateStatusEvent,
} from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import {
  cursorPatterns,
  decodeEvent,
  linkSubjects,
  PermanentError,
  startConsumer,
  type ConsumedMessage,
  type DurableConsumer,
  type Logger,
  type NatsConnection,
  type Pool,
  type PoolClient,
} from "@adminkiosk/runtime";
import { Counter, type Registry } from "prom-client";
import type { ChangeFeed } from "./changes.js";
import { factBatch, reconnects } from "./facts.js";
import { applyUpdateStatuses } from "./releases/updates.js";
import { commandStatesFor, openCommandStates, sqlStates } from "./states.js";
import type { JsonObject } from "@bufbuild/protobuf";
import { CopyRowWriter, decodeTelemetryMessage, insertSamples, newestSample, stateOf, ValueOutOfRange, type TelemetryMessage, type TelemetryStore } from "./telemetry.js";

/** The command states an ack moves to ACKED, and the open ones a result finishes (states.ts). */
const ackable = sqlStates(commandStatesFor("ack"));
const open = sqlStates(openCommandStates);

type Decoded =
  | { kind: "connected"; e: KioskConnectedEvent }
  | { kind: "disconnected"; e: KioskDisconnectedEvent }
  | { kind: "telemetry"; e: TelemetryMessage }
  /** One ack or result (link.kiosk.<id>.command.*), or a link replica's batch of them (link.kiosk.commands). */
  | { kind: "command"; e: KioskCommandEvent[] }
  | { kind: "config"; e: KioskConfigAppliedEvent }
  | { kind: "update"; e: KioskUpdateStatusEvent };

/** What to do once a batch is committed. */
interface Effects {
  /** Counted once the batch is committed (a retried batch must not count twice). */
  applied: Map<string, number>;
  rejected: Map<string, number>;
  samplesDropped: number;
  samplesRepeated: number;
  reconnected: Set<string>;
  changed: Map<string, Set<"kiosk" | "config">>;
  commands: { kioskId: string; commandId: string }[];
}

export interface LinkEventConsumerOptions {
  pool: Pool;
  nats: Promise<NatsConnection>;
  durable: string;
  /** When the consumer is first created: start at events from this time on (default: all). */
  since?: Date;
  telemetry: TelemetryStore;
  changes: ChangeFeed;
  /** A kiosk (re)connected: what it is owed goes down its new stream. */
  onReconnected(kioskIds: string[]): void;
  /** kiosk_facts' bucket width (reconnects and telemetry samples are counted there, facts.ts). */
  factsBucketMs: number;
  log: Logger;
}

export interface LinkEventConsumer {
  /** For startService's `consumers` (dead letters, consumer metrics). */
  consumer: DurableConsumer;
  registerMetrics(registry: Registry): void;
  stop(): Promise<void>;
}

/** undefined: a kind this version does not apply. Bytes that do not decode are dead-lettered. */
function decode(msg: ConsumedMessage, horizonMs: number, bucketMs: number, rows: CopyRowWriter): Decoded | undefined {
  const kind = linkSubjects.parse(msg.subject)?.kind;
  if (kind === "connected") return { kind, e: decodeEvent(KioskConnectedEventSchema, msg) };
  if (kind === "disconnected") return { kind, e: decodeEvent(KioskDisconnectedEventSchema, msg) };
  if (kind === "telemetry") {
    try {
      // Without link's receive time, JetStream's: the same on every delivery, so are the keys.
      return { kind, e: decodeTelemetryMessage(msg.data, horizonMs, bucketMs, rows, msg.publishedMs) };
    } catch (err) {
      if (err instanceof ValueOutOfRange) throw err; // refused as the database would
      throw new PermanentError("undecodable", `${msg.subject}: not a ${KioskTelemetryEventSchema.typeName} (${(err as Error).message})`, { cause: err });
    }
  }
  if (kind === "command.ack" || kind === "command.result") return { kind: "command", e: [decodeEvent(KioskCommandEventSchema, msg)] };
  if (msg.subject === linkSubjects.commandBatch) return { kind: "command", e: decodeEvent(KioskCommandEventsSchema, msg).events };
  if (kind === "config.applied") return { kind: "config", e: decodeEvent(KioskConfigAppliedEventSchema, msg) };
  if (kind === "update.status") return { kind: "update", e: decodeEvent(KioskUpdateStatusEventSchema, msg) };
  return undefined; // a kind this version does not know: nothing to apply
}

/**
 * How often telemetry moves kiosks.last_seen_at: only when it is this much behind. The column
 * is indexed (the fleet query language's last_seen_age), so changing it makes the latest-state
 * UPDATE write every index of the row (not HOT); connection events always move it.
 */
export const lastSeenFromTelemetryMs = 30_000;

/** Messages decoded ahead per turn of the event loop (prepare). */
const prepareSlice = 250;

/**
 * A batch's telemetry samples: every one with one COPY (telemetry.ts), the samples and faulty
 * samples newly stored counted in kiosk_facts (a sample redelivered, or resent under a new
 * message id, is stored and counted once: telemetry claims no inbox row, its samples' primary
 * key is what keeps it once). Answers how many were there already.
 */
async function storeSamples(tx: PoolClient, messages: TelemetryMessage[], facts: ReturnType<typeof factBatch>, bucketMs: number): Promise<{ repeated: number }> {
  const rows: Buffer[] = [];
  let count = 0;
  for (const m of messages) {
    rows.push(m.rows);
    count += m.retained;
  }
  const stored = await insertSamples(tx, rows, count, bucketMs);
  let repeated = 0;
  if (stored === "all") {
    for (const m of messages) for (let i = 0; i < m.buckets.length; i += 3) facts.count(m.kioskId, m.buckets[i]!, { samples: m.buckets[i + 1]!, faulty_samples: m.buckets[i + 2]! });
  } else {
    repeated = count;
    for (const s of stored) {
      facts.count(s.kioskId, s.bucketMs, { samples: s.samples, faulty_samples: s.faulty });
      repeated -= s.samples;
    }
  }
  return { repeated };
}

/**
 * Each kiosk's latest state from a batch's telemetry — its newest sample in the batch, one
 * UPDATE row per kiosk. The UPDATE changes only columns no index holds (state,
 * state_sampled_at; last_seen_at when it is lastSeenFromTelemetryMs stale), so PostgreSQL
 * updates the row in place (HOT, kiosks' fillfactor leaves room), and a kiosk whose stored
 * state is newer is not written at all (a redelivered batch changes nothing).
 */
/** A time as JSON carries it to PostgreSQL; one no Date can hold is refused as PostgreSQL would. */
function isoTime(column: string, ms: number): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) throw new ValueOutOfRange(column, ms, "timestamptz");
  return d.toISOString();
}

async function updateLatestState(tx: PoolClient, messages: TelemetryMessage[]) {
  const latest = new Map<string, { receivedMs: number; sampledIn?: TelemetryMessage }>();
  for (const m of messages) {
    const entry = latest.get(m.kioskId);
    if (!entry) latest.set(m.kioskId, { receivedMs: m.receivedMs, sampledIn: m.newest ? m : undefined });
    else {
      if (m.receivedMs > entry.receivedMs) entry.receivedMs = m.receivedMs;
      if (m.newest && (!entry.sampledIn || m.newest.atMs > entry.sampledIn.newest!.atMs)) entry.sampledIn = m;
    }
  }
  // One JSON document for the batch's kiosks (jsonb_to_recordset), not four arrays: pg escapes
  // an array's elements character by character, a fifth of the drain's update in fleet's CPU.
  const rows: { kiosk_id: string; received: string; state: JsonObject | null; sampled: string | null }[] = [];
  for (const [kioskId, e] of latest) {
    const sample = e.sampledIn && newestSample(e.sampledIn);
    rows.push({
      kiosk_id: kioskId,
      received: isoTime("received_at", e.receivedMs),
      state: sample ? stateOf(sample) : null,
      sampled: e.sampledIn ? isoTime("sampled_at", e.sampledIn.newest!.atMs) : null,
    });
  }
  await tx.query(
    `UPDATE kiosks k SET
       last_seen_at = CASE WHEN k.last_seen_at IS NULL OR k.last_seen_at < u.received - make_interval(secs => $2::float8 / 1000) THEN u.received ELSE k.last_seen_at END,
       state = CASE WHEN u.sampled > k.state_sampled_at OR (k.state_sampled_at IS NULL AND u.sampled IS NOT NULL) THEN u.state ELSE k.state END,
       state_sampled_at = CASE WHEN u.sampled > k.state_sampled_at OR (k.state_sampled_at IS NULL AND u.sampled IS NOT NULL) THEN u.sampled ELSE k.state_sampled_at END
     FROM jsonb_to_recordset($1::jsonb) AS u(kiosk_id text, received timestamptz, state jsonb, sampled timestamptz)
     WHERE k.kiosk_id = u.kiosk_id
       AND (u.sampled > k.state_sampled_at OR (k.state_sampled_at IS NULL AND u.sampled IS NOT NULL)
            OR k.last_seen_at IS NULL OR k.last_seen_at < u.received - make_interval(secs => $2::float8 / 1000))`,
    [JSON.stringify(rows), lastSeenFromTelemetryMs],
  );
}

/** Every kiosk a batch's events name (each writes at most its own kiosk's rows). */
function kiosksOf(decoded: (Decoded | undefined)[]): string[] {
  const ids = new Set<string>();
  for (const d of decoded) {
    if (!d) continue;
    if (d.kind === "command") d.e.forEach((e) => ids.add(e.kioskId));
    else ids.add(d.e.kioskId);
  }
  return [...ids];
}

/**
 * A batch's connections, applied together (connectedMany: a reconnect storm is 100,000 of
 * them) — except that a message written inline for a kiosk with a connection pending
 * (disconnected, config applied) first applies the pending ones, so each kiosk's messages
 * apply in the order they came. flushBefore() with no kiosk applies what is left.
 */
function pendingConnections(tx: PoolClient) {
  const events: KioskConnectedEvent[] = [];
  const kiosks = new Set<string>();
  return {
    add(e: KioskConnectedEvent) {
      events.push(e);
      kiosks.add(e.kioskId);
    },
    async flushBefore(kioskId?: string) {
      if (kioskId !== undefined && !kiosks.has(kioskId)) return;
      kiosks.clear();
      await connectedMany(tx, events.splice(0));
    },
  };
}

export function consumeLinkEvents(o: LinkEventConsumerOptions): LinkEventConsumer {
  const { pool, log } = o;
  const applied = new Counter({ name: "fleet_link_events_applied_total", help: "link events applied, by kind (telemetry: every delivery, a redelivered batch's again; see fleet_telemetry_samples_repeated_total).", labelNames: ["kind"], registers: [] });
  const rejected = new Counter({
    name: "fleet_link_events_rejected_total",
    help: "link events ignored: naming another kiosk's command, a command fleet does not know, or a config version fleet never assigned to the kiosk (undecodable ones are dead-lettered); \"rollout claim\": an update status naming another rollout than fleet sent the kiosk (applied to fleet's).",
    labelNames: ["reason"],
    registers: [],
  });
  const samplesDropped = new Counter({ name: "fleet_telemetry_samples_expired_total", help: "Samples older than the retention period, not stored (a redelivered batch's again).", registers: [] });
  const samplesRepeated = new Counter({
    name: "fleet_telemetry_samples_repeated_total",
    help: "Samples fleet had stored already (a batch delivered again, resent under a new id, overlapping another): not stored or counted again.",
    registers: [],
  });

  /**
   * Batches decoded ahead (the consumer's prepare: while the batch before is in its
   * transaction), so applying a batch is mostly the database's work.
   */
  const prepared = new WeakMap<ConsumedMessage, Decoded | undefined>();
  const rowWriter = new CopyRowWriter();
  const decodeMessage = (msg: ConsumedMessage) => decode(msg, o.telemetry.horizonMs(), o.factsBucketMs, rowWriter);
  /**
   * Decodes in slices of a few hundred messages, each in its own turn of the event loop and
   * none in the consumer's own call: the consumer hands over the next batch right after it
   * started the current one, whose transaction (BEGIN and the inbox claim) would otherwise wait
   * behind the whole decode before it is even sent. A message applyBatch reaches first it
   * decodes itself.
   */
  const prepare = (msgs: ConsumedMessage[]) => {
    const slice = (from: number) =>
      setImmediate(() => {
        for (const msg of msgs.slice(from, from + prepareSlice)) {
          if (prepared.has(msg)) continue;
          try {
            prepared.set(msg, decodeMessage(msg));
          } catch {
            // Undecodable: applyBatch decodes it again and dead-letters it.
          }
        }
        if (from + prepareSlice < msgs.length) slice(from + prepareSlice);
      });
    slice(0);
  };

  async function applyBatch(tx: PoolClient, msgs: ConsumedMessage[]): Promise<Effects> {
    const effects: Effects = { applied: new Map(), rejected: new Map(), samplesDropped: 0, samplesRepeated: 0, reconnected: new Set(), changed: new Map(), commands: [] };
    const count = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);
    const changed = (kioskId: string, what: "kiosk" | "config") => {
      const set = effects.changed.get(kioskId) ?? new Set();
      set.add(what);
      effects.changed.set(kioskId, set);
    };
    const decoded = msgs.map((m) => (prepared.has(m) ? prepared.get(m) : decodeMessage(m)));
    const commandEvents: KioskCommandEvent[] = [];
    const connections = pendingConnections(tx);
    const updateEvents: KioskUpdateStatusEvent[] = [];
    const telemetry: TelemetryMessage[] = [];
    // Per kiosk and bucket: reconnects, samples and faulty samples (for rollout gates).
    const facts = factBatch(o.factsBucketMs);
    // Samples first: the COPY locks no kiosk, so it runs while another batch (the consumer's
    // other one, another replica's) holds the same kiosks. Then the batch's kiosks are locked in
    // key order before any of their rows is written: two batches touching the same kiosks wait
    // for one another instead of deadlocking (commands, kiosk_updates and kiosk_facts rows
    // written below are those kiosks' own).
    const samples = decoded.flatMap((d) => (d?.kind === "telemetry" ? [d.e] : []));
    if (samples.length) effects.samplesRepeated = (await storeSamples(tx, samples, facts, o.factsBucketMs)).repeated;
    const kiosks = kiosksOf(decoded);
    if (kiosks.length) await tx.query("SELECT FROM kiosks WHERE kiosk_id = ANY($1::text[]) ORDER BY kiosk_id FOR NO KEY UPDATE", [kiosks]);
    (await reconnects(tx, decoded.flatMap((d) => (d?.kind === "connected" ? [d.e] : [])))).forEach((r) => facts.add(r));
    for (const d of decoded) {
      if (!d) continue;
      count(effects.applied, d.kind);
      switch (d.kind) {
        case "connected":
          connections.add(d.e);
          effects.reconnected.add(d.e.kioskId);
          changed(d.e.kioskId, "kiosk");
          changed(d.e.kioskId, "config");
          break;
        case "disconnected":
          // Timestamps decide, but on a tie the later message wins: the connection before it goes first.
          await connections.flushBefore(d.e.kioskId);
          if (await disconnected(tx, d.e)) changed(d.e.kioskId, "kiosk");
          break;
        case "telemetry":
          telemetry.push(d.e);
          effects.samplesDropped += d.e.dropped;
          break;
        case "command":
          commandEvents.push(...d.e);
          break;
        case "update":
          updateEvents.push(d.e);
          break;
        case "config": {
          // After the kiosk's connection in this batch, as the messages came: its hello names a
          // config version too, older than what the kiosk reports applying after it.
          await connections.flushBefore(d.e.kioskId);
          const result = await configApplied(tx, d.e);
          if (result === "applied") changed(d.e.kioskId, "config");
          else if (result === "unsent version") {
            count(effects.rejected, "unsent config version");
            log.warn({ kioskId: d.e.kioskId, version: String(d.e.applied?.version ?? 0n) }, "kiosk reported a config version fleet never assigned to it; ignored");
          }
          break;
        }
      }
    }
    await connections.flushBefore();
    const commands = await applyCommandEvents(tx, commandEvents);
    effects.commands.push(...commands.changed);
    for (const reason of commands.rejected) count(effects.rejected, `${reason} command`);
    const updates = await applyUpdateStatuses(tx, updateEvents);
    updates.changed.forEach((id) => changed(id, "kiosk"));
    for (let i = 0; i < updates.unknown; i++) count(effects.rejected, "unknown release");
    // The kiosk's rollout_id is not trusted: fleet's own assignment was applied (releases/updates.ts).
    for (const m of updates.mismatched) {
      count(effects.rejected, "rollout claim");
      log.warn(m, "kiosk's update status named another rollout than fleet sent it; counted for fleet's");
    }
    if (telemetry.length) {
      await updateLatestState(tx, telemetry);
      for (const t of telemetry) changed(t.kioskId, "kiosk");
    }
    await facts.flush(tx);
    return effects;
  }

  const publish = (effects: Effects) => {
    effects.applied.forEach((n, kind) => applied.inc({ kind }, n));
    effects.rejected.forEach((n, reason) => rejected.inc({ reason }, n));
    if (effects.samplesDropped) samplesDropped.inc(effects.samplesDropped);
    if (effects.samplesRepeated) samplesRepeated.inc(effects.samplesRepeated);
    for (const [kioskId, kinds] of effects.changed) for (const kind of kinds) o.changes.publish(kioskId, kind);
    for (const c of effects.commands) o.changes.publish(c.kioskId, "command", c.commandId);
    if (effects.reconnected.size) o.onReconnected([...effects.reconnected]);
  };

  const consumer = startConsumer({
    pool,
    nats: o.nats,
    log,
    // link creates the stream; until it has, the consumer retries (logged once).
    stream: linkSubjects.stream.name,
    durable: o.durable,
    filter: linkSubjects.allKioskEvents,
    since: o.since,
    // How soon what a crashed replica had taken is delivered again. A batch commits in well
    // under a second; messages waiting behind it are kept alive.
    ackWaitMs: 10_000,
    batchSize: 2_000,
    // Two batches in their transactions at once: the next one's COPY runs while this one
    // updates its kiosks and commits (they take the kiosks' locks in key order, see applyBatch).
    concurrency: 2,
    // Telemetry claims no inbox row (a quarter of a batch's time went to claiming them): a
    // redelivered batch's samples are refused by their primary key and counted from the rows
    // stored; the latest state skips older samples. Every other kind is claimed (a reconnect
    // is counted per message).
    idempotentByKeys: (msg) => linkSubjects.parse(msg.subject)?.kind === "telemetry",
    applyBatch,
    prepare,
    afterCommit: publish,
    // A sample for a day with no partition yet: make the partitions, then it applies.
    classify: async (err) => {
      const e = err as { code?: string; message?: string };
      if (e.code !== "23514" || !/no partition/.test(e.message ?? "")) return undefined;
      await o.telemetry.maintain().catch(() => {});
      return { kind: "transient", reason: "no partition yet" };
    },
  });
  return {
    consumer,
    registerMetrics(registry) {
      registry.registerMetric(applied);
      registry.registerMetric(rejected);
      registry.registerMetric(samplesDropped);
      registry.registerMetric(samplesRepeated);
    },
    stop: () => consumer.stop(),
  };
}

/**
 * Kiosks' new streams, in one statement for the batch (one more for the commands their hellos
 * say they executed). A kiosk's newest event counts; an older one than what fleet has changes nothing.
 */
async function connectedMany(tx: PoolClient, events: KioskConnectedEvent[]) {
  if (events.length === 0) return;
  const latest = new Map<string, { e: KioskConnectedEvent; at: Date }>();
  const executed = new Map<string, { id: string; kiosk: string; at: Date }>();
  for (const e of events) {
    const at = e.time ? timestampDate(e.time) : new Date();
    const seen = latest.get(e.kioskId);
    if (!seen || seen.at <= at) latest.set(e.kioskId, { e, at });
    // What the kiosk says it already executed is not sent again (it would only be acked again).
    for (const id of e.hello?.executedCommandIds ?? []) {
      const key = `${e.kioskId}/${id}`;
      if (cursorPatterns.uuid.test(id) && !executed.has(key)) executed.set(key, { id, kiosk: e.kioskId, at });
    }
  }
  const rows = [...latest.values()];
  await tx.query(
    `UPDATE kiosks k SET connected = true, connection_changed_at = u.at, last_seen_at = GREATEST(k.last_seen_at, u.at), session_id = u.session_id,
       firmware_version = COALESCE(NULLIF(u.firmware, ''), k.firmware_version), app_version = COALESCE(NULLIF(u.app, ''), k.app_version),
       reported_config_version = CASE WHEN u.config <= k.config_version THEN u.config ELSE k.reported_config_version END, reported_config_at = u.at,
       reported_config_error = CASE WHEN k.reported_config_version = u.config OR u.config > k.config_version THEN k.reported_config_error ELSE '' END
     FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::bigint[]) AS u(kiosk_id, at, firmware, app, session_id, config)
     WHERE k.kiosk_id = u.kiosk_id AND (k.connection_changed_at IS NULL OR k.connection_changed_at <= u.at)`,
    [
      rows.map((r) => r.e.kioskId),
      rows.map((r) => r.at),
      rows.map((r) => r.e.hello?.firmwareVersion ?? ""),
      rows.map((r) => r.e.hello?.appVersion ?? ""),
      rows.map((r) => r.e.sessionId),
      rows.map((r) => String(r.e.hello?.configVersion ?? 0n)),
    ],
  );
  if (executed.size) {
    const list = [...executed.values()];
    await tx.query(
      `UPDATE commands c SET state = 'acked', acked_at = COALESCE(c.acked_at, u.at)
       FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS u(id, kiosk, at)
       WHERE c.command_id = u.id AND c.kiosk_id = u.kiosk AND c.state IN (${ackable})`,
      [list.map((x) => x.id), list.map((x) => x.kiosk), list.map((x) => x.at)],
    );
  }
}

async function disconnected(tx: PoolClient, e: KioskDisconnectedEvent) {
  const at = e.time ? timestampDate(e.time) : new Date();
  // A "replaced" stream's kiosk is still connected through its newer stream.
  if (e.reason === "replaced") return false;
  const { rowCount } = await tx.query(
    `UPDATE kiosks SET connected = false, connection_changed_at = $2, last_seen_at = GREATEST(last_seen_at, $2)
     WHERE kiosk_id = $1 AND (connection_changed_at IS NULL OR connection_changed_at <= $2)`,
    [e.kioskId, at],
  );
  return (rowCount ?? 0) > 0;
}

const outcomeNames: Partial<Record<CommandOutcome, string>> = {
  [CommandOutcome.SUCCEEDED]: "succeeded",
  [CommandOutcome.FAILED]: "failed",
  [CommandOutcome.UNSUPPORTED]: "unsupported",
};

/**
 * Applies kiosks' acks and results to their own commands, a batch at a time (one
 * statement for the acks, one for the results, one to explain what changed nothing).
 * The kiosk id comes from link, i.e. from the device credential: an ack or result
 * naming another kiosk's command changes nothing ("foreign"), nor does one for a
 * command fleet does not have ("unknown"). The first result counts; a command that
 * expired or was canceled meanwhile keeps that state, with what the kiosk reported
 * recorded beside it.
 */
async function applyCommandEvents(tx: PoolClient, events: KioskCommandEvent[]) {
  const changed: { kioskId: string; commandId: string }[] = [];
  const rejected: ("foreign" | "unknown")[] = [];
  if (events.length === 0) return { changed, rejected };
  const acks: { id: string; kiosk: string; at: Date }[] = [];
  const results = new Map<string, { kiosk: string; at: Date; ackedAt: Date; state: string; outcome: string; error: string; payload: string | null }>();
  for (const e of events) {
    const at = e.receiveTime ? timestampDate(e.receiveTime) : new Date();
    const id = e.body.value?.commandId ?? "";
    if (!cursorPatterns.uuid.test(id)) {
      rejected.push("unknown");
      continue;
    }
    if (e.body.case === "ack") acks.push({ id, kiosk: e.kioskId, at });
    else if (e.body.case === "result" && !results.has(`${e.kioskId}/${id}`)) {
      const r = e.body.value;
      const outcome = outcomeNames[r.outcome] ?? "failed";
      results.set(`${e.kioskId}/${id}`, {
        kiosk: e.kioskId,
        at,
        ackedAt: at,
        state: outcome === "succeeded" ? "succeeded" : "failed",
        outcome,
        error: r.errorMessage.slice(0, 2000),
        payload: r.payload ? JSON.stringify(r.payload) : null,
      });
    }
  }
  // An ack whose result is in the same batch (a broadcast's usual case: the kiosk acks and
  // answers at once) is written with the result, one row version instead of two.
  const acksAlone = acks.filter((a) => {
    const r = results.get(`${a.kiosk}/${a.id}`);
    if (!r) return true;
    if (a.at < r.ackedAt) r.ackedAt = a.at;
    return false;
  });
  const touched = new Set<string>();
  // Each UPDATE also names its rows with `command_id = ANY($1)`: joined to the unnested ids
  // alone, a planner that believed `commands` small (an ANALYZE before a broadcast's 10,000
  // rows) applied a broadcast's results at ~500 a second (bench/RESULTS.md, 2026-12-07 21:45).
  if (acksAlone.length) {
    const { rows } = await tx.query<{ command_id: string; kiosk_id: string }>(
      `UPDATE commands c SET state = 'acked', acked_at = u.at
       FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS u(id, kiosk, at)
       WHERE c.command_id = u.id AND c.kiosk_id = u.kiosk AND c.state IN (${ackable}) AND c.command_id = ANY($1::uuid[])
       RETURNING c.command_id, c.kiosk_id`,
      [acksAlone.map((a) => a.id), acksAlone.map((a) => a.kiosk), acksAlone.map((a) => a.at)],
    );
    rows.forEach((r) => touched.add(`${r.kiosk_id}/${r.command_id}`));
  }
  if (results.size) {
    const list = [...results].map(([key, r]) => ({ id: key.slice(key.indexOf("/") + 1), ...r }));
    const { rows } = await tx.query<{ command_id: string; kiosk_id: string }>(
      `UPDATE commands c SET
         state = CASE WHEN c.state IN (${open}) THEN u.state ELSE c.state END,
         finished_at = CASE WHEN c.state IN (${open}) THEN u.at ELSE c.finished_at END,
         acked_at = COALESCE(c.acked_at, u.acked_at), outcome = u.outcome, error_message = u.error, result = u.payload
       FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::timestamptz[])
         AS u(id, kiosk, at, state, outcome, error, payload, acked_at)
       WHERE c.command_id = u.id AND c.kiosk_id = u.kiosk AND c.outcome = '' AND c.command_id = ANY($1::uuid[])
       RETURNING c.command_id, c.kiosk_id`,
      [list.map((r) => r.id), list.map((r) => r.kiosk), list.map((r) => r.at), list.map((r) => r.state), list.map((r) => r.outcome), list.map((r) => r.error), list.map((r) => r.payload), list.map((r) => r.ackedAt)],
    );
    rows.forEach((r) => touched.add(`${r.kiosk_id}/${r.command_id}`));
  }
  touched.forEach((key) => changed.push({ kioskId: key.slice(0, key.indexOf("/")), commandId: key.slice(key.indexOf("/") + 1) }));
  // What changed nothing: a repeat (the kiosk's own command), or not the kiosk's to touch.
  const untouched = [...acks.map((a) => ({ id: a.id, kiosk: a.kiosk })), ...[...results].map(([key, r]) => ({ id: key.slice(key.indexOf("/") + 1), kiosk: r.kiosk }))].filter(
    (x) => !touched.has(`${x.kiosk}/${x.id}`),
  );
  if (untouched.length) {
    const { rows } = await tx.query<{ command_id: string; kiosk_id: string }>("SELECT command_id, kiosk_id FROM commands WHERE command_id = ANY($1::uuid[])", [
      [...new Set(untouched.map((x) => x.id))],
    ]);
    const owner = new Map(rows.map((r) => [r.command_id, r.kiosk_id]));
    for (const x of untouched) {
      const o = owner.get(x.id);
      if (o === undefined) rejected.push("unknown");
      else if (o !== x.kiosk) rejected.push("foreign");
    }
  }
  return { changed, rejected };
}

/**
 * What a kiosk says it applied (or could not apply). A version above the kiosk's desired
 * one is a version fleet never assigned to it (versions come from one sequence and only
 * grow), so it is ignored: believed, it would stop every later push until the sequence
 * caught up with it. The kiosk's hello (connected) is held to the same bound.
 */
async function configApplied(tx: PoolClient, e: KioskConfigAppliedEvent): Promise<"applied" | "stale" | "unsent version"> {
  const at = e.receiveTime ? timestampDate(e.receiveTime) : new Date();
  const version = String(e.applied?.version ?? 0n);
  const error = (e.applied?.errorMessage ?? "").slice(0, 2000);
  const { rowCount } = error
    ? await tx.query(
        `UPDATE kiosks SET reported_config_error = $3, reported_config_failed_version = $2, reported_config_at = $4
         WHERE kiosk_id = $1 AND (reported_config_at IS NULL OR reported_config_at <= $4) AND $2::bigint <= config_version`,
        [e.kioskId, version, error, at],
      )
    : await tx.query(
        `UPDATE kiosks SET reported_config_version = $2, reported_config_error = '', reported_config_at = $3
         WHERE kiosk_id = $1 AND (reported_config_at IS NULL OR reported_config_at <= $3) AND $2::bigint <= config_version`,
        [e.kioskId, version, at],
      );
  if ((rowCount ?? 0) > 0) return "applied";
  const { rows: known } = await tx.query<{ config_version: string }>("SELECT config_version FROM kiosks WHERE kiosk_id = $1", [e.kioskId]);
  return known[0] && BigInt(version) > BigInt(known[0].config_version) ? "unsent version" : "stale";
}

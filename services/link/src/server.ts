// The kiosk stream. A kiosk proves who it is with its device credential (checked by
// the runtime's access rules before the handler runs); its first message must be
// Hello. From then on the stream carries heartbeats, telemetry, acks, results and
// applied configuration up, and welcome, telemetry acks, commands, desired
// configuration, pings and goodbyes down. Commands and configuration come from fleet
// over NATS request/reply in batches for many kiosks (`kiosks.deliver`, one subscription
// per replica), which each replica expands to the streams it holds. One stream per kiosk across all replicas: a
// newer one replaces the older, wherever it is.
//
// The stream is served by grpc-js (packages/runtime/src/grpc.ts), event by event: a
// held stream is one KioskStream object, a few listeners and the call itself (no
// async generator or pending promise per stream), because a replica holds 100,000.
import { randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import {
  ConnectRequestSchema,
  ConnectResponseSchema,
  Goodbye_Reason,
  LinkService,
  type ConnectRequest,
  type Hello,
  type TelemetryBatch,
} from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import {
  KioskCommandEventSchema,
  KioskConfigAppliedEventSchema,
  KioskUpdateStatusEventSchema,
  KioskConnectedEventSchema,
  KioskDisconnectedEventSchema,
  KioskTelemetryEventSchema,
} from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import type { DeliverReplySchema, DeliverRequest } from "@adminkiosk/proto/adminkiosk/link/v1/delivery_pb";
import {
  contextFromTraceparent,
  currentTraceparent,
  inSpan,
  invalidArgument,
  linkSubjects,
  SpanKind,
  startSpan,
  tracingEnabled,
  Undecodable,
  type GrpcBidiHandler,
  type GrpcCallContext,
  type GrpcServiceHandlers,
  type Logger,
} from "@adminkiosk/runtime";
import { Counter, type Registry } from "prom-client";
import { createCommandBatcher } from "./command-batches.js";
import type { LinkConfig } from "./config.js";
import { checkBatch, checkCommandEvent, checkConfigApplied, checkHello, checkSample, checkUpdateStatus, refusedField } from "./contract.js";
import type { LinkEvents } from "./events.js";
import { spend, spendInvalid, type Budget, type BudgetLimits, type Cooldown } from "./limits.js";
import type { Claimed, Owner, Presence } from "./presence.js";

export const linkServices = [LinkService];

type Outgoing = MessageInitShape<typeof ConnectResponseSchema>;
type Call = grpc.ServerDuplexStream<ConnectRequest | Undecodable, Outgoing>;

export interface LinkDeps {
  config: Pick<
    LinkConfig,
    | "LINK_REPLICA_ID"
    | "HEARTBEAT_INTERVAL_SECONDS"
    | "PRESENCE_FLUSH_MS"
    | "HELLO_TIMEOUT_MS"
    | "OUTBOX_LIMIT"
    | "SILENT_TIMEOUT_SECONDS"
    | "LINK_MESSAGE_RATE"
    | "LINK_MESSAGE_BURST"
    | "LINK_SAMPLE_RATE"
    | "LINK_SAMPLE_BURST"
    | "LINK_INVALID_SAMPLE_RATE"
    | "LINK_INVALID_SAMPLE_BURST"
    | "LINK_RATE_COOLDOWN_SECONDS"
  >;
  presence: Presence;
  cooldown: Cooldown;
  events: LinkEvents;
  log: Logger;
}

/** Why a stream ended, as logged and published in KioskDisconnectedEvent.reason. */
type EndReason = "closed" | "replaced" | "revoked" | "draining" | "slow reader" | "credential expired" | "silent" | "rate limited" | "error" | "cancelled";

export function createLink(deps: LinkDeps) {
  const { config, presence, events, cooldown, log } = deps;
  const sessions = new Map<string, KioskStream>();
  const commandBatches = createCommandBatcher(events, config.LINK_REPLICA_ID);
  const budgetLimits: BudgetLimits = {
    messageRate: config.LINK_MESSAGE_RATE,
    messageBurst: config.LINK_MESSAGE_BURST,
    sampleRate: config.LINK_SAMPLE_RATE,
    sampleBurst: config.LINK_SAMPLE_BURST,
    invalidRate: config.LINK_INVALID_SAMPLE_RATE,
    invalidBurst: config.LINK_INVALID_SAMPLE_BURST,
  };
  const rateLimited = new Counter({
    name: "link_rate_limited_total",
    help: "Kiosk streams ended for going over their message, sample or invalid-sample budget, and new streams refused during a cool-down, by budget (messages, samples, invalid_samples, cooldown).",
    labelNames: ["budget"],
    registers: [],
  });
  const refused = new Counter({
    name: "link_invalid_messages_total",
    help: "Kiosk streams ended with InvalidArgument for a message that breaks the contract, by field (list indexes left out).",
    labelNames: ["field"],
    registers: [],
  });
  const samplesDropped = new Counter({
    name: "link_telemetry_samples_dropped_total",
    help: "Telemetry samples dropped for breaking the contract (the rest of their batch is stored), by field.",
    labelNames: ["field"],
    registers: [],
  });

  /**
   * One held stream. Its token buckets are its own fields (it is the Budget that
   * limits.ts spends from), so a stream is this object, its call and its listeners.
   */
  class KioskStream implements Budget {
    readonly id = randomUUID();
    /** When the kiosk last sent anything (ms since the epoch). */
    lastHeard = Date.now();
    messages = budgetLimits.messageBurst;
    samples = budgetLimits.sampleBurst;
    invalid = budgetLimits.invalidBurst;
    at = Date.now();
    /** How often the stream was announced (its connected events' ids). */
    announced = 0;
    /** Whether a dropped sample was logged on this stream yet (once per stream; the metric counts all). */
    droppedLogged = false;
    /** Set when a budget checked while handling a message ran out (the invalid samples'). */
    overBudget?: "invalid_samples";
    reason: EndReason = "closed";
    /** Nothing more is sent or read. */
    ended = false;
    /** Over a budget: nothing more is read while the cool-down is recorded. */
    limited = false;
    cleaned = false;
    /** Until the stream is announced (or failed to be); its clean-up waits for it. */
    opening: Promise<unknown> = Promise.resolve();
    expiry: NodeJS.Timeout | undefined;

    constructor(
      readonly kioskId: string,
      readonly deviceId: string,
      readonly hello: Hello,
      readonly call: Call,
      readonly ctx: GrpcCallContext,
    ) {}

    /** Queues a message; false (and the stream ended) when the kiosk has stopped reading. */
    send(message: Outgoing): boolean {
      if (this.ended) return true;
      if (this.call.writableLength >= config.OUTBOX_LIMIT) {
        this.end("slow reader");
        return false;
      }
      this.call.write(message);
      return true;
    }

    /** Ends the stream once: a goodbye when there is a reason to give, then the status the reason calls for. */
    end(reason: EndReason, goodbye?: Goodbye_Reason, error?: unknown) {
      if (this.ended) return;
      this.ended = true;
      this.reason = reason;
      if (goodbye !== undefined && !this.call.cancelled) this.call.write({ body: { case: "goodbye", value: { reason: goodbye } } });
      this.ctx.end(error ?? statusFor(reason));
      void this.cleanUp();
    }

    /**
     * The call is over (ended here or by the kiosk), once: forget it at once, then (after
     * its opening is done, so nothing of it comes after) release its presence and tell
     * the platform it is gone.
     */
    async cleanUp() {
      if (this.cleaned) return;
      this.cleaned = true;
      this.ended = true;
      clearTimeout(this.expiry);
      if (sessions.get(this.kioskId) === this) sessions.delete(this.kioskId);
      await this.opening;
      log.info({ requestId: this.ctx.info.id, kioskId: this.kioskId, session: this.id, reason: this.reason }, "kiosk disconnected");
      await presence.release(this.kioskId, this.id).catch((err: unknown) => log.warn({ err }, "presence release failed"));
      await events
        .publish(
          linkSubjects.disconnected(this.kioskId),
          KioskDisconnectedEventSchema,
          create(KioskDisconnectedEventSchema, { kioskId: this.kioskId, linkReplica: config.LINK_REPLICA_ID, reason: this.reason, time: timestampNow() }),
        )
        .catch((err: unknown) => log.warn({ err }, "disconnect event not published"));
    }

    /** What fleet hands over for this stream. */
    deliver(request: DeliverRequest): MessageInitShape<typeof DeliverReplySchema> {
      if (this.ended) return { accepted: false, reason: "closing" };
      const body = request.body;
      if (body.case === "command") {
        const expire = body.value.expireTime;
        if (expire && timestampDate(expire).getTime() <= Date.now()) return { accepted: false, reason: "expired" };
        // In the command's trace (tracing): a span for sending it, whose traceparent the kiosk echoes back.
        const traced = body.value.traceparent
          ? startSpan("link send command", { kind: SpanKind.PRODUCER, parent: contextFromTraceparent(body.value.traceparent), attributes: { "command.id": body.value.commandId, "kiosk.id": this.kioskId } })
          : undefined;
        const value = traced ? { ...body.value, traceparent: currentTraceparent(traced.ctx) ?? body.value.traceparent } : body.value;
        const sent = this.send({ body: { case: "command", value } });
        traced?.span.end();
        if (!sent) return { accepted: false, reason: "slow reader" };
      } else if (body.case === "desiredConfig") {
        if (!this.send({ body: { case: "desiredConfig", value: body.value } })) return { accepted: false, reason: "slow reader" };
      } else return { accepted: false, reason: "unknown delivery" };
      return { accepted: true };
    }

    /** One message from the kiosk, in order: the next is read once this one is handled. */
    receive(message: ConnectRequest | Undecodable) {
      if (this.ended || this.limited) return;
      if (message instanceof Undecodable) return this.fail(message.error);
      const now = Date.now();
      const over = spend(this, budgetLimits, now, message.body.case === "telemetry" ? message.body.value.samples.length : 0);
      if (over) return void this.overLimit(over);
      this.lastHeard = now;
      // A heartbeat only refreshes presence, with the others of this tick (flushHeartbeats).
      if (message.body.case === "heartbeat") return void heartbeats.add(this);
      this.call.pause();
      handle(this, message).then(
        () => {
          if (!this.ended && !this.limited) this.call.resume();
        },
        (err: unknown) => this.fail(err),
      );
    }

    /** What the kiosk sent broke the contract (or could not be handled): its stream ends with the error. */
    fail(err: unknown) {
      if (this.ended) return;
      if (this.overBudget) return void this.overLimit(this.overBudget, err);
      const field = refusedField(err);
      if (field !== undefined) {
        refused.inc({ field });
        this.ctx.info.log.warn({ kioskId: this.kioskId, session: this.id, problem: (err as ConnectError).rawMessage }, "kiosk sent a message that breaks the contract: stream ended");
      }
      this.end("error", undefined, err);
    }

    async overLimit(over: "messages" | "samples" | "invalid_samples", err?: unknown) {
      if (this.limited) return;
      this.limited = true;
      this.call.pause();
      rateLimited.inc({ budget: over });
      this.ctx.info.log.warn({ kioskId: this.kioskId, session: this.id, budget: over }, `kiosk over its ${over} budget: stream ended, cool-down ${config.LINK_RATE_COOLDOWN_SECONDS} s`);
      await cooldown.start(this.kioskId).catch((e: unknown) => log.warn({ err: e, kioskId: this.kioskId }, "cool-down not recorded"));
      const limit =
        over === "messages" ? `${config.LINK_MESSAGE_RATE} messages a second (bursts of ${config.LINK_MESSAGE_BURST})`
        : over === "samples" ? `${config.LINK_SAMPLE_RATE} telemetry samples a second (bursts of ${config.LINK_SAMPLE_BURST})`
        : undefined;
      const error =
        limit !== undefined ? new ConnectError(`the kiosk sent more than ${limit}; reconnect in ${config.LINK_RATE_COOLDOWN_SECONDS} s`, Code.ResourceExhausted, { "retry-after": String(config.LINK_RATE_COOLDOWN_SECONDS) })
        : err;
      this.end("rate limited", undefined, error);
    }
  }

  /** The status a stream ends with for a reason of link's own (undefined: OK, after a goodbye or a clean close). */
  function statusFor(reason: EndReason): ConnectError | undefined {
    switch (reason) {
      case "slow reader":
        return new ConnectError("the kiosk is not reading its stream", Code.ResourceExhausted);
      case "credential expired":
        return new ConnectError("the device credential has expired; renew it and reconnect", Code.Unauthenticated);
      case "silent":
        return new ConnectError(`nothing heard from the kiosk for ${config.SILENT_TIMEOUT_SECONDS} s (heartbeats stopped)`, Code.DeadlineExceeded);
      default:
        return undefined;
    }
  }

  // Fleet's deliveries come in batches for many kiosks, to every replica: this one answers
  // for the streams it holds (the session fleet names must be the one held here), in order.
  events.serveDeliveries((batch) => {
    const answers: { index: number; reply: MessageInitShape<typeof DeliverReplySchema> }[] = [];
    let refusedFor: Set<string> | undefined;
    batch.deliveries.forEach((request, index) => {
      const session = sessions.get(request.kioskId);
      if (!session || session.id !== request.sessionId) return; // another replica's, or another stream of the kiosk
      // A kiosk's deliveries are in order: after a refused one, the rest of its would overtake it.
      const reply = refusedFor?.has(request.kioskId) ? { accepted: false, reason: "an earlier delivery was refused" } : session.deliver(request);
      if (!reply.accepted) (refusedFor ??= new Set()).add(request.kioskId);
      answers.push({ index, reply });
    });
    return answers.length > 0 ? { linkReplica: config.LINK_REPLICA_ID, answers } : undefined;
  });

  // Another replica took one of our kiosks over (it found our stream in the presence record): end ours.
  events.onReplaced((e) => {
    const current = sessions.get(e.kioskId);
    if (current && current.id !== e.sessionId) current.end("replaced", Goodbye_Reason.REPLACED);
  });
  events.onDeviceRevoked((kioskId, deviceIds) => {
    const current = sessions.get(kioskId);
    if (current && deviceIds.includes(current.deviceId)) current.end("revoked", Goodbye_Reason.REVOKED);
  });

  /** The first message, which must be a valid hello, within HELLO_TIMEOUT_MS. */
  function readHello(call: Call): Promise<Hello> {
    return new Promise<Hello>((resolve, reject) => {
      const done = (err: unknown, hello?: Hello) => {
        clearTimeout(timer);
        call.off("data", onData);
        call.off("end", onEnd);
        call.off("cancelled", onEnd);
        call.pause();
        if (hello) resolve(hello);
        else reject(err);
      };
      const onData = (m: ConnectRequest | Undecodable) => {
        if (m instanceof Undecodable) return done(m.error);
        if (m.body.case !== "hello") return done(invalidArgument("body", "the first message on a stream must be hello"));
        try {
          checkHello(m.body.value);
          done(undefined, m.body.value);
        } catch (err) {
          done(err);
        }
      };
      const onEnd = () => done(invalidArgument("body", "the first message on a stream must be hello"));
      const timer = setTimeout(() => done(new ConnectError(`no hello within ${config.HELLO_TIMEOUT_MS} ms`, Code.DeadlineExceeded)), config.HELLO_TIMEOUT_MS);
      call.on("data", onData);
      call.once("end", onEnd);
      call.once("cancelled", onEnd);
    });
  }

  /**
   * Claims the kiosk's presence again when a heartbeat finds the record gone (it expired while
   * the kiosk was silent, or Redis lost it), unless a newer stream holds it: fleet may have
   * shown the kiosk offline meanwhile, and the event puts it back, with what it is owed.
   */
  async function reclaim(session: KioskStream) {
    const previous = await presence.claim(session.kioskId, { replica: config.LINK_REPLICA_ID, session: session.id, deviceId: session.deviceId, since: new Date().toISOString() }, true);
    if (previous && previous.session !== session.id) {
      // Claimed meanwhile by a newer stream (on any replica): this one is the older.
      session.end("replaced", Goodbye_Reason.REPLACED);
      return;
    }
    await announce(session, previous);
  }

  // The streams opening in this tick: their cool-downs are read and their presence claimed
  // together, in one Redis round trip (presence.claimMany), as heartbeats are refreshed
  // together; in a reconnect storm hundreds open per tick.
  let opening: { session: KioskStream; resolve: (c: Claimed) => void; reject: (err: unknown) => void }[] = [];
  function claimOpening(session: KioskStream): Promise<Claimed> {
    return new Promise<Claimed>((resolve, reject) => {
      if (opening.length === 0) setImmediate(flushOpening);
      opening.push({ session, resolve, reject });
    });
  }
  function flushOpening() {
    const due = opening;
    opening = [];
    const since = new Date().toISOString();
    presence
      .claimMany(
        config.LINK_REPLICA_ID,
        due.map(({ session: s }) => ({ kioskId: s.kioskId, session: s.id, deviceId: s.deviceId, since, cooldownKey: cooldown.key(s.kioskId) })),
      )
      .then(
        (claimed) => due.forEach((d, i) => d.resolve(claimed[i]!)),
        (err: unknown) => due.forEach((d) => d.reject(err)),
      );
  }

  /**
   * Tells the platform this stream is the kiosk's (the JetStream `connected` event) and, when
   * the presence record named an older stream on another replica, tells that replica.
   */
  async function announce(session: KioskStream, previous: Owner | undefined) {
    const event = create(KioskConnectedEventSchema, {
      kioskId: session.kioskId,
      deviceId: session.deviceId,
      linkReplica: config.LINK_REPLICA_ID,
      hello: session.hello,
      sessionId: session.id,
      time: timestampNow(),
    });
    // The older stream is on another replica: that replica alone is told (its own subject), so
    // a connect costs the same however many streams the replicas hold.
    if (previous && previous.session !== session.id && previous.replica !== config.LINK_REPLICA_ID) events.tellReplaced(previous.replica, event);
    // JetStream can be slow to acknowledge in a storm (a PubAck past its 5 s timeout was what
    // refused 393 of 100,000 connects with INTERNAL, and 198 in a 100k reconnect storm): retry,
    // deduplicated by the stream's id, and if it still does not answer, tell the kiosk to come
    // back later rather than report an internal error.
    const msgId = `${session.kioskId}/${session.id}/connected/${++session.announced}`;
    for (let attempt = 1; ; attempt++) {
      try {
        await events.publish(linkSubjects.connected(session.kioskId), KioskConnectedEventSchema, event, msgId);
        return;
      } catch (err) {
        if (attempt >= 3 || session.ended) {
          throw new ConnectError("the platform did not take the connection in time; reconnect later", Code.Unavailable, { "grpc-retry-pushback-ms": "5000", "retry-after": "5" }, undefined, err);
        }
        log.warn({ err, kioskId: session.kioskId, attempt }, "connected event not acknowledged by JetStream; retrying");
      }
    }
  }

  // A kiosk that has said nothing for SILENT_TIMEOUT_SECONDS (heartbeats stopped, the
  // network dropped without a FIN) loses its stream, so it is shown offline and, if it
  // is alive after all, reconnects.
  const silentCheck = setInterval(() => {
    const limit = Date.now() - config.SILENT_TIMEOUT_SECONDS * 1000;
    for (const s of sessions.values()) if (s.lastHeard < limit) s.end("silent");
  }, Math.min(10_000, config.SILENT_TIMEOUT_SECONDS * 250));
  silentCheck.unref();

  // Heartbeats since the last flush: their kiosks' presence is refreshed together, one Redis
  // pipeline per PRESENCE_FLUSH_MS, not a call per heartbeat.
  let heartbeats = new Set<KioskStream>();
  let flushing = false;
  async function flushHeartbeats() {
    if (flushing || heartbeats.size === 0) return;
    flushing = true;
    const due = [...heartbeats].filter((s) => !s.ended);
    heartbeats = new Set();
    try {
      const found = await presence.touchMany(due.map((s) => [s.kioskId, s.id] as const));
      due.forEach((session, i) => {
        // The record is gone (it expired while the kiosk was silent, or Redis lost it): claim it
        // again and tell fleet, which may have shown the kiosk offline meanwhile.
        if (session.ended || sessions.get(session.kioskId) !== session) return;
        if (found[i] === "gone") reclaim(session).catch((err: unknown) => session.fail(err));
        // Another stream holds the record: this one was replaced and missed being told.
        else if (found[i] === "taken") session.end("replaced", Goodbye_Reason.REPLACED);
      });
    } catch (err) {
      // Redis is down: presence expires on its own; the next heartbeats try again.
      log.warn({ err, kiosks: due.length }, "presence refresh failed");
    } finally {
      flushing = false;
    }
  }
  const heartbeatFlush = setInterval(() => void flushHeartbeats(), config.PRESENCE_FLUSH_MS);
  heartbeatFlush.unref();

  async function handle(session: KioskStream, message: ConnectRequest) {
    const kioskId = session.kioskId;
    const body = message.body;
    switch (body.case) {
      case "telemetry":
        await acceptTelemetry(session, body.value);
        return;
      case "ack":
      case "result": {
        checkCommandEvent(body.case, body.value);
        if (!(body.value.traceparent && tracingEnabled())) {
          // With the other streams' of this tick, in one message (command-batches.ts). An ack is
          // not waited for, so the result right behind it goes in the same message.
          const stored = commandBatches.add(create(KioskCommandEventSchema, { kioskId, body, receiveTime: timestampNow() }));
          if (body.case === "ack") stored.catch((err: unknown) => session.fail(err));
          else await stored;
          return;
        }
        // The command's trace ends here when the kiosk echoed its traceparent (a message of its own, carrying it).
        await inSpan(
          `kiosk command ${body.case}`,
          { kind: SpanKind.CONSUMER, parent: contextFromTraceparent(body.value.traceparent || undefined), attributes: { "command.id": body.value.commandId, "kiosk.id": kioskId } },
          () =>
            events.publish(
              linkSubjects.command(kioskId, body.case),
              KioskCommandEventSchema,
              create(KioskCommandEventSchema, { kioskId, body, receiveTime: timestampNow() }),
              `${kioskId}/${body.value.commandId}/${body.case}`,
            ),
        );
        return;
      }
      case "configApplied":
        checkConfigApplied(body.value);
        await events.publish(
          linkSubjects.configApplied(kioskId),
          KioskConfigAppliedEventSchema,
          create(KioskConfigAppliedEventSchema, { kioskId, applied: body.value, receiveTime: timestampNow() }),
          `${kioskId}/config/${body.value.version}/${body.value.errorMessage ? "error" : "ok"}`,
        );
        return;
      case "updateStatus": {
        checkUpdateStatus(body.value);
        const u = body.value;
        await events.publish(
          linkSubjects.updateStatus(kioskId),
          KioskUpdateStatusEventSchema,
          create(KioskUpdateStatusEventSchema, { kioskId, status: u, receiveTime: timestampNow() }),
          `${kioskId}/update/${u.releaseId}/${u.state}/${u.time ? `${u.time.seconds}.${u.time.nanos}` : ""}/${u.bytesDone}`,
        );
        return;
      }
      case "hello":
        throw invalidArgument("body", "hello is only the first message");
      default:
        session.ctx.info.log.debug({ case: body.case }, "message ignored");
    }
  }

  async function acceptTelemetry(session: KioskStream, batch: TelemetryBatch) {
    checkBatch(batch.batchId, batch.samples);
    const batchId = batch.batchId;
    // A sample that breaks the contract is dropped, not the batch (see contract.ts); a
    // stream sending many of them is cut off (LINK_INVALID_SAMPLE_*).
    let kept: typeof batch.samples | undefined;
    let firstProblem = "";
    batch.samples.forEach((sample, i) => {
      try {
        checkSample(sample, i);
        kept?.push(sample);
      } catch (err) {
        const field = refusedField(err);
        if (field === undefined) throw err;
        kept ??= batch.samples.slice(0, i);
        firstProblem ||= (err as ConnectError).rawMessage;
        samplesDropped.inc({ field: field.replace(/^telemetry\.samples\./, "") });
        if (!session.droppedLogged) {
          session.droppedLogged = true;
          session.ctx.info.log.warn({ kioskId: session.kioskId, batchId, problem: (err as ConnectError).rawMessage }, "telemetry sample dropped: it breaks the contract (logged once per stream; link_telemetry_samples_dropped_total counts all)");
        }
      }
    });
    if (kept) {
      if (spendInvalid(session, batch.samples.length - kept.length)) {
        session.overBudget = "invalid_samples";
        throw new ConnectError(
          `the kiosk sent more than ${config.LINK_INVALID_SAMPLE_RATE} telemetry samples a second that break the contract (bursts of ${config.LINK_INVALID_SAMPLE_BURST}; the first: ${firstProblem}); reconnect in ${config.LINK_RATE_COOLDOWN_SECONDS} s`,
          Code.ResourceExhausted,
          { "retry-after": String(config.LINK_RATE_COOLDOWN_SECONDS) },
        );
      }
      batch.samples = kept;
    }
    // Acked only once JetStream has it: until then the kiosk keeps the batch in its outbox.
    if (batch.samples.length > 0)
      await events.publish(
        linkSubjects.telemetry(session.kioskId),
        KioskTelemetryEventSchema,
        create(KioskTelemetryEventSchema, { kioskId: session.kioskId, batch, receiveTime: timestampNow() }),
        `${session.kioskId}/${batchId}`,
      );
    session.send({ body: { case: "telemetryAck", value: { batchId } } });
  }

  /** Accepts one kiosk's stream: the device and its hello. */
  async function accept(call: Call, ctx: GrpcCallContext): Promise<KioskStream> {
    const principal = ctx.principal;
    if (principal?.kind !== "device") throw new ConnectError("only kiosk devices connect here", Code.PermissionDenied);
    const hello = await readHello(call).catch((err: unknown) => {
      const field = refusedField(err);
      if (field !== undefined) refused.inc({ field });
      throw err;
    });
    const session = new KioskStream(principal.kioskId, principal.deviceId, hello, call, ctx);
    // From here on the stream cleans up after itself, however it ends.
    call.once("cancelled", () => {
      if (!session.ended) session.reason = "cancelled";
      void session.cleanUp();
    });
    if (principal.expiresAt) session.expiry = setTimeout(() => session.end("credential expired"), Math.min(Math.max(0, principal.expiresAt.getTime() - Date.now()), 2 ** 31 - 1));
    return session;
  }

  /**
   * Makes the stream the kiosk's: its cool-down and presence (with the others opening in this
   * tick), replacement, welcome, deliveries and the connected event, then reading.
   */
  async function start(session: KioskStream) {
    const { kioskId, call } = session;
    const claimed = await claimOpening(session);
    if (claimed.cooldownMs > 0) {
      // Cut off for flooding a moment ago (on any replica): not yet. The stream was never the
      // kiosk's (nothing claimed, nothing announced), so nothing is released or published.
      rateLimited.inc({ budget: "cooldown" });
      const seconds = Math.ceil(claimed.cooldownMs / 1000);
      session.cleaned = session.ended = true;
      clearTimeout(session.expiry);
      session.ctx.end(new ConnectError(`this kiosk went over its message budget; reconnect in ${seconds} s`, Code.ResourceExhausted, { "retry-after": String(seconds) }));
      return;
    }
    if (session.ended) {
      // The kiosk left while its record was claimed: its clean-up (after this) releases it.
      return;
    }
    sessions.get(kioskId)?.end("replaced", Goodbye_Reason.REPLACED);
    sessions.set(kioskId, session);
    // The replica's logger, not a child per stream: a held stream should not keep one.
    log.info({ requestId: session.ctx.info.id, kioskId, session: session.id }, "kiosk connected");
    // Welcome first, before anything fleet delivers (fleet hears of the stream from the event).
    session.send({ body: { case: "welcome", value: { kioskId, heartbeatIntervalSeconds: config.HEARTBEAT_INTERVAL_SECONDS, linkReplica: config.LINK_REPLICA_ID } } });
    // In `sessions` before fleet hears of this stream, so its first delivery finds it.
    await announce(session, "previous" in claimed ? claimed.previous : undefined);
    // Open: the next stream waiting for a turn may open (admission control).
    session.ctx.opened();
    if (session.ended) return;
    call.on("data", (m: ConnectRequest | Undecodable) => session.receive(m));
    // The kiosk half-closed: it is going away cleanly.
    call.once("end", () => session.end("closed"));
    call.resume();
  }

  const connect: GrpcBidiHandler<typeof ConnectRequestSchema, typeof ConnectResponseSchema> = (call, ctx) => {
    accept(call as Call, ctx).then(
      (session) => {
        session.opening = start(session).catch((err: unknown) => session.fail(err));
      },
      (err: unknown) => ctx.end(err),
    );
  };

  const grpcHandlers: GrpcServiceHandlers[] = [{ service: LinkService, bidi: { connect } }];

  return {
    grpcHandlers,
    registerMetrics(registry: Registry) {
      registry.registerMetric(rateLimited);
      registry.registerMetric(refused);
      registry.registerMetric(samplesDropped);
    },
    /** Tells every connected kiosk to reconnect elsewhere (rollout, shutdown). */
    drainAll() {
      for (const s of sessions.values()) s.end("draining", Goodbye_Reason.DRAINING);
    },
    connectedCount: () => sessions.size,
    stop: () => {
      clearInterval(silentCheck);
      clearInterval(heartbeatFlush);
    },
  };
}

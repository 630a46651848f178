// The kiosk stream. A kiosk proves who it is with its device credential (checked by
// the runtime's access interceptor); its first message must be Hello. From then on
// the stream carries heartbeats, telemetry, acks, results and applied configuration
// up, and welcome, telemetry acks, commands, desired configuration, pings and
// goodbyes down. Commands and configuration come from fleet over NATS request/reply
// on `kiosk.<id>.deliver`, which this replica subscribes to while it holds the
// kiosk's stream. One stream per kiosk across all replicas: a newer one replaces the
// older, wherever it is.
import { randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  ConnectResponseSchema,
  Goodbye_Reason,
  LinkService,
  type ConnectRequest,
  type Hello,
  type TelemetryBatch,
} from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import {
  KioskCommandEventSchema,
  KioskConnectedEventSchema,
  KioskDisconnectedEventSchema,
  KioskTelemetryEventSchema,
} from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { invalidArgument, linkSubjects, type Logger, principalOf, requestInfo } from "@adminkiosk/runtime";
import { KioskConfigAppliedEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Counter, type Registry } from "prom-client";
import type { LinkConfig } from "./config.js";
import { checkBatch, checkCommandEvent, checkConfigApplied, checkHello, checkSample, refusedField } from "./contract.js";
import type { LinkEvents } from "./events.js";
import { fullBudget, spend, spendInvalid, type Budget, type BudgetLimits, type Cooldown } from "./limits.js";
import { StreamOutbox } from "./outbox.js";
import type { Presence } from "./presence.js";

export const linkServices = [LinkService];

/** connect-node reports a request it cannot decode as INTERNAL; it is the kiosk's fault, so say so. */
function fromKiosk(err: unknown): unknown {
  const e = ConnectError.from(err);
  return e.code === Code.Internal && e.rawMessage.startsWith("parse binary")
    ? new ConnectError(`the kiosk sent bytes that are not a ConnectRequest (${e.rawMessage})`, Code.InvalidArgument)
    : err;
}

type Outgoing = MessageInitShape<typeof ConnectResponseSchema>;

interface KioskSession {
  id: string;
  kioskId: string;
  deviceId: string;
  hello: Hello;
  /** When the kiosk last sent anything (ms since the epoch). */
  lastHeard: number;
  outbox: StreamOutbox<Outgoing>;
  /** What the kiosk may still send (LINK_MESSAGE_* and LINK_SAMPLE_*). */
  budget: Budget;
  /** Whether a dropped sample was logged on this stream yet (once per stream; the metric counts all). */
  droppedLogged: boolean;
  /** Set when a budget checked while handling a message ran out (the invalid samples'). */
  overBudget?: "invalid_samples";
  /** Ends the stream: sends a goodbye when there is a reason to give. */
  end(reason: string, goodbye?: Goodbye_Reason): void;
}

export interface LinkDeps {
  config: Pick<
    LinkConfig,
    | "LINK_REPLICA_ID"
    | "HEARTBEAT_INTERVAL_SECONDS"
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

export function createLink(deps: LinkDeps) {
  const { config, presence, events, cooldown } = deps;
  const sessions = new Map<string, KioskSession>();
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

  // Another stream for a kiosk opened somewhere (here or on another replica): end ours.
  events.onKioskConnected((e) => {
    const current = sessions.get(e.kioskId);
    if (current && current.id !== e.sessionId) current.end("replaced", Goodbye_Reason.REPLACED);
  });
  events.onDeviceRevoked((kioskId, deviceIds) => {
    const current = sessions.get(kioskId);
    if (current && deviceIds.includes(current.deviceId)) current.end("revoked", Goodbye_Reason.REVOKED);
  });

  async function readHello(it: AsyncIterator<ConnectRequest>): Promise<Hello> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConnectError(`no hello within ${config.HELLO_TIMEOUT_MS} ms`, Code.DeadlineExceeded)), config.HELLO_TIMEOUT_MS);
    });
    try {
      const first = await Promise.race([it.next().catch((err: unknown) => Promise.reject(fromKiosk(err))), timeout]);
      if (first.done || first.value.body.case !== "hello") throw invalidArgument("body", "the first message on a stream must be hello");
      const hello = first.value.body.value;
      checkHello(hello);
      return hello;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Claims the kiosk's presence and tells the platform this stream is its own. Run
   * when a stream opens, and again when a heartbeat finds the presence record gone
   * (it expired while the kiosk was silent, or Redis lost it): fleet may have shown
   * the kiosk offline meanwhile, and the event puts it back, with what it is owed.
   */
  async function announce(session: KioskSession) {
    await presence.claim(session.kioskId, { replica: config.LINK_REPLICA_ID, session: session.id, deviceId: session.deviceId, since: new Date().toISOString() });
    await events.publish(
      linkSubjects.connected(session.kioskId),
      KioskConnectedEventSchema,
      create(KioskConnectedEventSchema, {
        kioskId: session.kioskId,
        deviceId: session.deviceId,
        linkReplica: config.LINK_REPLICA_ID,
        hello: session.hello,
        sessionId: session.id,
        time: timestampNow(),
      }),
    );
  }

  // A kiosk that has said nothing for SILENT_TIMEOUT_SECONDS (heartbeats stopped, the
  // network dropped without a FIN) loses its stream, so it is shown offline and, if it
  // is alive after all, reconnects.
  const silentCheck = setInterval(() => {
    const limit = Date.now() - config.SILENT_TIMEOUT_SECONDS * 1000;
    for (const s of sessions.values()) if (s.lastHeard < limit) s.end("silent");
  }, Math.min(10_000, config.SILENT_TIMEOUT_SECONDS * 250));
  silentCheck.unref();

  async function handle(session: KioskSession, message: ConnectRequest, log: Logger) {
    session.lastHeard = Date.now();
    const kioskId = session.kioskId;
    const body = message.body;
    switch (body.case) {
      case "heartbeat":
        if (!(await presence.touch(kioskId, session.id)) && sessions.get(kioskId) === session) await announce(session);
        return;
      case "telemetry":
        await acceptTelemetry(session, body.value, log);
        return;
      case "ack":
      case "result":
        checkCommandEvent(body.case, body.value);
        await events.publish(
          linkSubjects.command(kioskId, body.case),
          KioskCommandEventSchema,
          create(KioskCommandEventSchema, { kioskId, body, receiveTime: timestampNow() }),
          `${kioskId}/${body.value.commandId}/${body.case}`,
        );
        return;
      case "configApplied":
        checkConfigApplied(body.value);
        await events.publish(
          linkSubjects.configApplied(kioskId),
          KioskConfigAppliedEventSchema,
          create(KioskConfigAppliedEventSchema, { kioskId, applied: body.value, receiveTime: timestampNow() }),
          `${kioskId}/config/${body.value.version}/${body.value.errorMessage ? "error" : "ok"}`,
        );
        return;
      case "hello":
        throw invalidArgument("body", "hello is only the first message");
      default:
        log.debug({ case: body.case }, "message ignored");
    }
  }

  async function acceptTelemetry(session: KioskSession, batch: TelemetryBatch, log: Logger) {
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
          log.warn({ kioskId: session.kioskId, batchId, problem: (err as ConnectError).rawMessage }, "telemetry sample dropped: it breaks the contract (logged once per stream; link_telemetry_samples_dropped_total counts all)");
        }
      }
    });
    if (kept) {
      if (spendInvalid(session.budget, batch.samples.length - kept.length)) {
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
    if (!session.outbox.push({ body: { case: "telemetryAck", value: { batchId } } })) session.end("slow reader");
  }

  const routes = (router: ConnectRouter) => {
    router.service(LinkService, {
      async *connect(requests, ctx) {
        const principal = principalOf(ctx);
        if (principal.kind !== "device") throw new ConnectError("only kiosk devices connect here", Code.PermissionDenied);
        const log = requestInfo(ctx).log;
        const kioskId = principal.kioskId;
        // Cut off for flooding a moment ago (on any replica): not yet. Without Redis the
        // token check has already failed, so an error here only skips the cool-down.
        const waitMs = await cooldown.remainingMs(kioskId).catch(() => 0);
        if (waitMs > 0) {
          rateLimited.inc({ budget: "cooldown" });
          throw new ConnectError(`this kiosk went over its message budget; reconnect in ${Math.ceil(waitMs / 1000)} s`, Code.ResourceExhausted, { "retry-after": String(Math.ceil(waitMs / 1000)) });
        }
        const it = requests[Symbol.asyncIterator]();
        const hello = await readHello(it).catch((err: unknown) => {
          const field = refusedField(err);
          if (field !== undefined) refused.inc({ field });
          throw err;
        });
        let endReason = "closed";
        const outbox = new StreamOutbox<Outgoing>(config.OUTBOX_LIMIT);
        const session: KioskSession = {
          id: randomUUID(),
          kioskId,
          deviceId: principal.deviceId,
          hello,
          lastHeard: Date.now(),
          outbox,
          budget: fullBudget(budgetLimits, Date.now()),
          droppedLogged: false,
          end(reason, goodbye) {
            endReason = reason;
            outbox.close(goodbye === undefined ? undefined : { body: { case: "goodbye", value: { reason: goodbye } } });
          },
        };
        sessions.get(kioskId)?.end("replaced", Goodbye_Reason.REPLACED);
        sessions.set(kioskId, session);
        log.info({ kioskId, session: session.id }, "kiosk connected");
        let stopDeliveries: (() => void) | undefined;
        // Welcome first, before anything fleet delivers.
        outbox.push({ body: { case: "welcome", value: { kioskId, heartbeatIntervalSeconds: config.HEARTBEAT_INTERVAL_SECONDS, linkReplica: config.LINK_REPLICA_ID } } });
        try {
          // Before fleet hears of this stream, so its first delivery finds it.
          stopDeliveries = await events.serveDeliveries(kioskId, (request) => {
            if (request.sessionId !== session.id) return undefined; // meant for another stream of this kiosk
            if (outbox.isClosed) return { accepted: false, reason: "closing" };
            const body = request.body;
            if (body.case === "command") {
              const expire = body.value.expireTime;
              if (expire && timestampDate(expire).getTime() <= Date.now()) return { accepted: false, reason: "expired" };
              if (!outbox.push({ body: { case: "command", value: body.value } })) {
                session.end("slow reader");
                return { accepted: false, reason: "slow reader" };
              }
            } else if (body.case === "desiredConfig") {
              if (!outbox.push({ body: { case: "desiredConfig", value: body.value } })) {
                session.end("slow reader");
                return { accepted: false, reason: "slow reader" };
              }
            } else return { accepted: false, reason: "unknown delivery" };
            return { accepted: true };
          });
          await announce(session);
          // Read in the background; what the kiosk sent wrong ends its stream with the error.
          let failure: unknown;
          void (async () => {
            try {
              for (let next = await it.next(); !next.done; next = await it.next()) {
                const message = next.value;
                const samples = message.body.case === "telemetry" ? message.body.value.samples.length : 0;
                const over = spend(session.budget, budgetLimits, Date.now(), samples);
                if (over) {
                  endReason = "rate limited";
                  rateLimited.inc({ budget: over });
                  log.warn({ kioskId, session: session.id, budget: over }, `kiosk over its ${over} budget: stream ended, cool-down ${config.LINK_RATE_COOLDOWN_SECONDS} s`);
                  await cooldown.start(kioskId).catch((err: unknown) => log.warn({ err, kioskId }, "cool-down not recorded"));
                  const limit = over === "messages" ? `${config.LINK_MESSAGE_RATE} messages a second (bursts of ${config.LINK_MESSAGE_BURST})` : `${config.LINK_SAMPLE_RATE} telemetry samples a second (bursts of ${config.LINK_SAMPLE_BURST})`;
                  failure = new ConnectError(`the kiosk sent more than ${limit}; reconnect in ${config.LINK_RATE_COOLDOWN_SECONDS} s`, Code.ResourceExhausted, {
                    "retry-after": String(config.LINK_RATE_COOLDOWN_SECONDS),
                  });
                  break;
                }
                await handle(session, message, log);
              }
            } catch (err) {
              failure = fromKiosk(err);
              if (session.overBudget) {
                endReason = "rate limited";
                rateLimited.inc({ budget: session.overBudget });
                log.warn({ kioskId, session: session.id, budget: session.overBudget }, `kiosk over its ${session.overBudget} budget: stream ended, cool-down ${config.LINK_RATE_COOLDOWN_SECONDS} s`);
                await cooldown.start(kioskId).catch((e: unknown) => log.warn({ err: e, kioskId }, "cool-down not recorded"));
              }
              const field = refusedField(failure);
              if (field !== undefined) {
                refused.inc({ field });
                log.warn({ kioskId, session: session.id, problem: (failure as ConnectError).rawMessage }, "kiosk sent a message that breaks the contract: stream ended");
              }
            }
            session.end(failure ? (endReason === "rate limited" ? endReason : "error") : "closed");
          })();
          // The credential was checked when the stream opened; it does not outlive its expiry.
          const expiresIn = principal.expiresAt ? principal.expiresAt.getTime() - Date.now() : undefined;
          const expiry = expiresIn === undefined ? undefined : setTimeout(() => session.end("credential expired"), Math.min(Math.max(0, expiresIn), 2 ** 31 - 1));
          const onShutdown = () => session.end("draining", Goodbye_Reason.DRAINING);
          ctx.signal.addEventListener("abort", onShutdown, { once: true });
          try {
            yield* outbox;
          } finally {
            ctx.signal.removeEventListener("abort", onShutdown);
            clearTimeout(expiry);
          }
          if (failure && !ctx.signal.aborted) throw failure;
          if (endReason === "slow reader") throw new ConnectError("the kiosk is not reading its stream", Code.ResourceExhausted);
          if (endReason === "credential expired") throw new ConnectError("the device credential has expired; renew it and reconnect", Code.Unauthenticated);
          if (endReason === "silent") throw new ConnectError(`nothing heard from the kiosk for ${config.SILENT_TIMEOUT_SECONDS} s (heartbeats stopped)`, Code.DeadlineExceeded);
        } finally {
          stopDeliveries?.();
          if (sessions.get(kioskId) === session) sessions.delete(kioskId);
          log.info({ kioskId, session: session.id, reason: endReason }, "kiosk disconnected");
          await presence.release(kioskId, session.id).catch((err: unknown) => log.warn({ err }, "presence release failed"));
          await events
            .publish(
              linkSubjects.disconnected(kioskId),
              KioskDisconnectedEventSchema,
              create(KioskDisconnectedEventSchema, { kioskId, linkReplica: config.LINK_REPLICA_ID, reason: endReason, time: timestampNow() }),
            )
            .catch((err: unknown) => log.warn({ err }, "disconnect event not published"));
        }
      },
    });
  };

  return {
    routes,
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
    stop: () => clearInterval(silentCheck),
  };
}

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
import { invalidArgument, principalOf, requestInfo, requireText, requireUuid, type Logger } from "@adminkiosk/runtime";
import { KioskConfigAppliedEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { LinkConfig } from "./config.js";
import type { LinkEvents } from "./events.js";
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
  /** Ends the stream: sends a goodbye when there is a reason to give. */
  end(reason: string, goodbye?: Goodbye_Reason): void;
}

export interface LinkDeps {
  config: Pick<LinkConfig, "LINK_REPLICA_ID" | "HEARTBEAT_INTERVAL_SECONDS" | "HELLO_TIMEOUT_MS" | "OUTBOX_LIMIT" | "SILENT_TIMEOUT_SECONDS">;
  presence: Presence;
  events: LinkEvents;
  log: Logger;
}

export function createLink(deps: LinkDeps) {
  const { config, presence, events } = deps;
  const sessions = new Map<string, KioskSession>();

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
      if (hello.firmwareVersion) requireText("hello.firmware_version", hello.firmwareVersion, { max: 64 });
      if (hello.appVersion) requireText("hello.app_version", hello.appVersion, { max: 64 });
      if (hello.executedCommandIds.length > 1000) throw invalidArgument("hello.executed_command_ids", "must hold at most 1000 ids");
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
      `link.kiosk.${session.kioskId}.connected`,
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
        await acceptTelemetry(session, body.value);
        return;
      case "ack":
      case "result":
        requireUuid(`${body.case}.command_id`, body.value.commandId);
        if (body.case === "result" && body.value.errorMessage.length > 2000) throw invalidArgument("result.error_message", "must be at most 2000 characters");
        await events.publish(
          `link.kiosk.${kioskId}.command.${body.case}`,
          KioskCommandEventSchema,
          create(KioskCommandEventSchema, { kioskId, body, receiveTime: timestampNow() }),
          `${kioskId}/${body.value.commandId}/${body.case}`,
        );
        return;
      case "configApplied":
        if (body.value.version <= 0n) throw invalidArgument("config_applied.version", "must be a version fleet sent (positive)");
        if (body.value.errorMessage.length > 2000) throw invalidArgument("config_applied.error_message", "must be at most 2000 characters");
        await events.publish(
          `link.kiosk.${kioskId}.config.applied`,
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

  async function acceptTelemetry(session: KioskSession, batch: TelemetryBatch) {
    const batchId = requireText("telemetry.batch_id", batch.batchId, { max: 64 });
    if (batch.samples.length === 0 || batch.samples.length > 500) throw invalidArgument("telemetry.samples", "must hold 1 to 500 samples");
    // Acked only once JetStream has it: until then the kiosk keeps the batch in its outbox.
    await events.publish(
      `link.kiosk.${session.kioskId}.telemetry`,
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
        const it = requests[Symbol.asyncIterator]();
        const hello = await readHello(it);
        const kioskId = principal.kioskId;
        let endReason = "closed";
        const outbox = new StreamOutbox<Outgoing>(config.OUTBOX_LIMIT);
        const session: KioskSession = {
          id: randomUUID(),
          kioskId,
          deviceId: principal.deviceId,
          hello,
          lastHeard: Date.now(),
          outbox,
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
              for (let next = await it.next(); !next.done; next = await it.next()) await handle(session, next.value, log);
            } catch (err) {
              failure = fromKiosk(err);
            }
            session.end(failure ? "error" : "closed");
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
              `link.kiosk.${kioskId}.disconnected`,
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
    /** Tells every connected kiosk to reconnect elsewhere (rollout, shutdown). */
    drainAll() {
      for (const s of sessions.values()) s.end("draining", Goodbye_Reason.DRAINING);
    },
    connectedCount: () => sessions.size,
    stop: () => clearInterval(silentCheck),
  };
}

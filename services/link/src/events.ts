// What link publishes (stream LINK, subjects link.>) and listens to: another replica
// that took one of its kiosks over (to end its own older stream; only the replica that
// held it hears of it, on its own subject) and auth's device revocations (to end a
// revoked kiosk's stream at once).
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { DeviceRevokedEventSchema } from "@adminkiosk/proto/adminkiosk/auth/v1/events_pb";
import { DeliverBatchReplySchema, DeliverBatchSchema, type DeliverBatch } from "@adminkiosk/proto/adminkiosk/link/v1/delivery_pb";
import { KioskConnectedEventSchema, type KioskConnectedEvent } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { authSubjects, ensureStream, linkSubjects, natsTraceHeaders, runForever, type Logger } from "@adminkiosk/runtime";
import { createJetStreamPublisher } from "./jspublish.js";

export interface LinkEvents {
  /** Publishes to JetStream and waits for the stream's ack; `msgId` deduplicates retries. */
  publish<D extends DescMessage>(subject: string, schema: D, message: MessageShape<D>, msgId?: string): Promise<void>;
  /** Tells `replica` that the kiosk's stream is now another's (`event` names the new one). */
  tellReplaced(replica: string, event: KioskConnectedEvent): void;
  /** Another replica took one of this replica's kiosks over. */
  onReplaced(listener: (event: KioskConnectedEvent) => void): void;
  onDeviceRevoked(listener: (kioskId: string, deviceIds: string[]) => void): void;
  /**
   * Answers fleet's delivery batches (core NATS request/reply on `kiosks.deliver`, which every
   * replica subscribes to once): the handler expands a batch to the streams this replica holds
   * and returns its answers, or undefined to stay silent (it holds none of them).
   */
  serveDeliveries(handler: (batch: DeliverBatch) => MessageInitShape<typeof DeliverBatchReplySchema> | undefined): void;
  close(): Promise<void>;
}

export async function createLinkEvents(nc: NatsConnection, log: Logger, replica: string): Promise<LinkEvents> {
  // Kept 7 days: consumers that were down catch up; history proper lives in fleet's tables.
  await ensureStream(nc, { ...linkSubjects.stream, maxAgeMs: 7 * 24 * 3600 * 1000 });
  // PubAcks waited for under one subscription (jspublish.ts), not a request per publish.
  const publisher = createJetStreamPublisher(nc, 5_000);
  const replaced = nc.subscribe(linkSubjects.replaced(replica));
  let deliveries: { unsubscribe(): void } | undefined;
  // Revocations come from auth's stream AUTH through an ordered JetStream consumer, not a
  // plain subscription: after a NATS disconnection it resumes where it stopped, so a
  // revocation published meanwhile still ends the stream. It starts at this replica's start
  // (what was revoked before is refused when a stream opens). Every replica needs every
  // revocation and acts on it in memory: a fan-out, not durable work, so it is no durable
  // consumer (no inbox, no dead letters). auth creates AUTH; until it has, this retries.
  const since = new Date().toISOString();
  const stopRevocations = new AbortController();
  let revocationMessages: { stop(): void } | undefined;
  const followRevocations = () =>
    runForever({ log, what: "revocations: following stream AUTH", signal: stopRevocations.signal }, async (ready) => {
      const consumer = await jetstream(nc).consumers.get("AUTH", { filter_subjects: authSubjects.allDeviceRevocations, deliver_policy: DeliverPolicy.StartTime, opt_start_time: since });
      const messages = await consumer.consume();
      revocationMessages = messages;
      ready();
      await pump(messages, (data) => {
        const event = fromBinary(DeviceRevokedEventSchema, data);
        revokedListeners.forEach((l) => l(event.kioskId, event.deviceIds));
      });
    });
  const replacedListeners: ((e: KioskConnectedEvent) => void)[] = [];
  const revokedListeners: ((kioskId: string, deviceIds: string[]) => void)[] = [];
  const pump = async (sub: AsyncIterable<{ data: Uint8Array }>, handle: (data: Uint8Array) => void) => {
    for await (const m of sub) {
      try {
        handle(m.data);
      } catch (err) {
        log.warn({ err }, "undecodable event ignored");
      }
    }
  };
  void pump(replaced, (data) => {
    const event = fromBinary(KioskConnectedEventSchema, data);
    replacedListeners.forEach((l) => l(event));
  });
  void followRevocations();
  return {
    async publish(subject, schema, message, msgId) {
      // The active trace (a command's result) goes with the event (tracing; nothing when off).
      await publisher.publish(subject, toBinary(schema, message), msgId, natsTraceHeaders());
    },
    serveDeliveries(handler) {
      deliveries = nc.subscribe(linkSubjects.deliveries, {
        callback: (err, msg) => {
          if (err) return;
          let reply: MessageInitShape<typeof DeliverBatchReplySchema> | undefined;
          try {
            reply = handler(fromBinary(DeliverBatchSchema, msg.data));
          } catch (e) {
            log.warn({ err: e }, "undecodable delivery batch ignored");
            return;
          }
          if (reply) msg.respond(toBinary(DeliverBatchReplySchema, create(DeliverBatchReplySchema, reply)));
        },
      });
    },
    tellReplaced(to, event) {
      nc.publish(linkSubjects.replaced(to), toBinary(KioskConnectedEventSchema, event));
    },
    onReplaced: (l) => void replacedListeners.push(l),
    onDeviceRevoked: (l) => void revokedListeners.push(l),
    async close() {
      replaced.unsubscribe();
      deliveries?.unsubscribe();
      stopRevocations.abort();
      revocationMessages?.stop();
      await publisher.close();
    },
  };
}



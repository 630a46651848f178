// Kiosks' command acks and results, gathered per tick of the event loop into one JetStream
// message (KioskCommandEvents on link.kiosk.commands) instead of a message each: in a
// broadcast every kiosk acks and answers within a second or two, which was two JetStream
// publishes (and PubAcks, and two messages for fleet to apply) per kiosk. A kiosk's ack and
// result that arrive together land in one message. What waits for the batch is resolved once
// JetStream has stored it (or rejected with the publish's error), as a publish of its own was.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { KioskCommandEventsSchema, type KioskCommandEvent } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { linkSubjects } from "@adminkiosk/runtime";
import type { LinkEvents } from "./events.js";

export interface CommandBatcher {
  /** Queues one ack or result; resolves once the message that carries it is in JetStream. */
  add(event: KioskCommandEvent): Promise<void>;
}

interface Batch {
  events: KioskCommandEvent[];
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** `maxEvents` per message (an event is ~100 bytes; NATS's default payload limit is 1 MiB). */
export function createCommandBatcher(events: Pick<LinkEvents, "publish">, replica: string, maxEvents = 2_000): CommandBatcher {
  // Message ids unique to this process's life: JetStream dedupes a batch only against itself.
  const boot = randomUUID();
  let sequence = 0;
  let current: Batch | undefined;

  const flush = () => {
    const batch = current;
    current = undefined;
    if (!batch) return;
    const message = create(KioskCommandEventsSchema, { linkReplica: replica, events: batch.events });
    const msgId = `${replica}/${boot}/commands/${++sequence}`;
    // JetStream can be slow to acknowledge under load (a PubAck past its timeout): the same
    // message again, deduplicated by its id, before the streams that wait for it are failed —
    // a batch carries up to `maxEvents` kiosks' events, and a failure ends each of their streams.
    const attempt = (n: number): Promise<void> =>
      events.publish(linkSubjects.commandBatch, KioskCommandEventsSchema, message, msgId).catch((err: unknown) => {
        if (n >= 3) throw err;
        return attempt(n + 1);
      });
    attempt(1).then(batch.resolve, batch.reject);
  };

  return {
    add(event) {
      if (!current) {
        let resolve!: () => void;
        let reject!: (err: unknown) => void;
        const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
        current = { events: [], done, resolve, reject };
        setImmediate(flush);
      }
      const batch = current;
      batch.events.push(event);
      if (batch.events.length >= maxEvents) flush();
      return batch.done;
    },
  };
}

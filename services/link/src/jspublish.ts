// JetStream publishes as link makes them: thousands a second in a reconnect storm (a
// `connected` event per stream), each waiting for its PubAck. nats.js's `js.publish` makes a
// request per publish (a request object in the connection's mux, a timer, and an Error built
// when the request is done — ~4 % of link's CPU profile of a 10k ramp, bench/RESULTS.md);
// here every publish carries a reply subject under one subscription of the replica's, the
// PubAck is matched by the number at its end, and one sweep twice a second fails those
// unanswered past the timeout. Same guarantees: resolved only once the stream has stored the
// message (or found it a duplicate of its `Nats-Msg-Id`), rejected on an error answer, on
// "no responders" (no stream takes the subject) and on the timeout.
import { createInbox, headers as natsHeaders, TimeoutError, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";

export interface JetStreamPublisher {
  /** Publishes and resolves once JetStream has acknowledged it; `msgId` deduplicates retries. */
  publish(subject: string, data: Uint8Array, msgId?: string, headers?: MsgHdrs): Promise<void>;
  /** Resolves once every publish made so far is acknowledged or has timed out. */
  close(): Promise<void>;
}

interface Waiting {
  resolve: () => void;
  reject: (err: Error) => void;
  /** When it times out (ms since the epoch); publishes wait in the order they were made. */
  until: number;
}

export function createJetStreamPublisher(nc: NatsConnection, timeoutMs: number): JetStreamPublisher {
  const prefix = `${createInbox()}.`;
  const waiting = new Map<number, Waiting>();
  const decoder = new TextDecoder();
  let next = 0;
  nc.subscribe(`${prefix}*`, {
    callback: (err, msg) => {
      if (err) return;
      const id = Number(msg.subject.slice(prefix.length));
      const w = waiting.get(id);
      if (!w) return; // timed out already
      waiting.delete(id);
      if (msg.headers?.hasError) {
        w.reject(new Error(msg.headers.code === 503 ? `no JetStream stream takes the subject (no responders)` : `JetStream answered ${msg.headers.code} ${msg.headers.description}`));
        return;
      }
      try {
        const ack = JSON.parse(decoder.decode(msg.data)) as { error?: { code?: number; err_code?: number; description?: string } };
        if (ack.error) w.reject(new Error(`JetStream refused the message: ${ack.error.description ?? "no description"} (${ack.error.err_code ?? ack.error.code ?? "?"})`));
        else w.resolve();
      } catch (e) {
        w.reject(e instanceof Error ? e : new Error(String(e)));
      }
    },
  });
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, w] of waiting) {
      if (w.until > now) break;
      waiting.delete(id);
      w.reject(new TimeoutError());
    }
  }, 500);
  sweep.unref();
  return {
    publish(subject, data, msgId, headers) {
      return new Promise<void>((resolve, reject) => {
        const id = next++;
        let h = headers;
        if (msgId) (h ??= natsHeaders()).set("Nats-Msg-Id", msgId);
        try {
          nc.publish(subject, data, { reply: `${prefix}${id}`, ...(h ? { headers: h } : {}) });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        waiting.set(id, { resolve, reject, until: Date.now() + timeoutMs });
      });
    },
    async close() {
      // At shutdown the drained streams' `disconnected` events are on their way: wait for their
      // PubAcks (the sweep fails what takes longer than the timeout). The subscription ends with
      // the connection, so a publish made after this is still answered.
      while (waiting.size > 0) await new Promise((r) => setTimeout(r, 20));
    },
  };
}

// NATS: one connection per service, reconnecting forever. The promise resolves on
// the first successful connection; a service does not wait for it to start serving
// (what it must publish waits in its outbox meanwhile).
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "./logger.js";

export type { NatsConnection };

export async function connectNats(url: string, name: string, log: Logger): Promise<NatsConnection> {
  const nc = await connect({
    servers: url,
    name,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // No stack trace captured for every request and JetStream publish (nats.js builds an
    // Error per call to have one ready; ~1 % of orders' CPU in bench:orders): a failed
    // request's error still says what failed, without the caller's async stack.
    noAsyncTraces: true,
  });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") log.warn({ server: s.server }, "nats disconnected");
      else if (s.type === "reconnect") log.info({ server: s.server }, "nats reconnected");
    }
  })();
  return nc;
}

/** Creates a JetStream stream, or brings an existing one to this configuration. */
export async function ensureStream(nc: NatsConnection, stream: { name: string; subjects: string[]; maxAgeMs?: number }): Promise<void> {
  const jsm = await jetstreamManager(nc, { timeout: 5_000 });
  const config = {
    name: stream.name,
    subjects: stream.subjects,
    // Publishers set Nats-Msg-Id; JetStream drops a repeat within this window.
    duplicate_window: 2 * 60 * 1_000_000_000,
    ...(stream.maxAgeMs === undefined ? {} : { max_age: stream.maxAgeMs * 1_000_000 }),
  };
  try {
    await jsm.streams.info(stream.name);
    await jsm.streams.update(stream.name, config);
  } catch {
    await jsm.streams.add(config);
  }
}

/** Drains the connection at shutdown, giving up after a second (or at once if it never connected). */
export async function closeNats(nats: NatsConnection | Promise<NatsConnection>): Promise<void> {
  await Promise.race([Promise.resolve(nats).then((nc) => nc.drain()), new Promise((r) => setTimeout(r, 1_000).unref())]);
}

// NATS: one connection per service, reconnecting forever. The promise resolves on
// the first successful connection; a service does not wait for it to start serving
// (what it must publish waits in its outbox meanwhile).
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
  });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") log.warn({ server: s.server }, "nats disconnected");
      else if (s.type === "reconnect") log.info({ server: s.server }, "nats reconnected");
    }
  })();
  return nc;
}

// The in-app channel's feed: one core NATS subscription per replica to the alert events
// (notifications.alert.>, which the outbox relay publishes after each commit, whichever
// replica made the change), fanned out to this replica's WatchAlerts streams.
import { fromBinary } from "@bufbuild/protobuf";
import { AlertChangedEventSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/events_pb";
import type { Alert } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { notificationsSubjects, runForever, type Logger, type NatsConnection } from "@adminkiosk/runtime";

export interface AlertFeed {
  /** Yields every alert change from now on until `signal` aborts. */
  follow(signal: AbortSignal): AsyncIterable<Alert>;
  stop(): Promise<void>;
}

export function startAlertFeed(nats: Promise<NatsConnection>, log: Logger): AlertFeed {
  const listeners = new Set<(a: Alert) => void>();
  const stop = new AbortController();
  const loop = runForever({ log, what: "alert feed", signal: stop.signal }, async (ready) => {
    const nc = await nats;
    const sub = nc.subscribe(notificationsSubjects.allAlerts);
    stop.signal.addEventListener("abort", () => sub.unsubscribe(), { once: true });
    ready();
    for await (const m of sub) {
      if (!notificationsSubjects.parseAlert(m.subject)) continue;
      let alert: Alert | undefined;
      try {
        alert = fromBinary(AlertChangedEventSchema, m.data).alert;
      } catch (err) {
        log.warn({ err, subject: m.subject }, "undecodable alert event");
      }
      if (alert) for (const l of listeners) l(alert);
    }
  });
  return {
    async *follow(signal) {
      const queue: Alert[] = [];
      let wake: (() => void) | undefined;
      const listener = (a: Alert) => {
        if (queue.length < 10_000) queue.push(a);
        wake?.();
      };
      const onAbort = () => wake?.();
      listeners.add(listener);
      signal.addEventListener("abort", onAbort);
      try {
        while (!signal.aborted) {
          const next = queue.shift();
          if (next) {
            yield next;
            continue;
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        listeners.delete(listener);
        signal.removeEventListener("abort", onAbort);
      }
    },
    async stop() {
      stop.abort();
      await loop;
    },
  };
}

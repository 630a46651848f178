// Change notices between fleet replicas, for the live views (WatchFleet, WatchKiosk).
// Core NATS, fire-and-forget: subject `fleet.changed.<kiosk_id>.<kind>` where kind is
// "kiosk" (registry entry, presence or state), "command" (payload: the command id)
// or "config". A notice only says "look again"; the truth is read from PostgreSQL,
// so a lost notice delays a view, it never makes it wrong for long (WatchFleet also
// refreshes its summary on a timer).
import { fleetSubjects, type Logger, type NatsConnection } from "@adminkiosk/runtime";

export type ChangeKind = "kiosk" | "command" | "config";

export interface Change {
  kioskId: string;
  kind: ChangeKind;
  /** The command id for "command". */
  id: string;
}

export interface ChangeFeed {
  publish(kioskId: string, kind: ChangeKind, id?: string): void;
  /** Listens to every change (WatchFleet); returns the unsubscribe. */
  onAny(listener: (c: Change) => void): () => void;
  /** Listens to one kiosk's changes (WatchKiosk). */
  onKiosk(kioskId: string, listener: (c: Change) => void): () => void;
  close(): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function createChangeFeed(nats: Promise<NatsConnection>, log: Logger): ChangeFeed {
  const any = new Set<(c: Change) => void>();
  const byKiosk = new Map<string, Set<(c: Change) => void>>();
  let closed = false;
  let unsubscribe: (() => void) | undefined;
  void nats.then(async (nc) => {
    if (closed) return;
    const sub = nc.subscribe(fleetSubjects.allChanges);
    unsubscribe = () => sub.unsubscribe();
    for await (const m of sub) {
      const parsed = fleetSubjects.parseChanged(m.subject);
      if (!parsed) continue;
      const change: Change = { ...parsed, id: decoder.decode(m.data) };
      for (const l of any) l(change);
      for (const l of byKiosk.get(change.kioskId) ?? []) l(change);
    }
  });
  let published: NatsConnection | undefined;
  void nats.then((nc) => (published = nc));
  return {
    publish(kioskId, kind, id = "") {
      try {
        published?.publish(fleetSubjects.changed(kioskId, kind), encoder.encode(id));
      } catch (err) {
        log.debug({ err }, "change notice not published");
      }
    },
    onAny(listener) {
      any.add(listener);
      return () => any.delete(listener);
    },
    onKiosk(kioskId, listener) {
      let set = byKiosk.get(kioskId);
      if (!set) byKiosk.set(kioskId, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) byKiosk.delete(kioskId);
      };
    },
    close() {
      closed = true;
      unsubscribe?.();
    },
  };
}

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
  let nc: NatsConnection | undefined;
  // Subscribed only while someone listens (a live view is open), so a replica nobody watches
  // does not receive back every notice it publishes: a broadcast to 100,000 kiosks is three
  // notices per kiosk (created, sent, finished). Kept a minute after the last listener leaves.
  let sub: { unsubscribe(): void } | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  const follow = () => {
    clearTimeout(idleTimer);
    if (sub || closed || !nc) return;
    sub = nc.subscribe(fleetSubjects.allChanges, {
      callback: (err, m) => {
        if (err) return;
        const parsed = fleetSubjects.parseChanged(m.subject);
        if (!parsed) return;
        const change: Change = { ...parsed, id: decoder.decode(m.data) };
        for (const l of any) l(change);
        for (const l of byKiosk.get(change.kioskId) ?? []) l(change);
      },
    });
  };
  const unfollowWhenIdle = () => {
    if (any.size > 0 || byKiosk.size > 0 || !sub) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (any.size > 0 || byKiosk.size > 0) return;
      sub?.unsubscribe();
      sub = undefined;
    }, 60_000);
    idleTimer.unref();
  };
  void nats.then((c) => {
    nc = c;
    if (any.size > 0 || byKiosk.size > 0) follow();
  });
  // Notices published in one turn of the event loop go out together (one socket write): each
  // SendCommand's own notice was a write of its own under 32 callers (issue 13).
  let pending: [subject: string, id: string][] = [];
  const flush = () => {
    const batch = pending;
    pending = [];
    for (const [subject, id] of batch) {
      try {
        nc?.publish(subject, encoder.encode(id));
      } catch (err) {
        log.debug({ err }, "change notice not published");
      }
    }
  };
  return {
    publish(kioskId, kind, id = "") {
      if (pending.push([fleetSubjects.changed(kioskId, kind), id]) === 1) setImmediate(flush);
    },
    onAny(listener) {
      any.add(listener);
      follow();
      return () => {
        any.delete(listener);
        unfollowWhenIdle();
      };
    },
    onKiosk(kioskId, listener) {
      let set = byKiosk.get(kioskId);
      if (!set) byKiosk.set(kioskId, (set = new Set()));
      set.add(listener);
      follow();
      return () => {
        set.delete(listener);
        if (set.size === 0) byKiosk.delete(kioskId);
        unfollowWhenIdle();
      };
    },
    close() {
      flush();
      closed = true;
      clearTimeout(idleTimer);
      sub?.unsubscribe();
      sub = undefined;
    },
  };
}

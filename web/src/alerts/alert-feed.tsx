// The in-app channel: one WatchAlerts stream for the whole app, opened by the navigation's
// badge (mounted on every signed-in page), kept in a small store the Alerts page reads
// too, so the badge and the page agree and only one stream is open. The snapshot replaces
// what is held (after a reconnect, changes while the stream was down are unknown); each
// change after it replaces that alert. Resolved alerts seen since stay listed as resolved.
import { useEffect, useSyncExternalStore } from "react";
import { createClient } from "@connectrpc/connect";
import { useTransport } from "@connectrpc/connect-query";
import { AlertService, AlertState, type Alert, type WatchAlertsResponse } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { useCan } from "../api/context";
import { useServerStream, type StreamState } from "../api/use-stream";

interface FeedState {
  alerts: Map<string, Alert>;
  stream: StreamState;
}

let state: FeedState = { alerts: new Map(), stream: { status: "connecting" } };
const listeners = new Set<() => void>();
const emit = (next: FeedState) => {
  state = next;
  for (const l of listeners) l();
};
const subscribe = (l: () => void) => (listeners.add(l), () => void listeners.delete(l));

function apply(message: WatchAlertsResponse) {
  if (message.body.case === "snapshot") emit({ ...state, alerts: new Map(message.body.value.alerts.map((a) => [a.alertId, a])) });
  else if (message.body.case === "alert") {
    const alerts = new Map(state.alerts);
    alerts.set(message.body.value.alertId, message.body.value);
    emit({ ...state, alerts });
  }
}

/** An alert an acknowledge or resolve call returned (the stream brings it too, maybe later). */
export function alertChanged(alert: Alert) {
  const alerts = new Map(state.alerts);
  alerts.set(alert.alertId, alert);
  emit({ ...state, alerts });
}

/** What the feed holds: alerts newest first, and the stream's state. */
export function useAlertFeed(): { alerts: Alert[]; stream: StreamState } {
  const s = useSyncExternalStore(subscribe, () => state);
  const alerts = [...s.alerts.values()].sort((a, b) => Number((b.fireTime?.seconds ?? 0n) - (a.fireTime?.seconds ?? 0n)) || b.alertId.localeCompare(a.alertId));
  return { alerts, stream: s.stream };
}

/** The navigation's badge: keeps the stream open and shows how many alerts are firing. */
export function AlertsBadge() {
  const transport = useTransport();
  const canWatch = useCan(AlertService.method.watchAlerts);
  const stream = useServerStream(
    canWatch ? "watch-alerts" : undefined,
    (signal) => createClient(AlertService, transport).watchAlerts({}, { signal, timeoutMs: 0 }),
    apply,
  );
  useEffect(() => emit({ ...state, stream }), [stream]);
  const firing = [...useSyncExternalStore(subscribe, () => state).alerts.values()].filter((a) => a.state === AlertState.FIRING).length;
  if (firing === 0) return null;
  return (
    <span className="nav-count" data-testid="alerts-badge" aria-label={`${firing} firing`}>
      {firing}
    </span>
  );
}

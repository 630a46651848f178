// Whether the app is hearing from the platform: "live" after a call succeeded, "reconnecting"
// while calls fail because nothing answers (retried in the background), "offline" while the
// browser itself says so. The top bar shows it. Live streams (WatchFleet, WatchKiosk) report
// here too once they exist.
// Part of the first load: no Connect or protobuf code here (the interceptor that feeds it is
// in platform.tsx).
import { useSyncExternalStore } from "react";

export type ConnectionState = "live" | "reconnecting" | "offline";

let state: ConnectionState = typeof navigator !== "undefined" && !navigator.onLine ? "offline" : "live";
const listeners = new Set<() => void>();

function set(next: ConnectionState) {
  if (next === state) return;
  state = next;
  for (const listener of listeners) listener();
}

export const connection = {
  reachable: () => set(navigator.onLine ? "live" : "offline"),
  unreachable: () => set(navigator.onLine ? "reconnecting" : "offline"),
};

if (typeof window !== "undefined") {
  window.addEventListener("offline", () => set("offline"));
  window.addEventListener("online", () => set("reconnecting"));
}

export function useConnection(): ConnectionState {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => state,
  );
}

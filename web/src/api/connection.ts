// Whether the app is hearing from the platform: "live" after a call succeeded, "reconnecting"
// while calls fail because nothing answers (retried in the background), "offline" while the
// browser itself says so. The top bar shows it. Live streams (WatchFleet, WatchKiosk) report
// here too once they exist.
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { useSyncExternalStore } from "react";
import { isNetworkError } from "./errors";

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

/** Reports each call's outcome: any answer from a service, even a refusal, means it is reachable. */
export const connectionInterceptor: Interceptor = (next) => async (req) => {
  try {
    const res = await next(req);
    connection.reachable();
    return res;
  } catch (err) {
    if (isNetworkError(ConnectError.from(err))) connection.unreachable();
    else connection.reachable();
    throw err;
  }
};

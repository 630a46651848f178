// The app's one Api (session + transport), reachable from every component.
import { createContext, useContext, useSyncExternalStore, type ReactNode } from "react";
import type { DescMethod } from "@bufbuild/protobuf";
import { TransportProvider } from "@connectrpc/connect-query";
import { canCall, type Role } from "./access";
import type { SessionState } from "./session";
import type { Api } from "./transport";

const ApiContext = createContext<Api | undefined>(undefined);

export function ApiProvider({ api, children }: { api: Api; children: ReactNode }) {
  return (
    <ApiContext.Provider value={api}>
      <TransportProvider transport={api.transport}>{children}</TransportProvider>
    </ApiContext.Provider>
  );
}

export function useApi(): Api {
  const api = useContext(ApiContext);
  if (!api) throw new Error("useApi outside ApiProvider");
  return api;
}

export function useSessionState(): SessionState {
  const { session } = useApi();
  return useSyncExternalStore(session.subscribe, session.getState);
}

export function useRole(): Role | undefined {
  const state = useSessionState();
  return state.status === "signed-in" ? state.user.role : undefined;
}

/** Whether the signed-in person's role may call `method` (its access rule in proto/). */
export function useCan(method: DescMethod): boolean {
  return canCall(method, useRole());
}

// The app's one Api (session + transport), reachable from every component.
import { createContext, lazy, use, useContext, useSyncExternalStore, type ReactNode } from "react";
import type { DescMethod } from "@bufbuild/protobuf";
import type { Role } from "./roles";
import type { SessionState } from "./session";
import type { Api } from "./transport";

const ApiContext = createContext<Api | undefined>(undefined);

export function ApiProvider({ api, children }: { api: Api; children: ReactNode }) {
  return <ApiContext.Provider value={api}>{children}</ApiContext.Provider>;
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
  const api = useApi();
  const role = useRole();
  // Pages render under RequireSession, which waits for the platform chunk (access.ts's reader
  // of the option is there, with the protobuf runtime); nothing is allowed before it.
  return api.loaded()?.canCall(method, role) ?? false;
}

/** Fetches providers.tsx's chunk (TanStack Query) ahead of need: while restoring or signing in. */
export const preloadProviders = () => import("./providers");
const Providers = lazy(() => preloadProviders().then((m) => ({ default: m.Providers })));

/**
 * What every signed-in page sits in (TanStack Query, connect-query's transport): suspends until
 * the platform chunk and providers.tsx have loaded.
 */
export function PlatformProviders({ children }: { children: ReactNode }) {
  use(useApi().platform());
  return <Providers>{children}</Providers>;
}

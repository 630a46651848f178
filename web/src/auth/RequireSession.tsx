// Pages behind sign-in: restores a kept session first, and sends a signed-out person to
// the sign-in page (coming back to where they were afterwards).
import { Suspense, useEffect, type ReactNode } from "react";
import { Navigate, useLocation } from "react-router";
import { PlatformProviders, preloadProviders, useApi, useSessionState } from "../api/context";
import { ErrorNotice, Loading } from "../ui/feedback";

export function RequireSession({ children }: { children: ReactNode }) {
  const { session } = useApi();
  const state = useSessionState();
  const location = useLocation();
  useEffect(() => {
    if (state.status === "restoring") void session.restore();
    if (state.status === "restoring" || state.status === "signed-in") void preloadProviders().catch(() => undefined);
  }, [session, state.status]);

  switch (state.status) {
    case "signed-in":
      // The platform chunk has loaded by now (restoring or signing in needed it).
      return (
        <Suspense
          fallback={
            <main className="fullpage" id="main">
              <Loading label="Loading…" />
            </main>
          }
        >
          <PlatformProviders>{children}</PlatformProviders>
        </Suspense>
      );
    case "restoring":
      return (
        <main className="fullpage" id="main">
          <Loading label="Restoring your session…" />
        </main>
      );
    case "unreachable":
      return (
        <main className="fullpage" id="main">
          <ErrorNotice error={state.error} onRetry={() => void session.restore()} />
        </main>
      );
    case "signed-out": {
      const next = location.pathname + location.search;
      return <Navigate to={next === "/" ? "/signin" : `/signin?next=${encodeURIComponent(next)}`} replace />;
    }
  }
}

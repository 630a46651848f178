// What every signed-in page sits in: TanStack Query (one client per Api, emptied when the
// session ends) and connect-query's transport. Its own chunk, with TanStack Query: loaded
// when someone is signed in or signing in, not for the sign-in page (docs/web.md, "First load").
import { useEffect, useState, type ReactNode } from "react";
import { TransportProvider } from "@connectrpc/connect-query";
import { QueryClientProvider } from "@tanstack/react-query";
import { useApi } from "./context";
import { createQueryClient } from "./query-client";

export function Providers({ children }: { children: ReactNode }) {
  const api = useApi();
  const [queryClient] = useState(createQueryClient);
  // Nothing one person loaded stays in memory for the next one to see.
  useEffect(() => api.session.subscribe(() => api.session.getState().status === "signed-out" && queryClient.clear()), [api, queryClient]);
  return (
    <QueryClientProvider client={queryClient}>
      <TransportProvider transport={api.transport}>{children}</TransportProvider>
    </QueryClientProvider>
  );
}

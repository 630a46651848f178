// Providers and routes. Everything but the sign-in page sits behind a session.
import { useEffect, useState } from "react";
import { createBrowserRouter, RouterProvider } from "react-router";
import { QueryClientProvider } from "@tanstack/react-query";
import { ApiProvider } from "./api/context";
import { createQueryClient } from "./api/query-client";
import { createApi } from "./api/transport";
import { RequireAccess } from "./auth/RequireAccess";
import { RequireSession } from "./auth/RequireSession";
import { SignInPage } from "./auth/SignInPage";
import { SsoCallbackPage } from "./auth/SsoCallbackPage";
import { KioskDetailPage } from "./fleet/KioskDetailPage";
import { JobDetailPage } from "./jobs/JobDetailPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { pages } from "./routes";
import { Layout } from "./ui/Layout";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { JobService } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { OrderService } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { OrderDetailPage } from "./orders/OrderDetailPage";

const router = createBrowserRouter([
  { path: "/signin", element: <SignInPage /> },
  { path: "/sso/callback", element: <SsoCallbackPage /> },
  {
    element: (
      <RequireSession>
        <Layout />
      </RequireSession>
    ),
    children: [
      ...pages.map((p) => ({ path: p.path, element: p.needs ? <RequireAccess method={p.needs}>{p.element}</RequireAccess> : p.element })),
      {
        path: "/kiosks/:kioskId",
        element: (
          <RequireAccess method={KioskService.method.getKiosk}>
            <KioskDetailPage />
          </RequireAccess>
        ),
      },
      {
        path: "/jobs/:jobId",
        element: (
          <RequireAccess method={JobService.method.getJob}>
            <JobDetailPage />
          </RequireAccess>
        ),
      },
      {
        path: "/orders/:orderId",
        element: (
          <RequireAccess method={OrderService.method.getOrder}>
            <OrderDetailPage />
          </RequireAccess>
        ),
      },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
]);

export function App() {
  const [api] = useState(createApi);
  const [queryClient] = useState(createQueryClient);
  // Nothing one person loaded stays in memory for the next one to see.
  useEffect(() => api.session.subscribe(() => api.session.getState().status === "signed-out" && queryClient.clear()), [api, queryClient]);
  return (
    <ApiProvider api={api}>
      <QueryClientProvider client={queryClient}>
        <RouterProvider router={router} />
      </QueryClientProvider>
    </ApiProvider>
  );
}

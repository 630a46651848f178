// The shell's providers and routes. Everything but the sign-in pages and the buyer's review
// page (a receipt's link, its token the credential) sits behind a session.
import { lazy, useState } from "react";
import { BrowserRouter, useRoutes, type RouteObject } from "react-router";
import { ApiProvider } from "./api/context";
import { createApi } from "./api/transport";
import { RequireAccess } from "./auth/RequireAccess";
import { RequireSession } from "./auth/RequireSession";
import { SignInPage } from "./auth/SignInPage";
import { SsoCallbackPage } from "./auth/SsoCallbackPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { needs } from "./page-access";
import { later, pages } from "./routes";
import { Layout } from "./ui/Layout";

// Loaded when first visited, like the pages in routes.tsx.
const KioskDetailPage = lazy(() => import("./fleet/KioskDetailPage").then((m) => ({ default: m.KioskDetailPage })));
const JobDetailPage = lazy(() => import("./jobs/JobDetailPage").then((m) => ({ default: m.JobDetailPage })));
const RolloutDetailPage = lazy(() => import("./rollouts/RolloutDetailPage").then((m) => ({ default: m.RolloutDetailPage })));
const GroupConfigPage = lazy(() => import("./fleet/GroupConfigPage").then((m) => ({ default: m.GroupConfigPage })));
const OrderDetailPage = lazy(() => import("./orders/OrderDetailPage").then((m) => ({ default: m.OrderDetailPage })));
// The buyer's review page from a receipt's link: public, outside the session and the navigation.
const ReviewLinkPage = lazy(() => import("./customers/ReviewLinkPage").then((m) => ({ default: m.ReviewLinkPage })));

const routes: RouteObject[] = [
  { path: "/signin", element: <SignInPage /> },
  { path: "/sso/callback", element: <SsoCallbackPage /> },
  { path: "/review/:token", element: later(<ReviewLinkPage />) },
  {
    element: (
      <RequireSession>
        <Layout />
      </RequireSession>
    ),
    children: [
      ...pages.map((p) => ({ path: p.path, element: p.needs ? <RequireAccess need={p.needs}>{p.element}</RequireAccess> : p.element })),
      {
        path: "/kiosks/:kioskId",
        element: (
          <RequireAccess need={needs.getKiosk}>
            {later(<KioskDetailPage />)}
          </RequireAccess>
        ),
      },
      {
        path: "/jobs/:jobId",
        element: (
          <RequireAccess need={needs.getJob}>
            {later(<JobDetailPage />)}
          </RequireAccess>
        ),
      },
      {
        path: "/rollouts/:rolloutId",
        element: (
          <RequireAccess need={needs.getRollout}>
            {later(<RolloutDetailPage />)}
          </RequireAccess>
        ),
      },
      {
        path: "/fleet/groups/:groupId",
        element: (
          <RequireAccess need={needs.getGroupConfig}>
            {later(<GroupConfigPage />)}
          </RequireAccess>
        ),
      },
      {
        path: "/orders/:orderId",
        element: (
          <RequireAccess need={needs.getOrder}>
            {later(<OrderDetailPage />)}
          </RequireAccess>
        ),
      },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
];

// Declarative routing (useRoutes): the app uses no loaders or actions, and react-router's data
// router would add ~17 kB gzip to the first load. A page that fails is caught in the layout.
function Routes() {
  return useRoutes(routes);
}

export function App() {
  const [api] = useState(createApi);
  // TanStack Query and connect-query's transport wrap the signed-in pages (RequireSession),
  // from the platform chunk: the first load holds neither.
  return (
    <ApiProvider api={api}>
      <BrowserRouter>
        <Routes />
      </BrowserRouter>
    </ApiProvider>
  );
}

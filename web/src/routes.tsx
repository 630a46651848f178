// Every page of the app in one table: its address, where it sits in the navigation, and
// the call it cannot work without (its access rule in proto/ decides who sees the page).
// A new page is one entry here; see docs/web.md, "Adding a page".
import { lazy, Suspense, type ComponentType, type ReactNode } from "react";
import { needs, type PageNeed } from "./page-access";
import type { IconName } from "./ui/icons";
import { Loading } from "./ui/feedback";

// Every page loads when first visited, in its own chunk with the generated code only it
// uses; the first load is the shell (layout, navigation, sign-in, session). `needs` come
// from page-access.ts, a table of the rules, so the navigation pulls no descriptors in.
const page = <K extends string>(load: () => Promise<Record<K, ComponentType>>, name: K) => lazy(() => load().then((m) => ({ default: m[name] })));
const FleetPage = page(() => import("./fleet/FleetPage"), "FleetPage");
const QueryPage = page(() => import("./fleet/query/QueryPage"), "QueryPage");
const JobsPage = page(() => import("./jobs/JobsPage"), "JobsPage");
const ReleasesPage = page(() => import("./releases/ReleasesPage"), "ReleasesPage");
const RolloutsPage = page(() => import("./rollouts/RolloutsPage"), "RolloutsPage");
const GroupsPage = page(() => import("./fleet/GroupsPage"), "GroupsPage");
const ApprovalsPage = page(() => import("./fleet/query/ApprovalsPage"), "ApprovalsPage");
const AlertsPage = page(() => import("./alerts/AlertsPage"), "AlertsPage");
const CatalogPage = page(() => import("./catalog/CatalogPage"), "CatalogPage");
const OrdersPage = page(() => import("./orders/OrdersPage"), "OrdersPage");
const OfflinePage = page(() => import("./orders/OfflinePage"), "OfflinePage");
const MembersPage = page(() => import("./customers/MembersPage"), "MembersPage");
const ReviewsPage = page(() => import("./customers/ReviewsPage"), "ReviewsPage");
const InsightsPage = page(() => import("./insights/InsightsPage"), "InsightsPage");
const UsersPage = page(() => import("./admin/UsersPage"), "UsersPage");
const EnrollmentPage = page(() => import("./admin/EnrollmentPage"), "EnrollmentPage");
const AuditPage = page(() => import("./admin/AuditPage"), "AuditPage");
// The badge opens the app's one WatchAlerts stream (alert-feed.tsx, shared with the Alerts page).
const LazyAlertsBadge = page(() => import("./alerts/alert-feed"), "AlertsBadge");
function AlertsBadge() {
  return (
    <Suspense fallback={null}>
      <LazyAlertsBadge />
    </Suspense>
  );
}

/** A page loaded on demand, with a spinner while its chunk arrives. */
export const later = (element: ReactNode) => <Suspense fallback={<Loading label="Loading the page" />}>{element}</Suspense>;

export interface PageRoute {
  path: string;
  label: string;
  section: "Fleet" | "Commerce" | "Admin";
  icon: IconName;
  element: ReactNode;
  /** Hidden from roles that may not make this call, and refused by the page itself. */
  needs?: PageNeed;
  /** Shown in the navigation as not built yet. */
  comingSoon?: boolean;
  /** Beside the label in the navigation (a live count). */
  badge?: ComponentType;
}

export const pages: PageRoute[] = [
  { path: "/", label: "Overview", section: "Fleet", icon: "fleet", element: later(<FleetPage />), needs: needs.listKiosks },
  { path: "/fleet/query", label: "Query", section: "Fleet", icon: "search", element: later(<QueryPage />), needs: needs.queryKiosks },
  { path: "/fleet/groups", label: "Groups", section: "Fleet", icon: "table", element: later(<GroupsPage />), needs: needs.queryKiosks },
  { path: "/jobs", label: "Jobs", section: "Fleet", icon: "jobs", element: later(<JobsPage />), needs: needs.listJobs },
  { path: "/releases", label: "Releases", section: "Fleet", icon: "box", element: later(<ReleasesPage />), needs: needs.listReleases },
  { path: "/rollouts", label: "Rollouts", section: "Fleet", icon: "jobs", element: later(<RolloutsPage />), needs: needs.listRollouts },
  { path: "/fleet/approvals", label: "Approvals", section: "Fleet", icon: "key", element: later(<ApprovalsPage />), needs: needs.listBulkActions },
  { path: "/alerts", label: "Alerts", section: "Fleet", icon: "alert", element: later(<AlertsPage />), needs: needs.watchAlerts, badge: AlertsBadge },
  { path: "/catalog", label: "Catalog", section: "Commerce", icon: "catalog", element: later(<CatalogPage />), needs: needs.listStock },
  { path: "/orders", label: "Orders", section: "Commerce", icon: "orders", element: later(<OrdersPage />), needs: needs.listOrders },
  { path: "/offline", label: "Offline selling", section: "Commerce", icon: "box", element: later(<OfflinePage />), needs: needs.listLeases },
  { path: "/customers/members", label: "Members", section: "Commerce", icon: "users", element: later(<MembersPage />), needs: needs.searchMembers },
  { path: "/customers/reviews", label: "Reviews", section: "Commerce", icon: "catalog", element: later(<ReviewsPage />), needs: needs.listReviews },
  { path: "/insights", label: "Insights", section: "Commerce", icon: "insights", element: later(<InsightsPage />), needs: needs.listModels },
  { path: "/admin/users", label: "Users & roles", section: "Admin", icon: "users", element: later(<UsersPage />), needs: needs.listUsers },
  { path: "/admin/enrollment", label: "Enrollment", section: "Admin", icon: "key", element: later(<EnrollmentPage />), needs: needs.createEnrollmentCode },
  { path: "/admin/audit", label: "Audit log", section: "Admin", icon: "audit", element: later(<AuditPage />), needs: needs.listAuditEvents },
];

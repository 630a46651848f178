// Every page of the app in one table: its address, where it sits in the navigation, and
// the call it cannot work without (its access rule in proto/ decides who sees the page).
// A new page is one entry here; see docs/web.md, "Adding a page".
import { lazy, Suspense, type ComponentType, type ReactNode } from "react";
import type { DescMethod } from "@bufbuild/protobuf";
import { AuditService, UserService, DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { JobService } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { InventoryService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { OrderService } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { ModelService } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { AlertService } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { AlertsBadge } from "./alerts/alert-feed";
import { AlertsPage } from "./alerts/AlertsPage";
import { OrdersPage } from "./orders/OrdersPage";
import { OfflinePage } from "./orders/OfflinePage";
import { LeaseService } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { InsightsPage } from "./insights/InsightsPage";
import { MemberService, ReviewService } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { MembersPage } from "./customers/MembersPage";
import { ReviewsPage } from "./customers/ReviewsPage";
import { CatalogPage } from "./catalog/CatalogPage";
import { AuditPage } from "./admin/AuditPage";
import { EnrollmentPage } from "./admin/EnrollmentPage";
import { UsersPage } from "./admin/UsersPage";
import { FleetPage } from "./fleet/FleetPage";
import { JobsPage } from "./jobs/JobsPage";
import type { IconName } from "./ui/icons";
import { Loading } from "./ui/feedback";

// Loaded when first visited (their own chunks, with query.proto's and bulk.proto's code). Their
// `needs` name a call of the same access rule already in the first load (QueryKiosks and
// ListKiosks: viewer and up; ListBulkActions and CreateJob: admin), so the navigation does not
// pull those descriptors into it; the pages' own calls are checked by fleet.
const QueryPage = lazy(() => import("./fleet/query/QueryPage").then((m) => ({ default: m.QueryPage })));
const ApprovalsPage = lazy(() => import("./fleet/query/ApprovalsPage").then((m) => ({ default: m.ApprovalsPage })));
const later = (page: ReactNode) => <Suspense fallback={<Loading label="Loading the page" />}>{page}</Suspense>;

export interface PageRoute {
  path: string;
  label: string;
  section: "Fleet" | "Commerce" | "Admin";
  icon: IconName;
  element: ReactNode;
  /** Hidden from roles that may not make this call, and refused by the page itself. */
  needs?: DescMethod;
  /** Shown in the navigation as not built yet. */
  comingSoon?: boolean;
  /** Beside the label in the navigation (a live count). */
  badge?: ComponentType;
}

export const pages: PageRoute[] = [
  { path: "/", label: "Overview", section: "Fleet", icon: "fleet", element: <FleetPage />, needs: KioskService.method.listKiosks },
  { path: "/fleet/query", label: "Query", section: "Fleet", icon: "search", element: later(<QueryPage />), needs: KioskService.method.listKiosks },
  { path: "/jobs", label: "Jobs", section: "Fleet", icon: "jobs", element: <JobsPage />, needs: JobService.method.listJobs },
  { path: "/fleet/approvals", label: "Approvals", section: "Fleet", icon: "key", element: later(<ApprovalsPage />), needs: JobService.method.createJob },
  { path: "/alerts", label: "Alerts", section: "Fleet", icon: "alert", element: <AlertsPage />, needs: AlertService.method.watchAlerts, badge: AlertsBadge },
  { path: "/catalog", label: "Catalog", section: "Commerce", icon: "catalog", element: <CatalogPage />, needs: InventoryService.method.listStock },
  { path: "/orders", label: "Orders", section: "Commerce", icon: "orders", element: <OrdersPage />, needs: OrderService.method.listOrders },
  { path: "/offline", label: "Offline selling", section: "Commerce", icon: "box", element: <OfflinePage />, needs: LeaseService.method.listLeases },
  { path: "/customers/members", label: "Members", section: "Commerce", icon: "users", element: <MembersPage />, needs: MemberService.method.searchMembers },
  { path: "/customers/reviews", label: "Reviews", section: "Commerce", icon: "catalog", element: <ReviewsPage />, needs: ReviewService.method.listReviews },
  { path: "/insights", label: "Insights", section: "Commerce", icon: "insights", element: <InsightsPage />, needs: ModelService.method.listModels },
  { path: "/admin/users", label: "Users & roles", section: "Admin", icon: "users", element: <UsersPage />, needs: UserService.method.listUsers },
  { path: "/admin/enrollment", label: "Enrollment", section: "Admin", icon: "key", element: <EnrollmentPage />, needs: DeviceService.method.createEnrollmentCode },
  { path: "/admin/audit", label: "Audit log", section: "Admin", icon: "audit", element: <AuditPage />, needs: AuditService.method.listAuditEvents },
];

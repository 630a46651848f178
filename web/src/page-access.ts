// The calls the navigation and the route guards check, with the access rule each carries in
// proto/ copied here, so the first load holds no generated code of the pages' services (each
// page's chunk brings its own). test/e2e/page-access.test.ts checks every entry against the
// contract; a page's own calls are still checked there by useCan, and by the services.
import { Role } from "./api/roles.js";

export interface PageNeed {
  /** The call, as `<package>.<Service>.<Method>`. */
  method: string;
  /** Its (adminkiosk.common.v1.access) min_role. */
  minRole: Role;
}

export const needs = {
  listKiosks: { method: "adminkiosk.fleet.v1.KioskService.ListKiosks", minRole: Role.VIEWER },
  getKiosk: { method: "adminkiosk.fleet.v1.KioskService.GetKiosk", minRole: Role.VIEWER },
  queryKiosks: { method: "adminkiosk.fleet.v1.FleetQueryService.QueryKiosks", minRole: Role.VIEWER },
  listBulkActions: { method: "adminkiosk.fleet.v1.BulkActionService.ListBulkActions", minRole: Role.ADMIN },
  getGroupConfig: { method: "adminkiosk.fleet.v1.ConfigService.GetGroupConfig", minRole: Role.VIEWER },
  listJobs: { method: "adminkiosk.fleet.v1.JobService.ListJobs", minRole: Role.VIEWER },
  getJob: { method: "adminkiosk.fleet.v1.JobService.GetJob", minRole: Role.VIEWER },
  listReleases: { method: "adminkiosk.fleet.v1.ReleaseService.ListReleases", minRole: Role.VIEWER },
  listRollouts: { method: "adminkiosk.fleet.v1.RolloutService.ListRollouts", minRole: Role.VIEWER },
  getRollout: { method: "adminkiosk.fleet.v1.RolloutService.GetRollout", minRole: Role.VIEWER },
  watchAlerts: { method: "adminkiosk.notifications.v1.AlertService.WatchAlerts", minRole: Role.VIEWER },
  listStock: { method: "adminkiosk.catalog.v1.InventoryService.ListStock", minRole: Role.VIEWER },
  listOrders: { method: "adminkiosk.orders.v1.OrderService.ListOrders", minRole: Role.VIEWER },
  getOrder: { method: "adminkiosk.orders.v1.OrderService.GetOrder", minRole: Role.VIEWER },
  listLeases: { method: "adminkiosk.catalog.v1.LeaseService.ListLeases", minRole: Role.VIEWER },
  searchMembers: { method: "adminkiosk.customers.v1.MemberService.SearchMembers", minRole: Role.OPERATOR },
  listReviews: { method: "adminkiosk.customers.v1.ReviewService.ListReviews", minRole: Role.VIEWER },
  listModels: { method: "adminkiosk.ai.v1.ModelService.ListModels", minRole: Role.VIEWER },
  listUsers: { method: "adminkiosk.auth.v1.UserService.ListUsers", minRole: Role.ADMIN },
  createEnrollmentCode: { method: "adminkiosk.auth.v1.DeviceService.CreateEnrollmentCode", minRole: Role.ADMIN },
  listAuditEvents: { method: "adminkiosk.auth.v1.AuditService.ListAuditEvents", minRole: Role.ADMIN },
} as const satisfies Record<string, PageNeed>;

/** Whether a person with `role` may make the call (roles are ordered viewer < operator < admin). */
export function meetsNeed(need: PageNeed, role: Role | undefined): boolean {
  return role !== undefined && role !== Role.UNSPECIFIED && role >= need.minRole;
}

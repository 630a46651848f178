// web/src/page-access.ts copies the access rule of each call the navigation and the route
// guards check (so the first load holds no generated code of the pages' services): every
// entry must name a real RPC and carry its (adminkiosk.common.v1.access) rule.
import { describe, expect, it } from "vitest";
import { createRegistry, getOption, type DescMethod } from "@bufbuild/protobuf";
import { access, Role as GeneratedRole } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";
import { file_adminkiosk_auth_v1_auth } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { file_adminkiosk_fleet_v1_fleet } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { file_adminkiosk_fleet_v1_config } from "@adminkiosk/proto/adminkiosk/fleet/v1/config_pb";
import { file_adminkiosk_fleet_v1_jobs } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { file_adminkiosk_fleet_v1_query } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { file_adminkiosk_fleet_v1_bulk } from "@adminkiosk/proto/adminkiosk/fleet/v1/bulk_pb";
import { file_adminkiosk_fleet_v1_releases } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { file_adminkiosk_fleet_v1_rollouts } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { file_adminkiosk_catalog_v1_catalog } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { file_adminkiosk_catalog_v1_leases } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { file_adminkiosk_orders_v1_orders } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { file_adminkiosk_ai_v1_ai } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { file_adminkiosk_notifications_v1_notifications } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { file_adminkiosk_customers_v1_customers } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { needs } from "../../web/src/page-access.js";
import { Role } from "../../web/src/api/roles.js";

const registry = createRegistry(
  file_adminkiosk_auth_v1_auth,
  file_adminkiosk_fleet_v1_fleet,
  file_adminkiosk_fleet_v1_config,
  file_adminkiosk_fleet_v1_jobs,
  file_adminkiosk_fleet_v1_query,
  file_adminkiosk_fleet_v1_bulk,
  file_adminkiosk_fleet_v1_releases,
  file_adminkiosk_fleet_v1_rollouts,
  file_adminkiosk_catalog_v1_catalog,
  file_adminkiosk_catalog_v1_leases,
  file_adminkiosk_orders_v1_orders,
  file_adminkiosk_ai_v1_ai,
  file_adminkiosk_notifications_v1_notifications,
  file_adminkiosk_customers_v1_customers,
);

function method(name: string): DescMethod | undefined {
  const at = name.lastIndexOf(".");
  return registry.getService(name.slice(0, at))?.methods.find((m) => m.name === name.slice(at + 1));
}

describe("the admin web's table of page access rules", () => {
  for (const [key, need] of Object.entries(needs)) {
    it(`${key}: ${need.method}`, () => {
      const m = method(need.method);
      expect(m, `${need.method} is not an RPC in proto/`).toBeDefined();
      const rule = getOption(m!, access);
      expect(rule.public).toBe(false);
      expect(need.minRole).toBe(rule.minRole);
    });
  }
});

describe("the shell's copy of access.proto's Role", () => {
  it("has the generated enum's names and values", () => {
    const generated = Object.fromEntries(Object.entries(GeneratedRole).filter(([, v]) => typeof v === "number"));
    expect(Role).toEqual(generated);
  });
});

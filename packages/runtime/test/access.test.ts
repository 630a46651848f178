// Who may call what: refusalFor over every kind of caller and every shape of rule, and the
// interceptor that applies it, on connect's in-memory router (no servers, no tokens).
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AuthService, DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { AccessRuleSchema, Role, type AccessRule } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";
import { accessInterceptor, accessRuleOf, refusalFor, TokenRejected, type Principal } from "../src/index.js";

const rule = (init: Partial<Pick<AccessRule, "minRole" | "allowDevice" | "services" | "public">>) => create(AccessRuleSchema, init);

const principals: Record<string, Principal> = {
  viewer: { kind: "user", userId: "u-viewer", role: Role.VIEWER, sessionId: "s1" },
  operator: { kind: "user", userId: "u-operator", role: Role.OPERATOR, sessionId: "s2" },
  admin: { kind: "user", userId: "u-admin", role: Role.ADMIN, sessionId: "s3" },
  device: { kind: "device", deviceId: "d1", kioskId: "k1" },
  orders: { kind: "service", service: "orders" },
  fleet: { kind: "service", service: "fleet" },
};

// For each rule: which callers get through (undefined refusal). Everyone else is refused.
const matrix: { name: string; rule: AccessRule; allowed: string[] }[] = [
  { name: "viewer and up", rule: rule({ minRole: Role.VIEWER }), allowed: ["viewer", "operator", "admin"] },
  { name: "operator and up", rule: rule({ minRole: Role.OPERATOR }), allowed: ["operator", "admin"] },
  { name: "admins", rule: rule({ minRole: Role.ADMIN }), allowed: ["admin"] },
  { name: "devices only", rule: rule({ allowDevice: true }), allowed: ["device"] },
  { name: "viewers and devices", rule: rule({ minRole: Role.VIEWER, allowDevice: true }), allowed: ["viewer", "operator", "admin", "device"] },
  { name: "the orders service only", rule: rule({ services: ["orders"] }), allowed: ["orders"] },
  { name: "operators and orders", rule: rule({ minRole: Role.OPERATOR, services: ["orders"] }), allowed: ["operator", "admin", "orders"] },
  { name: "devices and two services", rule: rule({ allowDevice: true, services: ["orders", "fleet"] }), allowed: ["device", "orders", "fleet"] },
  { name: "nobody (an empty rule)", rule: rule({}), allowed: [] },
];

describe("refusalFor", () => {
  for (const { name, rule: r, allowed } of matrix)
    it(`${name}: lets exactly ${allowed.join(", ") || "nobody"} through`, () => {
      const through = Object.entries(principals)
        .filter(([, p]) => refusalFor(r, p) === undefined)
        .map(([who]) => who);
      expect(through).toEqual(allowed);
    });

  it("says why, in words a caller can act on", () => {
    expect(refusalFor(rule({ minRole: Role.ADMIN }), principals.operator!)).toBe("this method requires the admin role");
    expect(refusalFor(rule({ minRole: Role.OPERATOR }), principals.device!)).toBe("kiosk devices may not call this method");
    expect(refusalFor(rule({ minRole: Role.VIEWER }), principals.orders!)).toBe("the orders service may not call this method");
    expect(refusalFor(rule({ services: ["orders"] }), principals.fleet!)).toBe("the fleet service may not call this method");
    expect(refusalFor(rule({ allowDevice: true }), principals.admin!)).toBe("only kiosk devices may call this method");
    expect(refusalFor(rule({ services: ["orders"] }), principals.admin!)).toBe("only the platform's services may call this method");
  });

  it("a service name is matched exactly", () => {
    expect(refusalFor(rule({ services: ["orders"] }), { kind: "service", service: "Orders" })).toBeDefined();
    expect(refusalFor(rule({ services: ["orders"] }), { kind: "service", service: "order" })).toBeDefined();
  });
});

describe("accessInterceptor", () => {
  const tokens: Record<string, Principal> = { "admin-token": principals.admin!, "viewer-token": principals.viewer!, "device-token": principals.device! };
  const verify = async (token: string) => {
    if (token === "verifier-down") throw new Error("JWKS unreachable");
    const p = tokens[token];
    if (!p) throw new TokenRejected("token expired");
    return p;
  };
  const transport = createRouterTransport(
    (router) => {
      router.service(AuthService, { login: () => ({}), whoAmI: () => ({}) });
      router.service(DeviceService, { revokeDevice: () => ({ revokedCount: 1 }), renewDeviceCredential: () => ({}) });
    },
    { router: { interceptors: [accessInterceptor(verify)] } },
  );
  const auth = createClient(AuthService, transport);
  const devices = createClient(DeviceService, transport);
  const as = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  const codeOf = async (call: Promise<unknown>) => {
    try {
      await call;
      return "OK";
    } catch (err) {
      return Code[ConnectError.from(err).code];
    }
  };

  it("reads each method's rule from the contract", () => {
    expect(accessRuleOf(AuthService.method.login)?.public).toBe(true);
    expect(accessRuleOf(DeviceService.method.revokeDevice)?.minRole).toBe(Role.ADMIN);
    expect(accessRuleOf(DeviceService.method.renewDeviceCredential)?.allowDevice).toBe(true);
  });

  it("a public method needs no credential, and a bad one does not stop it", async () => {
    await expect(auth.login({})).resolves.toBeDefined();
    await expect(auth.login({}, as("garbage"))).resolves.toBeDefined();
  });

  it("no credential is Unauthenticated; a rejected one too, with the verifier's reason", async () => {
    expect(await codeOf(devices.revokeDevice({ kioskId: "k1" }))).toBe("Unauthenticated");
    expect(await codeOf(devices.revokeDevice({ kioskId: "k1" }, { headers: { authorization: "Basic abc" } }))).toBe("Unauthenticated");
    await expect(devices.revokeDevice({ kioskId: "k1" }, as("stale"))).rejects.toThrow(/token expired/);
  });

  it("a verifier that cannot answer is Unavailable, not a refusal", async () => {
    expect(await codeOf(devices.revokeDevice({ kioskId: "k1" }, as("verifier-down")))).toBe("Unavailable");
  });

  it("applies the rule: admins revoke, viewers and devices are PermissionDenied; devices renew", async () => {
    await expect(devices.revokeDevice({ kioskId: "k1" }, as("admin-token"))).resolves.toMatchObject({ revokedCount: 1 });
    expect(await codeOf(devices.revokeDevice({ kioskId: "k1" }, as("viewer-token")))).toBe("PermissionDenied");
    await expect(devices.revokeDevice({ kioskId: "k1" }, as("device-token"))).rejects.toThrow(/kiosk devices may not call this method/);
    await expect(devices.renewDeviceCredential({}, as("device-token"))).resolves.toBeDefined();
    expect(await codeOf(devices.renewDeviceCredential({}, as("admin-token")))).toBe("PermissionDenied");
  });

  it("the scheme is case-insensitive and surrounding space is forgiven", async () => {
    await expect(devices.revokeDevice({ kioskId: "k1" }, { headers: { authorization: "  bearer admin-token " } })).resolves.toBeDefined();
  });
});

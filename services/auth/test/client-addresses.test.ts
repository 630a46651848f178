// Login and enrollment limits behind the edge: each client is counted by the address the
// edge vouches for (x-adminkiosk-client-address, with TRUST_PROXY), so one client's abuse
// is not everyone's, and a stranger cannot lock an admin out by knowing the admin's email.
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService, AuthService, DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { clientAddressHeader } from "../src/client-address.js";
import { adminEmail, adminPassword, failure, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";

/** What the edge adds to every request it forwards (envoy/envoy.yaml, request_headers_to_add). */
const viaEdge = (address: string, extra: Record<string, string> = {}): Interceptor => (next) => async (req) => {
  req.header.set(clientAddressHeader, address);
  for (const [name, value] of Object.entries(extra)) req.header.set(name, value);
  return next(req);
};
const from = (auth: AuthFixture, address: string, extra?: Record<string, string>) =>
  createClient(AuthService, createGrpcTransport({ baseUrl: auth.service.url, interceptors: [viaEdge(address, extra)] }));
const address = (i: number) => `203.0.113.${i}`;

let edge: AuthFixture;
beforeAll(async () => {
  // auth behind the edge, with its default budget of 30 attempts per address per minute.
  edge = await startAuth({ TRUST_PROXY: "true", LOGIN_RATE_PER_IP: "30", LOGIN_FAILURE_MAX_DELAY: "1s", PASSWORD_SCRYPT_LOG_N: "12" });
});
afterAll(() => edge?.stop());

describe("behind the edge (TRUST_PROXY=true)", () => {
  it("one address's attempts do not use up another's: 31 clients, one over its budget", async () => {
    const noisy = from(edge, address(1));
    for (let i = 0; i < 30; i++) {
      expect((await failure(noisy.login({ email: `guess${i}@test.local`, password: "wrong-password-x" }))).code).toBe(Code.Unauthenticated);
    }
    const over = await failure(noisy.login({ email: adminEmail, password: adminPassword }));
    expect(over.code).toBe(Code.ResourceExhausted);
    expect(over.rawMessage).toMatch(/too many attempts from this address; retry in \d+ s/);
    // 30 other clients behind the same edge sign in, each from its own address.
    for (let i = 2; i <= 31; i++) {
      const res = await from(edge, address(i)).login({ email: adminEmail, password: adminPassword });
      expect(res.tokens?.accessToken).toBeTruthy();
    }
    // Enrollment has its own budget per address: the noisy client's logins did not spend it.
    const enroll = createClient(DeviceService, createGrpcTransport({ baseUrl: edge.service.url, interceptors: [viaEdge(address(1))] }));
    expect((await failure(enroll.enrollDevice({ code: "AAAA-BBBB-CCCC-DDDD-EEEE" }))).code).toBe(Code.Unauthenticated);
    // The audit log names the client, not the edge.
    const { events } = await edge.client(AuditService, await edge.adminToken()).listAuditEvents({ type: "login.rate_limited" });
    expect(events.map((e) => e.ip)).toContain(address(1));
  });

  it("a stranger's failures for the admin's email do not stop the admin signing in from elsewhere", async () => {
    const stranger = from(edge, address(100));
    const codes: Code[] = [];
    for (let i = 0; i < 8; i++) codes.push((await failure(stranger.login({ email: adminEmail, password: `not-the-password-${i}` }))).code);
    expect(codes).toEqual([...Array(5).fill(Code.Unauthenticated), ...Array(3).fill(Code.ResourceExhausted)]);
    // The stranger's address is refused for this account, even with the right password...
    const refused = await failure(stranger.login({ email: adminEmail, password: adminPassword }));
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.rawMessage).toMatch(/too many failed logins for this account from this address; retry in \d+ s/);
    // ...and the admin, from another address, is not.
    const admin = await from(edge, address(101)).login({ email: adminEmail, password: adminPassword });
    expect(admin.user?.email).toBe(adminEmail);
  });

  it("failures spread over many addresses slow the account's logins down, they do not lock it", async () => {
    const victim = await edge.userWithRole(Role.VIEWER);
    for (let a = 0; a < 4; a++) {
      for (let i = 0; i < 5; i++) {
        expect((await failure(from(edge, address(150 + a)).login({ email: victim.email, password: "wrong-password-x" }))).code).toBe(Code.Unauthenticated);
      }
    }
    // 20 failures for the account: past the threshold every attempt waits (up to
    // LOGIN_FAILURE_MAX_DELAY), and the right password still signs in.
    const ok = await from(edge, address(160)).login({ email: victim.email, password: "a-long-enough-password" });
    expect(ok.user?.email).toBe(victim.email);
  });

  it("x-forwarded-for is not a client address: only the edge's header is", async () => {
    const res = await fetch(`${edge.service.url}/adminkiosk.auth.v1.AuthService/Login`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": "198.51.100.77" },
      body: JSON.stringify({ email: "xff@test.local", password: "wrong-password-123" }),
    });
    expect(res.status).toBe(401);
    const { events } = await edge.client(AuditService, await edge.adminToken()).listAuditEvents({ type: "login.failed", subject: "xff@test.local" });
    expect(events[0]?.ip).toBeTruthy();
    expect(events[0]?.ip).not.toBe("198.51.100.77");
  });

  it("a header that is not an IP address is ignored", async () => {
    await failure(from(edge, "not-an-address").login({ email: "junk@test.local", password: "wrong-password-123" }));
    const { events } = await edge.client(AuditService, await edge.adminToken()).listAuditEvents({ type: "login.failed", subject: "junk@test.local" });
    expect(events[0]?.ip).not.toBe("not-an-address");
  });
});

describe("without TRUST_PROXY (auth reachable directly)", () => {
  it("the header is ignored: a direct caller cannot pick its address", async () => {
    const direct = await startAuth({ LOGIN_RATE_PER_IP: "3", PASSWORD_SCRYPT_LOG_N: "12" });
    try {
      for (let i = 0; i < 3; i++) await failure(from(direct, address(200 + i)).login({ email: `d${i}@test.local`, password: "wrong-password-x" }));
      // A fourth "address" is the same socket: refused.
      const err = await failure(from(direct, address(210)).login({ email: adminEmail, password: adminPassword }));
      expect(err.code).toBe(Code.ResourceExhausted);
      expect(err.rawMessage).toMatch(/from this address/);
    } finally {
      await direct.stop();
    }
  });
});

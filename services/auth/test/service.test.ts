// What operators and tools see of the auth process: health, reflection, metrics,
// input errors, configuration errors, logs and shutdown.
import { execFile, spawnSync } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { AuthService, DeviceService, UserService, AuditService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@adminkiosk/proto/grpc/health/v1/health_pb";
import { ServerReflection } from "@adminkiosk/proto/grpc/reflection/v1/reflection_pb";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { eventually, freePort, repoRoot, startPostgres } from "@adminkiosk/devstack";
import { adminEmail, adminPassword, Role, startAuth, failure, type AuthFixture } from "../../../test/support/auth.js";

const run = promisify(execFile);


let auth: AuthFixture;
let admin: string;
beforeAll(async () => {
  auth = await startAuth();
  admin = await auth.adminToken();
});
afterAll(() => auth?.stop());

describe("bad input is InvalidArgument naming the field", () => {
  const cases: [string, (a: AuthFixture) => Promise<unknown>, string][] = [
    ["empty email", (a) => a.client(AuthService).login({ email: "", password: "x" }), "email"],
    ["malformed email", (a) => a.client(AuthService).login({ email: "not-an-email", password: "x" }), "email"],
    ["oversized password", (a) => a.client(AuthService).login({ email: adminEmail, password: "p".repeat(257) }), "password"],
    ["empty refresh token", (a) => a.client(AuthService).refresh({ refreshToken: "" }), "refresh_token"],
    ["short new password", (a) => a.client(UserService, admin).createUser({ email: "n@test.local", displayName: "N", role: Role.VIEWER, password: "short" }), "password"],
    ["missing role", (a) => a.client(UserService, admin).createUser({ email: "n@test.local", displayName: "N", password: "long-enough-password" }), "role"],
    ["control characters", (a) => a.client(UserService, admin).createUser({ email: "n@test.local", displayName: "a\u0000b", role: Role.VIEWER, password: "long-enough-password" }), "display_name"],
    ["malformed user id", (a) => a.client(UserService, admin).getUser({ userId: "42" }), "user_id"],
    ["malformed kiosk id", (a) => a.client(DeviceService, admin).createEnrollmentCode({ kioskId: "kiosk 1/../x" }), "kiosk_id"],
    ["oversized kiosk id", (a) => a.client(DeviceService, admin).createEnrollmentCode({ kioskId: "k".repeat(65) }), "kiosk_id"],
    ["ttl out of range", (a) => a.client(DeviceService, admin).createEnrollmentCode({ kioskId: "k1", ttlSeconds: 5 }), "ttl_seconds"],
    ["malformed enrollment code", (a) => a.client(DeviceService).enrollDevice({ code: "hello" }), "code"],
    ["page size out of range", (a) => a.client(UserService, admin).listUsers({ pageSize: 100_000 }), "page_size"],
    ["forged page token", (a) => a.client(AuditService, admin).listAuditEvents({ pageToken: "not-a-token" }), "page_token"],
  ];
  for (const [name, call, field] of cases) {
    it(name, async () => {
      const err = await failure(call(auth));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage.startsWith(`${field}: `)).toBe(true);
      expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe(field);
    });
  }

  it("a request over the size limit is refused before it is parsed", async () => {
    const err = await failure(auth.client(AuthService).login({ email: adminEmail, password: "p".repeat(2 * 1024 * 1024) }));
    expect(err.code).toBe(Code.ResourceExhausted);
  });

  it("pages through users with a page token", async () => {
    for (let i = 0; i < 3; i++) await auth.userWithRole(Role.VIEWER);
    const first = await auth.client(UserService, admin).listUsers({ pageSize: 2 });
    expect(first.users).toHaveLength(2);
    const second = await auth.client(UserService, admin).listUsers({ pageSize: 2, pageToken: first.nextPageToken });
    expect(second.users[0]!.email > first.users[1]!.email).toBe(true);
  });
});

describe("tooling", () => {
  it("reflection lists every auth service (v1 protocol, generated client)", async () => {
    const client = auth.client(ServerReflection);
    async function* one() {
      yield { host: "", messageRequest: { case: "listServices" as const, value: "" } };
    }
    const names: string[] = [];
    for await (const res of client.serverReflectionInfo(one())) {
      if (res.messageResponse.case === "listServicesResponse") names.push(...res.messageResponse.value.service.map((s) => s.name));
    }
    expect(names).toEqual(expect.arrayContaining(["adminkiosk.auth.v1.AuthService", "adminkiosk.auth.v1.UserService", "grpc.health.v1.Health"]));
  });

  it("buf curl lists and calls RPCs through reflection", async () => {
    const buf = join(repoRoot, "node_modules/.bin/buf");
    const listed = await run(buf, ["curl", "--http2-prior-knowledge", "--reflect", "--list-methods", auth.service.url]);
    expect(listed.stdout).toContain("adminkiosk.auth.v1.AuthService/Login");
    const login = await run(buf, [
      "curl", "--http2-prior-knowledge", "--protocol", "grpc", "--reflect",
      "-d", JSON.stringify({ email: adminEmail, password: adminPassword }),
      `${auth.service.url}/adminkiosk.auth.v1.AuthService/Login`,
    ]);
    const token = JSON.parse(login.stdout).tokens.accessToken as string;
    const users = await run(buf, [
      "curl", "--http2-prior-knowledge", "--reflect", "-H", `authorization: Bearer ${token}`,
      `${auth.service.url}/adminkiosk.auth.v1.UserService/ListUsers`,
    ]);
    expect(JSON.parse(users.stdout).users.map((u: { email: string }) => u.email)).toContain(adminEmail);
  });

  it("/metrics counts RPCs by method and code", async () => {
    await failure(auth.client(AuthService).login({ email: adminEmail, password: "wrong-password!" }));
    const text = await (await fetch(`${auth.service.url}/metrics`)).text();
    expect(text).toMatch(/grpc_server_handled_total\{[^}]*grpc_method="Login"[^}]*grpc_code="OK"[^}]*\} \d+/);
    expect(text).toMatch(/grpc_server_handled_total\{[^}]*grpc_method="Login"[^}]*grpc_code="Unauthenticated"[^}]*\} \d+/);
    expect(text).toMatch(/grpc_server_handling_seconds_bucket\{[^}]*grpc_method="Login"/);
    expect(text).toMatch(/adminkiosk_health_serving\{service="auth"\} 1/);
  });

  it("echoes the request id on success and failure", async () => {
    const ok = await fetch(`${auth.service.url}/adminkiosk.auth.v1.AuthService/Login`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "support-ticket-42" },
      body: JSON.stringify({ email: adminEmail, password: "nope-nope-nope" }),
    });
    expect(ok.status).toBe(401);
    expect(ok.headers.get("x-request-id")).toBe("support-ticket-42");
    await expect.poll(() => auth.service.output.some((l) => l.includes("support-ticket-42")), eventually).toBe(true);
  });
});

describe("deadlines", () => {
  it("a call whose deadline passes while the server works ends in DeadlineExceeded", async () => {
    // Login hashes with scrypt (~100 ms): a 1 ms deadline, sent as the Connect timeout header, cannot be met.
    const res = await fetch(`${auth.service.url}/adminkiosk.auth.v1.AuthService/Login`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-timeout-ms": "1" },
      body: JSON.stringify({ email: adminEmail, password: adminPassword }),
    });
    expect(((await res.json()) as { code: string }).code).toBe("deadline_exceeded");
  });

  it("a deadline beyond the service's maximum is refused", async () => {
    const res = await fetch(`${auth.service.url}/adminkiosk.auth.v1.AuthService/Login`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-timeout-ms": String(10 * 60_000) },
      body: JSON.stringify({ email: adminEmail, password: adminPassword }),
    });
    expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
  });
});

describe("secrets", () => {
  it("passwords, refresh tokens and codes never reach the log; only hashes are stored", async () => {
    const secretPassword = "very-secret-password-Zq9";
    const user = await auth.client(UserService, admin).createUser({ email: "secret@test.local", displayName: "S", role: Role.VIEWER, password: secretPassword });
    const tokens = await auth.login("secret@test.local", secretPassword);
    await auth.client(AuthService).refresh({ refreshToken: tokens.refreshToken });
    const { code } = await auth.client(DeviceService, admin).createEnrollmentCode({ kioskId: "kiosk-secret" });
    await auth.client(DeviceService).enrollDevice({ code });
    const log = auth.service.output.join("\n");
    for (const secret of [secretPassword, adminPassword, tokens.refreshToken, tokens.accessToken, code]) expect(log).not.toContain(secret);
    const pg = (await import("pg")).default;
    const db = new pg.Client({ connectionString: auth.databaseUrl });
    await db.connect();
    const dump = JSON.stringify((await db.query("SELECT u.*, r.*, e.* FROM auth.users u, auth.refresh_tokens r, auth.enrollment_codes e")).rows);
    const audit = JSON.stringify((await db.query("SELECT * FROM auth.audit_events")).rows);
    await db.end();
    for (const secret of [secretPassword, tokens.refreshToken, code]) {
      expect(dump).not.toContain(secret);
      expect(audit).not.toContain(secret);
    }
    expect(user.user?.userId).toBeDefined();
  });
});

describe("configuration", () => {
  const start = (env: Record<string, string>) =>
    spawnSync(process.execPath, ["--import", "tsx", join(repoRoot, "services/auth/src/main.ts")], {
      env: { PATH: process.env["PATH"] ?? "", ...env },
      encoding: "utf8",
      timeout: 20_000,
    });

  it("a missing variable stops start-up with one line naming it", () => {
    const { status, stderr } = start({ REDIS_URL: "redis://127.0.0.1:1", AUTH_KEY_ENCRYPTION_KEY: Buffer.alloc(32).toString("base64") });
    expect(status).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(/DATABASE_URL: is required/);
  });

  it("a malformed variable is named, its secret value is not", () => {
    const { status, stderr } = start({ ...auth.env, AUTH_PORT: "seventy", AUTH_KEY_ENCRYPTION_KEY: "c2hvcnQ=" });
    expect(status).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(/AUTH_PORT/);
    expect(stderr).toMatch(/AUTH_KEY_ENCRYPTION_KEY: must be 32 bytes/);
    expect(stderr).not.toContain("c2hvcnQ=");
  });
});

describe("health", () => {
  it("goes NOT_SERVING while PostgreSQL is down and SERVING when it is back", async () => {
    const infra = inject("infra");
    const pg = await startPostgres(join(infra.tmpDir, `pg-health-${process.pid}`), await freePort());
    const own = await startAuth({}, pg.url);
    try {
      const health = own.client(Health);
      const token = await own.adminToken();
      expect((await health.check({})).status).toBe(Status.SERVING);
      expect((await health.check({ service: "adminkiosk.auth.v1.AuthService" })).status).toBe(Status.SERVING);
      await pg.stop();
      await expect.poll(async () => (await health.check({})).status, eventually).toBe(Status.NOT_SERVING);
      const ready = await fetch(`${own.service.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.stringify(await ready.json())).toMatch(/postgres/);
      expect(await (await fetch(`${own.service.url}/metrics`)).text()).toMatch(/adminkiosk_health_serving\{service="auth"\} 0/);
      // Calls needing the database fail as Unavailable, not as a stack trace.
      const err = await failure(own.client(UserService, token).listUsers({}));
      expect(err.code).toBe(Code.Unavailable);
      await pg.start();
      await expect.poll(async () => (await health.check({})).status, eventually).toBe(Status.SERVING);
      await own.login(adminEmail, adminPassword);
    } finally {
      await own.stop();
      await pg.stop();
    }
  }, 60_000);

  it("an unknown service name is NotFound", async () => {
    expect((await failure(auth.client(Health).check({ service: "nope.v1.Nope" }))).code).toBe(Code.NotFound);
  });
});

describe("shutdown", () => {
  it("SIGTERM: health watchers see NOT_SERVING, then the process exits cleanly", async () => {
    const own = await startAuth();
    const seen: Status[] = [];
    const watching = (async () => {
      try {
        for await (const res of own.client(Health).watch({})) seen.push(res.status);
      } catch {
        // the stream ends when the server goes away
      }
    })();
    await expect.poll(() => seen.length, eventually).toBeGreaterThan(0);
    own.service.child.kill("SIGTERM");
    // No bound on how long it takes (that is the machine's speed): a process that did not
    // exit on its own would leave `exited` pending and fail the test by its timeout.
    const code = await own.service.exited;
    await watching;
    expect(code).toBe(0);
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
    expect(own.service.output.join("\n")).toMatch(/shut down/);
  });
});

describe("forged page tokens", () => {
  // Well-formed JSON with values of the wrong shape must not reach the database.
  const forged = (cursor: object) => Buffer.from(JSON.stringify(cursor)).toString("base64url");
  it("is InvalidArgument for every listing", async () => {
    for (const call of [
      () => auth.client(AuditService, admin).listAuditEvents({ pageToken: forged({ before: "abc" }) }),
      () => auth.client(DeviceService, admin).listDevices({ pageToken: forged({ at: "yesterday", id: "x" }) }),
      () => auth.client(UserService, admin).listUsers({ pageToken: forged({ email: 42 }) }),
    ]) {
      const err = await failure(call());
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toMatch(/^page_token: /);
    }
  });
});

describe("client addresses behind a proxy", () => {
  it("with TRUST_PROXY, the address the edge vouches for is recorded, never one from x-forwarded-for", async () => {
    const proxied = await startAuth({ TRUST_PROXY: "true" });
    try {
      const res = await fetch(`${proxied.service.url}/adminkiosk.auth.v1.AuthService/Login`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": "6.6.6.6, 198.51.100.1", "x-adminkiosk-client-address": "203.0.113.7" },
        body: JSON.stringify({ email: adminEmail, password: "wrong-password-123" }),
      });
      expect(res.status).toBe(401);
      const { events } = await proxied.client(AuditService, await proxied.adminToken()).listAuditEvents({ type: "login.failed" });
      expect(events[0]?.ip).toBe("203.0.113.7");
    } finally {
      await proxied.stop();
    }
  });

  it("without TRUST_PROXY, the socket's address is recorded whatever the headers say", async () => {
    const res = await fetch(`${auth.service.url}/adminkiosk.auth.v1.AuthService/Login`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": "6.6.6.6", "x-adminkiosk-client-address": "203.0.113.8" },
      body: JSON.stringify({ email: "direct@test.local", password: "wrong-password-123" }),
    });
    expect(res.status).toBe(401);
    const { events } = await auth.client(AuditService, admin).listAuditEvents({ type: "login.failed", subject: "direct@test.local" });
    expect(events[0]?.ip).toMatch(/127\.0\.0\.1|::1/);
  });
});

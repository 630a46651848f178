// Starts a real auth process on its own database and Redis DB, seeds an admin, and
// hands out typed clients, the way a kiosk, the web app or another service calls it.
// Used by auth's tests and by every service whose tests need real tokens.
import { randomBytes } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { inject } from "vitest";
import { AuthService, ServiceIdentityService, UserService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { Role } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";
import { createDatabase, isolatedRedisUrl, repoRoot, seedFirstAdmin, startTestService, testKeyEncryptionKey, type StartedService } from "@adminkiosk/devstack";
import { keptToken } from "@adminkiosk/runtime";

export { Role };

export const adminEmail = "admin@test.local";
export const adminPassword = "admin-password-123";

export interface AuthFixture {
  service: StartedService;
  databaseUrl: string;
  redisUrl: string;
  env: Record<string, string>;
  /**
   * What a platform service needs to call others as itself (AUTH_URL, SERVICE_SECRET):
   * auth knows a secret for each of `platformServiceNames`.
   */
  serviceEnv(service: PlatformServiceName): { AUTH_URL: string; SERVICE_SECRET: string };
  /** A service token for `service`, straight from auth (as that service would obtain it). */
  serviceToken(service: PlatformServiceName): Promise<string>;
  client<S extends DescService>(service: S, token?: string): Client<S>;
  /** Logs in and returns the token pair. */
  login(email: string, password: string): Promise<{ accessToken: string; refreshToken: string }>;
  /**
   * Creates a user with `role` (as the admin) and returns its first tokens, and `token()`:
   * an access token that is not about to expire (signing in again when needed).
   */
  userWithRole(role: Role): Promise<{ email: string; accessToken: string; refreshToken: string; userId: string; token(): Promise<string> }>;
  /** The admin's access token, never one about to expire (signing in again when needed). */
  adminToken(): Promise<string>;
  stop(): Promise<void>;
}

/** The ConnectError a call fails with; throws if it succeeds. */
export async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

/** Sends `token`, or asks `token()` for one at each call (a fixture's fresh token). */
export function bearer(token: string | (() => Promise<string>)): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `Bearer ${typeof token === "string" ? token : await token()}`);
    return next(req);
  };
}

export function clientFor<S extends DescService>(service: S, url: string, token?: string): Client<S> {
  return createClient(service, createGrpcTransport({ baseUrl: url, interceptors: token ? [bearer(token)] : [] }));
}

/** The services a test auth issues service tokens to. */
export const platformServiceNames = ["orders", "fleet", "link", "catalog", "payments", "ai", "notifications"] as const;
export type PlatformServiceName = (typeof platformServiceNames)[number];

/** `postgresUrl`: the cluster to create auth's database on (the shared test cluster by default). */
export async function startAuth(settings: Record<string, string> = {}, postgresUrl?: string): Promise<AuthFixture> {
  const infra = inject("infra");
  const databaseUrl = await createDatabase(postgresUrl ?? infra.databaseUrl, "auth");
  const redisUrl = await isolatedRedisUrl(infra.redisUrl);
  seedFirstAdmin(repoRoot, databaseUrl, adminEmail, adminPassword);
  const serviceSecrets = Object.fromEntries(platformServiceNames.map((name) => [name, randomBytes(32).toString("base64url")])) as Record<PlatformServiceName, string>;
  const env = {
    SERVICE_SECRETS: Object.entries(serviceSecrets)
      .map(([name, secret]) => `${name}=${secret}`)
      .join(","),
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    NATS_URL: infra.natsUrl,
    AUTH_KEY_ENCRYPTION_KEY: testKeyEncryptionKey(),
    LOGIN_RATE_PER_IP: "10000",
    LOGIN_FAILURES_PER_ACCOUNT: "5",
    HEALTH_PROBE_INTERVAL_MS: "300",
    SHUTDOWN_GRACE_MS: "3000",
    ...settings,
  };
  const service = await startTestService("auth", env);
  const client = <S extends DescService>(s: S, token?: string) => clientFor(s, service.url, token);
  const login = async (email: string, password: string) => {
    const res = await client(AuthService).login({ email, password });
    return { accessToken: res.tokens!.accessToken, refreshToken: res.tokens!.refreshToken };
  };
  const adminToken = freshToken(async () => (await login(adminEmail, adminPassword)).accessToken);
  let counter = 0;
  return {
    service,
    databaseUrl,
    redisUrl,
    env,
    serviceEnv: (name) => ({ AUTH_URL: service.url, SERVICE_SECRET: serviceSecrets[name] }),
    serviceToken: async (name) => (await client(ServiceIdentityService).issueServiceToken({ service: name, secret: serviceSecrets[name] })).accessToken,
    client,
    login,
    adminToken,
    async userWithRole(role) {
      const email = `user${++counter}-${Date.now()}@test.local`;
      const password = "a-long-enough-password";
      const { user } = await client(UserService, await adminToken()).createUser({ email, displayName: `User ${counter}`, role, password });
      const first = await login(email, password);
      const token = freshToken(async () => (await login(email, password)).accessToken, first.accessToken);
      return { email, userId: user!.userId, ...first, token };
    },
    stop: () => service.stop(),
  };
}

/**
 * Keeps an access token from `obtain` (the runtime's keptToken, with the JWT's own iat and
 * exp) and renews it when less than a third of its lifetime, and at least 5 s, is left: a
 * fixture never hands out a token that can expire under a slow machine, whatever
 * ACCESS_TOKEN_TTL a test sets. `first`, when given, is handed out first.
 */
export function freshToken(obtain: () => Promise<string>, first?: string): () => Promise<string> {
  let pending = first;
  return keptToken(async () => {
    const token = pending ?? (await obtain());
    pending = undefined;
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { iat?: number; exp?: number };
    return { token, issuedAt: (claims.iat ?? 0) * 1000, expiresAt: (claims.exp ?? 0) * 1000 };
  }, 5_000);
}

// A real auth and a real ai process on their own database, with an admin, a viewer and
// enrolled kiosk devices, and a direct pool on ai's schema to seed generated history.
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { inject } from "vitest";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { ModelService } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { createDatabase, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { createLogger, createPool, type Pool } from "@adminkiosk/runtime";
import { clientFor, Role, startAuth, type AuthFixture } from "../../../test/support/auth.js";

export interface AiFixture {
  auth: AuthFixture;
  ai: StartedService;
  /** A real catalog ai reads stock from as itself (with `withCatalog`). */
  catalog?: StartedService;
  pool: Pool;
  tokens: { admin: string; viewer: string };
  as<S extends DescService>(service: S, token: string): Client<S>;
  device(kioskId: string): Promise<string>;
  stop(): Promise<void>;
}

/** `natsUrl`: a NATS of the test file's own instead of the run's shared one (for tests counting what ai publishes). */
export async function startAi(settings: Record<string, string> = {}, options: { withCatalog?: boolean; natsUrl?: string } = {}): Promise<AiFixture> {
  const infra = { ...inject("infra"), ...(options.natsUrl ? { natsUrl: options.natsUrl } : {}) };
  const auth = await startAuth();
  const databaseUrl = await createDatabase(infra.databaseUrl, "ai");
  const catalog = options.withCatalog
    ? await startTestService("catalog", {
        DATABASE_URL: await createDatabase(infra.databaseUrl, "catalog"),
        REDIS_URL: auth.redisUrl,
        NATS_URL: infra.natsUrl,
        AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
        HEALTH_PROBE_INTERVAL_MS: "300",
        SHUTDOWN_GRACE_MS: "3000",
      })
    : undefined;
  const ai = await startTestService("ai", {
    ...(catalog ? { CATALOG_URL: catalog.url, ...auth.serviceEnv("ai"), AI_STOCK_REFRESH_MS: "300" } : {}),
    DATABASE_URL: databaseUrl,
    REDIS_URL: auth.redisUrl,
    NATS_URL: infra.natsUrl,
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    HEALTH_PROBE_INTERVAL_MS: "300",
    SHUTDOWN_GRACE_MS: "3000",
    AI_MODEL_REFRESH_MS: "500",
    // Its own durable on ORDERS: other ai processes on the shared test NATS must not take its messages.
    ORDERS_EVENTS_CONSUMER: `ai-orders-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    // …and on LINK, from its start (not the other tests' kiosks' history).
    AI_LINK_EVENTS_CONSUMER: `ai-link-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    AI_LINK_EVENTS_SINCE_START: "true",
    ...settings,
  });
  const tokens = { admin: await auth.adminToken(), viewer: (await auth.userWithRole(Role.VIEWER)).accessToken };
  // A fresh process fetches auth's JWKS on its first authenticated call; start once that works.
  await waitFor("ai to verify tokens", async () => (await clientFor(ModelService, ai.url, tokens.admin).listModels({}), true), {
    timeout: 60_000,
    interval: 500,
    retry: (err) => ConnectError.from(err).code === Code.Unavailable,
  });
  const pool = createPool(databaseUrl, "ai", createLogger("ai-test", "warn"), 2);
  const devices = new Map<string, Promise<string>>();
  return {
    auth,
    ai,
    catalog,
    pool,
    tokens,
    as: (service, token) => clientFor(service, ai.url, token),
    device(kioskId) {
      let credential = devices.get(kioskId);
      if (!credential) {
        credential = (async () => {
          const { code } = await auth.client(DeviceService, tokens.admin).createEnrollmentCode({ kioskId });
          return (await auth.client(DeviceService).enrollDevice({ code })).deviceCredential;
        })();
        devices.set(kioskId, credential);
      }
      return credential;
    },
    async stop() {
      await pool.end();
      await ai.stop();
      await catalog?.stop();
      await auth.stop();
    },
  };
}

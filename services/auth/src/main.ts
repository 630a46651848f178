// auth: wire-up only. Reads config, runs migrations, starts the server.
import { fileURLToPath } from "node:url";
import {
  authSubjects,
  closeNats,
  connectNats,
  createLogger,
  createPool,
  createRedis,
  createTokenVerifier,
  redisRevocationCheck,
  loadConfig,
  migrate,
  onShutdownSignal,
  startOutboxRelay,
  runService,
  startService,
} from "@adminkiosk/runtime";
import { authConfigShape } from "./config.js";
import { clientAddressInterceptor } from "./client-address.js";
import { createDeviceRegistry } from "./devices.js";
import { createKeyRing } from "./keys.js";
import { createLoginLimiter } from "./rate-limit.js";
import { authRoutes, authServices } from "./server.js";
import { serviceIdentityRoutes } from "./service-tokens.js";
import { createSessions } from "./sessions.js";
import { createSso } from "./sso.js";
import { ssoProviders } from "./sso-config.js";

const migrations = fileURLToPath(new URL("../migrations", import.meta.url));

async function main() {
  const config = loadConfig(authConfigShape);
  const log = createLogger("auth", config.LOG_LEVEL);
  await migrate(config.DATABASE_URL, "auth", migrations, log);
  const pool = createPool(config.DATABASE_URL, "auth", log);
  const redis = createRedis(config.REDIS_URL, log);
  const nats = connectNats(config.NATS_URL, "auth", log);
  const outbox = startOutboxRelay({ pool, nats, log, stream: authSubjects.stream });
  const keys = createKeyRing(pool, Buffer.from(config.AUTH_KEY_ENCRYPTION_KEY, "base64"), Math.max(config.ACCESS_TOKEN_TTL, config.DEVICE_CREDENTIAL_TTL, config.SERVICE_TOKEN_TTL));
  await keys.ensureFresh(config.SIGNING_KEY_MAX_AGE);
  const rotation = setInterval(() => keys.ensureFresh(config.SIGNING_KEY_MAX_AGE).catch((err: unknown) => log.error({ err }, "key rotation failed")), 3_600_000);
  rotation.unref();
  const devices = createDeviceRegistry(pool, redis, keys, config.DEVICE_CREDENTIAL_TTL);
  await devices.syncRevocations().catch((err: unknown) => log.warn({ err }, "could not mirror revocations into redis yet"));
  const limiter = createLoginLimiter(redis, {
    perIpPerMinute: config.LOGIN_RATE_PER_IP,
    failuresPerAccount: config.LOGIN_FAILURES_PER_ACCOUNT,
    failureWindowMs: config.LOGIN_FAILURE_WINDOW,
    maxDelayMs: config.LOGIN_FAILURE_MAX_DELAY,
  });
  const sso = createSso(pool, log, {
    providers: ssoProviders(config.SSO_PROVIDERS, config.SSO_CLIENT_SECRETS, config.SSO_REDIRECT_URI),
    redirectUri: config.SSO_REDIRECT_URI,
    postLogoutRedirectUri: config.SSO_POST_LOGOUT_REDIRECT_URI,
    loginTtlMs: config.SSO_LOGIN_TTL,
    recheckIntervalMs: config.SSO_RECHECK_INTERVAL,
    passwordDisabledDomains: config.PASSWORD_LOGIN_DISABLED_DOMAINS,
    encryptionKey: Buffer.from(config.AUTH_KEY_ENCRYPTION_KEY, "base64"),
  });
  const sessions = createSessions(
    pool,
    redis,
    keys,
    limiter,
    {
      accessTtlMs: config.ACCESS_TOKEN_TTL,
      refreshTtlMs: config.REFRESH_TOKEN_TTL,
      sessionMaxLifetimeMs: config.SESSION_MAX_LIFETIME,
      scryptLogN: config.PASSWORD_SCRYPT_LOG_N,
      reuseGraceMs: config.REFRESH_REUSE_GRACE,
    },
    sso.check,
  );
  sso.useSessions(sessions);

  const service = await startService(
    {
      name: "auth",
      nats,
      log,
      config,
      services: authServices,
      routes: (router) => {
        authRoutes({ pool, sessions, devices, keys, limiter, scryptLogN: config.PASSWORD_SCRYPT_LOG_N, sso, ssoLoginTtlMs: config.SSO_LOGIN_TTL })(router);
        serviceIdentityRoutes({ keys, secrets: config.SERVICE_SECRETS, ttlMs: config.SERVICE_TOKEN_TTL })(router);
      },
      verifyToken: createTokenVerifier({ keys: keys.resolver, isRevoked: redisRevocationCheck(redis) }),
      probes: [
        { name: "postgres", check: () => pool.query("SELECT 1") },
        { name: "redis", check: () => redis.ping() },
      ],
      // The runtime records the socket's peer; the edge's client address replaces it only
      // with TRUST_PROXY (client-address.ts), never x-forwarded-for.
      interceptors: [clientAddressInterceptor(config.TRUST_PROXY)],
      // OpenID Connect back-channel logout, one path per provider (docs/sso.md).
      httpPostRoutes: Object.fromEntries(
        config.SSO_PROVIDERS.map((p) => [
          `/sso/${p.id}/backchannel-logout`,
          async (req, res) => {
            const body = new URLSearchParams(await readSmallBody(req));
            const outcome = await sso.backchannelLogout(p.id, body.get("logout_token") ?? "");
            if (outcome.error) log.warn({ provider: p.id, error: outcome.error }, "back-channel logout refused");
            res.writeHead(outcome.status, { "content-type": "application/json", "cache-control": "no-store" });
            res.end(outcome.error ? JSON.stringify({ error: "invalid_request", error_description: outcome.error }) : "");
          },
        ]),
      ),
      httpRoutes: {
        "/.well-known/jwks.json": async (_req, res) => {
          res.writeHead(200, { "content-type": "application/jwk-set+json", "cache-control": "public, max-age=60" });
          res.end(JSON.stringify(await keys.jwks()));
        },
      },
    },
    config.HOST,
    config.AUTH_PORT,
  );

  onShutdownSignal(log, async () => {
    await service.close();
    clearInterval(rotation);
    await outbox.stop();
    await Promise.allSettled([redis.quit(), closeNats(nats)]);
    await pool.end();
  });
}

/** A form body of at most 64 KiB (a logout token is a few KiB). */
async function readSmallBody(req: AsyncIterable<Buffer | string>): Promise<string> {
  let body = "";
  for await (const chunk of req) {
    body += chunk.toString();
    if (body.length > 65_536) throw new Error("body too large");
  }
  return body;
}

runService("auth", main);

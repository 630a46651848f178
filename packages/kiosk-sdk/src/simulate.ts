// Runs a simulated kiosk fleet against a running platform (npm start):
//   ADMIN_EMAIL=… ADMIN_PASSWORD=… npm run simulate -w @adminkiosk/kiosk-sdk
// The first run registers and enrolls sim-0001… and saves their credentials to
// SIM_STATE_FILE (0600); later runs reuse them and need no admin credentials.
// The kiosks also sell (selling.ts; SIM_SALES=off stops that) at ai's generator's rates
// times SIM_SALES_SPEEDUP, and a simulated route driver restocks what has been out for
// SIM_RESTOCK_AFTER_MINUTES (simulated; 0: never). Kiosks install releases fleet sends them
// (InstallRelease: downloaded from FLEET_URL into SIM_UPDATES_DIR, default <state file>.updates);
// SIM_BAD_VERSIONS="2.0.1=crash,2.0.2=low-sales,2.0.3=no-printing" makes those versions misbehave.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { startSelling } from "./selling.js";
import { provision, startSimulator, type BadVersionKind } from "./simulator.js";

function fail(message: string): never {
  console.error(`simulate: ${message}`);
  process.exit(2);
}

const env = (name: string) => (process.env[name] === "" ? undefined : process.env[name]);

function intVar(name: string, fallback: number, min: number, max: number): number {
  const raw = env(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) fail(`invalid environment: ${name}: must be an integer from ${min} to ${max} (got "${raw}")`);
  return n;
}

function numberVar(name: string, fallback: number, min: number, max: number): number {
  const raw = env(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw.trim()) || !(n >= min && n <= max)) fail(`invalid environment: ${name}: must be a number from ${min} to ${max} (got "${raw}")`);
  return n;
}

function urlVar(name: string, fallback: string): string {
  const raw = env(name) ?? fallback;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) fail(`invalid environment: ${name}: must be an http(s) URL (got "${raw}")`);
  return raw.replace(/\/$/, "");
}

const count = intVar("SIM_KIOSKS", 50, 1, 9999);
const telemetryIntervalMs = intVar("SIM_TELEMETRY_INTERVAL_MS", 15_000, 100, 3_600_000);
const stateFile = env("SIM_STATE_FILE") ?? ".adminkiosk-sim.json";
const authUrl = urlVar("AUTH_URL", "http://127.0.0.1:7001");
const fleetUrl = urlVar("FLEET_URL", "http://127.0.0.1:7002");
const linkUrl = urlVar("LINK_URL", "http://127.0.0.1:7003");
const ordersUrl = urlVar("ORDERS_URL", "http://127.0.0.1:7005");
const catalogUrl = urlVar("CATALOG_URL", "http://127.0.0.1:7004");
// Buyers as people (members, ratings, back-in-stock requests, calls for help) when customers runs.
const customersUrl = process.env["CUSTOMERS_URL"] ? urlVar("CUSTOMERS_URL", "http://127.0.0.1:7009") : undefined;
// Selling along ai's sales-history generator (selling.ts): on unless SIM_SALES=off.
const salesSwitch = env("SIM_SALES") ?? "on";
if (salesSwitch !== "on" && salesSwitch !== "off") fail(`invalid environment: SIM_SALES: must be "on" or "off" (got "${salesSwitch}")`);
const speedup = numberVar("SIM_SALES_SPEEDUP", 1, 0.01, 100_000);
const concurrency = intVar("SIM_SALES_CONCURRENCY", 2, 1, 20);
const restockAfterMinutes = intVar("SIM_RESTOCK_AFTER_MINUTES", 120, 0, 10_080);
const historyStart = env("SIM_SALES_HISTORY_START") ?? new Date(Date.now() - 90 * 86_400_000).toISOString().slice(0, 10);
if (!/^\d{4}-\d{2}-\d{2}$/.test(historyStart) || Number.isNaN(Date.parse(historyStart))) fail(`invalid environment: SIM_SALES_HISTORY_START: must be a day, YYYY-MM-DD (got "${historyStart}")`);
const updatesDir = env("SIM_UPDATES_DIR") ?? `${stateFile}.updates`;
const badVersions: Record<string, BadVersionKind> = {};
for (const entry of (env("SIM_BAD_VERSIONS") ?? "").split(",").filter((e) => e.trim())) {
  const [version, how] = entry.split("=").map((s) => s.trim());
  if (!version || (how !== "crash" && how !== "low-sales" && how !== "no-printing"))
    fail(`invalid environment: SIM_BAD_VERSIONS: must be version=crash|low-sales|no-printing, comma-separated (got "${entry}")`);
  badVersions[version] = how;
}
const email = env("ADMIN_EMAIL");
const password = env("ADMIN_PASSWORD");
if ((email === undefined) !== (password === undefined)) fail(`invalid environment: ${email === undefined ? "ADMIN_EMAIL" : "ADMIN_PASSWORD"}: set both ADMIN_EMAIL and ADMIN_PASSWORD, or neither`);

const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);

let kiosks;
try {
  kiosks = await provision({
    authUrl,
    fleetUrl,
    count,
    stateFile,
    ...(email && password ? { admin: { email, password } } : {}),
    restocker: salesSwitch === "on" && restockAfterMinutes > 0,
    log,
  });
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
log(`simulating ${kiosks.length} kiosks against ${linkUrl} (credentials in ${stateFile}); Ctrl-C stops`);
const simulator = startSimulator({ linkUrl, kiosks, telemetryIntervalMs, log, updates: { apiBaseUrl: fleetUrl, stateDir: updatesDir }, badVersions });

const restocker = kiosks.restocker;
if (salesSwitch === "on" && restockAfterMinutes > 0 && !restocker) log("restocking off: set ADMIN_PASSWORD (the admin's) once so the simulator can make its route driver's operator account");
const selling =
  salesSwitch === "on"
    ? startSelling({
        ordersUrl,
        catalogUrl,
        ...(customersUrl ? { customersUrl } : {}),
        kiosks,
        historyStart,
        speedup,
        concurrency,
        rateFactor: (kioskId) => simulator.salesFactor(kioskId),
        log,
        ...(restocker && restockAfterMinutes > 0 ? { restock: { afterMinutes: restockAfterMinutes, token: operatorToken(restocker) } } : {}),
      })
    : undefined;
if (selling) {
  // A line a minute on what was sold (and lost), so the logs show the fleet selling.
  let last = "";
  setInterval(() => {
    const s = selling.stats;
    const line = `sales: ${s.completed} completed (${s.units} units), ${s.failed} failed; lost: ${s.lostSoldOut} sold out, ${s.lostBusy} busy, ${s.lostBackingOff} backing off; ${s.refusedOutOfStock} refused out of stock, ${s.errors} errors; ${s.restocks} restocks`;
    if (line !== last) log(line);
    last = line;
  }, 60_000).unref();
}

/** The route driver signs in as its operator account (again whenever its token is refused). */
function operatorToken(account: { email: string; password: string }) {
  const auth = createClient(AuthService, createGrpcTransport({ baseUrl: authUrl }));
  return async () => (await auth.login(account)).tokens?.accessToken ?? "";
}

let stopping = false;
const shutdown = () => {
  if (stopping) process.exit(130);
  stopping = true;
  log("stopping: closing every stream");
  void Promise.all([selling?.stop(), simulator.stop()]).then(() => process.exit(0));
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);

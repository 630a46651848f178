// Runs a simulated kiosk fleet against a running platform (npm start):
//   ADMIN_EMAIL=… ADMIN_PASSWORD=… npm run simulate -w @adminkiosk/kiosk-sdk
// The first run registers and enrolls sim-0001… and saves their credentials to
// SIM_STATE_FILE (0600); later runs reuse them and need no admin credentials.
import { provision, startSimulator } from "./simulator.js";

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
const email = env("ADMIN_EMAIL");
const password = env("ADMIN_PASSWORD");
if ((email === undefined) !== (password === undefined)) fail(`invalid environment: ${email === undefined ? "ADMIN_EMAIL" : "ADMIN_PASSWORD"}: set both ADMIN_EMAIL and ADMIN_PASSWORD, or neither`);

const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);

let kiosks;
try {
  kiosks = await provision({ authUrl, fleetUrl, count, stateFile, ...(email && password ? { admin: { email, password } } : {}), log });
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
log(`simulating ${kiosks.length} kiosks against ${linkUrl} (credentials in ${stateFile}); Ctrl-C stops`);
const simulator = startSimulator({ linkUrl, kiosks, telemetryIntervalMs, log });

let stopping = false;
const shutdown = () => {
  if (stopping) process.exit(130);
  stopping = true;
  log("stopping: closing every stream");
  void simulator.stop().then(() => process.exit(0));
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);

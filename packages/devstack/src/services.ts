// The platform's services, their default ports, and running each as its own process.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { assertPortFree, waitForPort } from "./infra.js";
import { reapWithThisProcess } from "./reaper.js";

export interface ServiceSpec {
  name: string;
  port: number;
  /** The environment variable holding its port, e.g. AUTH_PORT. */
  portVar: string;
}

/** Default ports; docker-compose, Envoy and the manifests use the same. */
export const platformServices: ServiceSpec[] = [
  ["auth", 7001],
  ["fleet", 7002],
  ["link", 7003],
  ["catalog", 7004],
  ["orders", 7005],
  ["payments", 7006],
  ["ai", 7007],
  ["notifications", 7008],
  ["customers", 7009],
].map(([name, port]) => ({ name: String(name), port: Number(port), portVar: `${String(name).toUpperCase()}_PORT` }));

export const webPort = 8080;

export function serviceEntry(repoRoot: string, name: string): string | undefined {
  const entry = join(repoRoot, "services", name, "src", "main.ts");
  return existsSync(entry) ? entry : undefined;
}

export interface ServiceProcess {
  name: string;
  url: string;
  child: ChildProcess;
  /** SIGTERM, wait for a graceful exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/** Starts a service with `tsx` and resolves once its port accepts connections. */
export async function startServiceProcess(
  repoRoot: string,
  name: string,
  port: number,
  env: Record<string, string>,
  onOutput: (line: string) => void,
  options: ProgramOptions = {},
): Promise<ServiceProcess> {
  const entry = serviceEntry(repoRoot, name);
  if (!entry) throw new Error(`service ${name} has no src/main.ts`);
  return startProgramProcess(name, entry, join(repoRoot, "services", name), port, env, onOutput, options);
}

export interface ProgramOptions {
  /**
   * Flags for node itself, before the program (benchmarks' `--cpu-prof`, which Node does
   * not take from NODE_OPTIONS).
   */
  nodeArgs?: string[];
}

/**
 * Runs a TypeScript program (`entry`, e.g. payments' provider simulator) the way services
 * run, and resolves once it accepts connections on `port`.
 */
export async function startProgramProcess(
  name: string,
  entry: string,
  cwd: string,
  port: number,
  env: Record<string, string>,
  onOutput: (line: string) => void,
  options: ProgramOptions = {},
): Promise<ServiceProcess> {
  await assertPortFree(port, name);
  // node itself (--import tsx, not the tsx CLI) so signals reach the service itself.
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...programArgs(entry)], {
    cwd,
    env: { ...process.env, ...env, HOST: env["HOST"] ?? process.env["HOST"] ?? "127.0.0.1" },
    stdio: ["ignore", "pipe", "pipe"],
    // Own process group: a Ctrl-C reaches the launcher only, which then drains each
    // service with one SIGTERM (a second signal would make it exit without draining).
    detached: true,
  });
  reapWithThisProcess(child);
  const lines = (chunk: Buffer) => chunk.toString().split("\n").filter(Boolean).forEach(onOutput);
  child.stdout?.on("data", lines);
  child.stderr?.on("data", lines);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const failed = exited.then((code) => {
    throw new Error(`${name} exited with code ${code} while starting`);
  });
  await Promise.race([waitForPort(port, 60_000, name), failed]);
  failed.catch(() => {});
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    child,
    exited,
    stop: async (graceMs = 15_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * How node runs `entry`: with tsx, or under vitest the bundle test/global-setup.ts built of it
 * for the run (the same sources, loaded with far less CPU per process).
 */
function programArgs(entry: string): string[] {
  const bundles = process.env["ADMINKIOSK_TEST_BUNDLES"];
  const bundle = bundles ? (JSON.parse(bundles) as Record<string, string | undefined>)[entry] : undefined;
  return bundle ? [bundle] : ["--import", "tsx", entry];
}

/**
 * Runs auth's bootstrap-admin script (migrates auth's schema, creates the first admin
 * when there are no users). Resolves whether this call created the admin.
 */
export function seedFirstAdmin(repoRoot: string, databaseUrl: string, email: string, password: string): { created: boolean } {
  const result = spawnSync(process.execPath, programArgs(join(repoRoot, "services/auth/src/bootstrap-admin.ts")), {
    cwd: join(repoRoot, "services/auth"),
    env: { ...process.env, DATABASE_URL: databaseUrl, ADMIN_EMAIL: email, ADMIN_PASSWORD: password },
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`seeding the first admin failed: ${result.stderr.trim() || result.stdout.trim()}`);
  const outcome: unknown = JSON.parse(result.stdout.trim().split("\n").at(-1) ?? "{}");
  return { created: typeof outcome === "object" && outcome !== null && Reflect.get(outcome, "created") === true };
}

// Starts one real PostgreSQL, NATS (JetStream) and Redis for the whole test run, and builds
// each program the tests start as a process (the services, the simulators) once for the run.
// Test files create their own databases / Redis DB numbers from these.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build, type Plugin } from "esbuild";
import type {} from "vitest";
import type { TestProject } from "vitest/node";
import { freePort, repoRoot, startNats, startPostgres, startRedis } from "@adminkiosk/devstack";

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), "adminkiosk-test-"));
  const [pgPort, natsPort, redisPort] = [await freePort(), await freePort(), await freePort()];
  const [pg, nats, redis, bundles] = await Promise.all([
    startPostgres(join(dir, "postgres"), pgPort),
    startNats(join(dir, "nats"), natsPort),
    // Many logical DBs, so every service a test starts gets its own (see isolatedRedisUrl).
    startRedis(join(dir, "redis"), redisPort, () => {}, ["--databases", "4096", "--save", ""]),
    // TEST_PROGRAMS_WITH_TSX=1, and in watch mode (a bundle would keep the sources of the first
    // run): every process from its sources with tsx, as `npm start` runs them.
    process.env["TEST_PROGRAMS_WITH_TSX"] || project.config.watch ? {} : bundlePrograms(join(dir, "programs")),
  ]);
  // Read by devstack's startProgramProcess in the test workers (forked after this).
  process.env["ADMINKIOSK_TEST_BUNDLES"] = JSON.stringify(bundles);
  project.provide("infra", { databaseUrl: pg.url, natsUrl: nats.url, redisUrl: redis.url, tmpDir: dir });
  return async () => {
    await Promise.allSettled([pg.stop(), nats.stop(), redis.stop()]);
    rmSync(dir, { recursive: true, force: true });
  };
}

/**
 * Every program a test runs as a process — each service's main.ts, the simulators beside them,
 * auth's bootstrap-admin — bundled once with esbuild (the transformer tsx uses) into one file
 * each, so a process loads a few files instead of resolving hundreds of modules through tsx's
 * loader: the same code, started with ~1.5 s less CPU each, and tests start several hundred
 * processes on a 2-core machine. Packages from node_modules stay imports of the file Node
 * would load for the importing module; `import.meta.url` keeps each source file's own URL,
 * so migrations and other files beside the sources are found where they are.
 * Returns entry → bundle; entries not in it run with tsx as before.
 */
async function bundlePrograms(outDir: string): Promise<Record<string, string>> {
  const entries: string[] = [join(repoRoot, "services/auth/src/bootstrap-admin.ts")];
  for (const service of readdirSync(join(repoRoot, "services"))) {
    const src = join(repoRoot, "services", service, "src");
    if (existsSync(join(src, "main.ts"))) entries.push(join(src, "main.ts"));
    for (const sub of existsSync(src) ? readdirSync(src, { withFileTypes: true }) : []) {
      if (sub.isDirectory() && existsSync(join(src, sub.name, "main.ts"))) entries.push(join(src, sub.name, "main.ts"));
    }
  }
  mkdirSync(outDir, { recursive: true });
  const built = await Promise.all(
    entries.map(async (entry, i) => {
      const outfile = join(outDir, `${i}-${entry.slice(repoRoot.length + 1).replace(/[/.]/g, "_")}.mjs`);
      try {
        await build({ entryPoints: [entry], outfile, bundle: true, platform: "node", format: "esm", target: "node20", conditions: [], logLevel: "silent", plugins: [sourcesAsTheyAre] });
        return [[entry, outfile] as const];
      } catch {
        // One that does not build runs with tsx, so only the tests starting it fail, with its own error.
        return [];
      }
    }),
  );
  return Object.fromEntries(built.flat());
}

const sourcesAsTheyAre: Plugin = {
  name: "adminkiosk-test-programs",
  setup(b) {
    // Bare imports of packages (not the workspace's own): external, as the file Node resolves.
    b.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData === "resolving" || args.path.startsWith("@adminkiosk/")) return undefined;
      const found = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: "resolving" });
      if (found.errors.length > 0) return { errors: found.errors };
      return { path: found.external ? args.path : found.path, external: true };
    });
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (args.path.includes("/node_modules/")) return undefined;
      const source = await readFile(args.path, "utf8");
      return { contents: source.replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href)), loader: "ts" };
    });
  },
};

declare module "vitest" {
  export interface ProvidedContext {
    infra: { databaseUrl: string; natsUrl: string; redisUrl: string; tmpDir: string };
  }
}

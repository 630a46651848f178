// The deployment files against the services that exist, without a Docker engine:
// docker-compose.yml validates (Debian's docker-compose, v1: `docker-compose config`),
// runs every service with its port and the environment its config needs, and the
// Dockerfile's image runs as a non-root user with a health check.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { platformServices, serviceEntry } from "@adminkiosk/devstack";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const composeFile = join(repoRoot, "docker-compose.yml");
const dockerfile = join(repoRoot, "Dockerfile");

/** The folders under services/ with a src/main.ts, i.e. the services that exist. */
const existing = readdirSync(join(repoRoot, "services")).filter((name) => serviceEntry(repoRoot, name));

/** Secrets docker-compose.yml requires from the host environment. */
const secrets = {
  AUTH_KEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
  ADMIN_PASSWORD: "compose-test-password",
};

/** An empty env file, so a developer's .env does not take part. */
const emptyEnvFile = join(mkdtempSync(join(tmpdir(), "compose-test-")), "empty.env");
writeFileSync(emptyEnvFile, "");
afterAll(() => rmSync(dirname(emptyEnvFile), { recursive: true, force: true }));

/** Runs docker-compose on docker-compose.yml with only `env` from the environment. */
function dockerCompose(args: string[], env: Record<string, string>): SpawnSyncReturns<string> {
  const result = spawnSync("docker-compose", ["--env-file", emptyEnvFile, "-f", composeFile, ...args], {
    cwd: repoRoot,
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/tmp", ...env },
    encoding: "utf8",
    timeout: 20_000,
  });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
    throw new Error(
      "docker-compose is not installed, so docker-compose.yml cannot be validated: " +
        "sudo apt-get install -y docker-compose (Debian's, v1; .ci/run installs it)",
    );
  }
  if (result.error) throw result.error;
  return result;
}

type Env = Record<string, string>;
interface ComposeService {
  build?: string | { context?: string; args?: Record<string, unknown> | string[] };
  environment?: Record<string, unknown> | string[];
  ports?: (string | number | { target?: number; published?: number | string })[];
  labels?: Record<string, unknown> | string[];
}
interface ComposeFile {
  services?: Record<string, ComposeService>;
}

/** A compose mapping or `KEY=value` list as a plain record of strings. */
function record(value: Record<string, unknown> | string[] | undefined): Env {
  if (Array.isArray(value)) {
    return Object.fromEntries(value.map((item) => [item.split("=")[0] ?? item, item.includes("=") ? item.slice(item.indexOf("=") + 1) : ""]));
  }
  return Object.fromEntries(Object.entries(value ?? {}).map(([k, v]) => [k, v === null || v === undefined ? "" : String(v)]));
}

/** Published ports as host:container pairs, from the short ("7001:7001") or long syntax. */
function publishedPorts(service: ComposeService): string[] {
  return (service.ports ?? []).map((p) => {
    if (typeof p === "object") return `${String(p.published ?? "")}:${String(p.target ?? "")}`;
    const parts = String(p).replace(/\/(tcp|udp)$/, "").split(":");
    return parts.length === 1 ? `:${parts[0]}` : `${parts.at(-2)}:${parts.at(-1)}`;
  });
}

interface Schema {
  safeParse(value: unknown): { success: boolean };
}
const isShape = (v: unknown): v is Record<string, Schema> =>
  typeof v === "object" && v !== null && Object.values(v).every((s) => typeof (s as Partial<Schema>).safeParse === "function");

/** The variables a service's config cannot start without: those whose schema has no default. */
async function requiredEnv(name: string): Promise<string[]> {
  const file = join(repoRoot, "services", name, "src", "config.ts");
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const shape = Object.entries(mod).find(([key]) => key.endsWith("ConfigShape"))?.[1];
  if (!isShape(shape)) throw new Error(`${file} exports no <name>ConfigShape of zod schemas to read ${name}'s environment from`);
  return Object.entries(shape)
    .filter(([, schema]) => !schema.safeParse(undefined).success)
    .map(([key]) => key);
}

function readCompose(): ComposeFile {
  try {
    return parse(readFileSync(composeFile, "utf8"), { merge: true }) as ComposeFile;
  } catch (err) {
    throw new Error(`${composeFile} is not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
}

describe("docker-compose.yml", () => {
  it("validates with docker-compose config when the required secrets are set", () => {
    const result = dockerCompose(["config"], secrets);
    if (result.status !== 0) {
      expect.fail(`docker-compose config rejected ${composeFile} (exit ${result.status}):\n${result.stderr.trim()}`);
    }
    const resolved = parse(result.stdout) as ComposeFile;
    // The secret reaches auth as given (interpolation, anchors and merges resolved).
    expect(record(resolved.services?.["auth"]?.environment)["AUTH_KEY_ENCRYPTION_KEY"]).toBe(secrets.AUTH_KEY_ENCRYPTION_KEY);
  });

  it("refuses to start without the secrets instead of running with empty ones", () => {
    for (const missing of Object.keys(secrets) as (keyof typeof secrets)[]) {
      const { [missing]: _, ...rest } = secrets;
      const result = dockerCompose(["config", "--quiet"], rest);
      expect(result.status, `docker-compose config without ${missing} should fail`).not.toBe(0);
      expect(result.stderr).toContain(missing);
    }
  });

  it("runs every service that exists, on its port, with the environment its config needs", async () => {
    const compose = readCompose();
    const services = compose.services ?? {};
    expect(existing.length).toBeGreaterThan(0);
    for (const name of existing) {
      const spec = platformServices.find((s) => s.name === name);
      if (!spec) throw new Error(`services/${name} exists but has no port in platformServices (packages/devstack/src/services.ts)`);
      const service = services[name];
      if (!service) throw new Error(`${composeFile} has no service "${name}" (services/${name}/src/main.ts exists); add it like auth`);

      const build = typeof service.build === "object" ? record(service.build.args) : {};
      expect(build, `${name}'s build args in ${composeFile}`).toMatchObject({ SERVICE: name, PORT: String(spec.port) });
      expect(publishedPorts(service), `${name}'s ports in ${composeFile}`).toContain(`${spec.port}:${spec.port}`);

      const env = record(service.environment);
      expect(env[spec.portVar], `${spec.portVar} for ${name} in ${composeFile}`).toBe(String(spec.port));
      expect(env["HOST"], `${name} must listen beyond the container's loopback`).toBe("0.0.0.0");
      const missing = (await requiredEnv(name)).filter((key) => !(key in env));
      expect(missing, `environment ${name}'s config requires but ${composeFile} does not set`).toEqual([]);
    }
  });

  it("builds only services that exist, and labels every container with app and version", () => {
    for (const [name, service] of Object.entries(readCompose().services ?? {})) {
      const labels = record(service.labels);
      expect(labels["app"], `${name}'s app label`).toBeTruthy();
      expect(labels["version"], `${name}'s version label`).toBeTruthy();
      if (typeof service.build === "object") {
        const target = record(service.build.args)["SERVICE"] ?? "";
        expect(existing, `${name} builds SERVICE=${target}, which has no services/${target}/src/main.ts`).toContain(target);
      }
    }
  });

  it("reads auth's required environment from its config shape", async () => {
    expect(await requiredEnv("auth")).toEqual(expect.arrayContaining(["DATABASE_URL", "REDIS_URL", "AUTH_KEY_ENCRYPTION_KEY"]));
  });

  it("runs the OpenTelemetry Collector, Jaeger and Grafana: every service and Envoy send spans to the Collector, Grafana is provisioned from deploy/grafana", () => {
    const result = dockerCompose(["config"], secrets);
    expect(result.status, result.stderr).toBe(0);
    const services = (parse(result.stdout) as ComposeFile).services ?? {};
    for (const name of ["otel-collector", "jaeger", "grafana"]) expect(services[name], `${composeFile} runs ${name}`).toBeDefined();
    // Every service exports to the Collector's OTLP/HTTP port, sampling a share (not 0, not every trace).
    for (const name of [...existing, "payments-provider-sim"]) {
      const env = record(services[name]?.environment);
      expect(env["TRACING_OTLP_URL"], `${name}'s TRACING_OTLP_URL`).toBe("http://otel-collector:4318/v1/traces");
      const ratio = Number(env["TRACING_SAMPLE_RATIO"]);
      expect(ratio > 0 && ratio <= 1, `${name}'s TRACING_SAMPLE_RATIO ${ratio}`).toBe(true);
    }
    expect(publishedPorts(services["otel-collector"]!)).toEqual(expect.arrayContaining(["4317:4317", "4318:4318"]));
    // The Collector's config (mounted) receives OTLP on both ports and exports to Jaeger.
    const collector = parse(readFileSync(join(repoRoot, "deploy/otel/collector.yaml"), "utf8")) as {
      receivers: { otlp: { protocols: { grpc: { endpoint: string }; http: { endpoint: string } } } };
      exporters: Record<string, { endpoint?: string }>;
      service: { pipelines: { traces: { receivers: string[]; exporters: string[] } } };
    };
    expect(collector.receivers.otlp.protocols.grpc.endpoint).toMatch(/:4317$/);
    expect(collector.receivers.otlp.protocols.http.endpoint).toMatch(/:4318$/);
    const pipeline = collector.service.pipelines.traces;
    expect(pipeline.receivers).toContain("otlp");
    expect(pipeline.exporters.map((e) => collector.exporters[e]?.endpoint)).toContain("jaeger:4317");
    // Grafana: provisioning and the dashboards mounted, data sources pointing at compose's Prometheus and Jaeger.
    const grafana = services["grafana"]!;
    const volumes = ((grafana as { volumes?: (string | { source?: string; target?: string })[] }).volumes ?? []).map((v) => (typeof v === "string" ? v : `${v.source}:${v.target}`));
    expect(volumes.some((v) => v.includes("deploy/grafana/provisioning:/etc/grafana/provisioning"))).toBe(true);
    expect(volumes.some((v) => v.includes("deploy/grafana/dashboards:/var/lib/grafana/dashboards"))).toBe(true);
    const genv = record(grafana.environment);
    expect(genv["GRAFANA_PROMETHEUS_URL"]).toBe("http://prometheus:9090");
    expect(genv["GRAFANA_JAEGER_URL"]).toBe("http://jaeger:16686");
    const datasources = readFileSync(join(repoRoot, "deploy/grafana/provisioning/datasources/datasources.yaml"), "utf8");
    expect(datasources).toContain("${GRAFANA_PROMETHEUS_URL}");
    expect(datasources).toContain("${GRAFANA_JAEGER_URL}");
  });
});

describe("Dockerfile", () => {
  // Continuation lines joined; the last stage is the image that runs.
  const lines = readFileSync(dockerfile, "utf8")
    .replace(/\\\r?\n/g, " ")
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"));
  const lastFrom = lines.map((line) => /^FROM\s/i.test(line)).lastIndexOf(true);
  const runtime = lines.slice(lastFrom);
  const instruction = (name: string) => runtime.filter((line) => line.toUpperCase().startsWith(`${name} `));

  it("is parameterised by SERVICE", () => {
    expect(lines.filter((line) => /^ARG\s+SERVICE\b/i.test(line)).length, `ARG SERVICE in ${dockerfile}`).toBeGreaterThan(0);
    expect(instruction("CMD").at(-1), `CMD in the last stage of ${dockerfile}`).toMatch(/--import.+tsx.+services\/\$SERVICE\/src\/main\.ts/);
  });

  it("runs the service as a non-root user", () => {
    const user = instruction("USER").at(-1)?.split(/\s+/)[1]?.split(":")[0];
    expect(user, `a USER in the last stage of ${dockerfile}`).toBeTruthy();
    expect(["root", "0"], `${dockerfile} must not run as root`).not.toContain(user);
  });

  it("has a health check on /readyz", () => {
    const check = instruction("HEALTHCHECK").at(-1);
    expect(check, `a HEALTHCHECK in the last stage of ${dockerfile}`).toBeTruthy();
    expect(check).not.toMatch(/^HEALTHCHECK\s+NONE/i);
    expect(check).toContain("/readyz");
  });

  it("leaves node_modules and local data out of the build context", () => {
    const ignored = readFileSync(join(repoRoot, ".dockerignore"), "utf8").split(/\r?\n/).map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(["**/node_modules", ".data", ".git"]));
  });
});

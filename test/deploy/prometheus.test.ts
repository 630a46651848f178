// The Prometheus configuration under deploy/prometheus, without a Prometheus server:
// promtool (Debian's `prometheus` package; .ci/run installs it) checks both configs
// and the alert rules and runs the rules' unit tests, and the configs are checked
// against the services that exist and against what the alerts expect.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { platformServices, serviceEntry } from "@adminkiosk/devstack";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const dir = join(repoRoot, "deploy/prometheus");
const composeConfig = join(dir, "prometheus.yml");
const kubernetesConfig = join(dir, "prometheus-kubernetes.yml");
const alerts = join(dir, "alerts.yml");
const alertTests = join(dir, "alerts.test.yml");
const rel = (path: string) => relative(repoRoot, path);

const existing = readdirSync(join(repoRoot, "services")).filter((name) => serviceEntry(repoRoot, name));

function promtool(args: string[], cwd = repoRoot): SpawnSyncReturns<string> {
  const result = spawnSync("promtool", args, { cwd, encoding: "utf8", timeout: 60_000 });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
    throw new Error(
      `promtool is not installed, so ${rel(dir)} cannot be checked: ` +
        "sudo apt-get install -y prometheus (Debian's package has promtool; .ci/run installs it)",
    );
  }
  if (result.error) throw result.error;
  return result;
}
const output = (r: SpawnSyncReturns<string>) => `${r.stdout}${r.stderr}`.trim();

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  static_configs?: { targets?: string[]; labels?: Record<string, string> }[];
  kubernetes_sd_configs?: unknown[];
  [field: string]: unknown;
}
interface PrometheusConfig {
  rule_files?: string[];
  scrape_configs?: ScrapeConfig[];
}
interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const readYaml = <T>(file: string): T => parse(readFileSync(file, "utf8"), { merge: true }) as T;

const tempDirs: string[] = [];
afterAll(() => tempDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("promtool", () => {
  it(`accepts ${rel(composeConfig)} (docker-compose)`, () => {
    const result = promtool(["check", "config", rel(composeConfig)]);
    expect(result.status, `promtool check config ${rel(composeConfig)}:\n${output(result)}`).toBe(0);
  });

  it(`accepts ${rel(kubernetesConfig)} (the cluster)`, () => {
    // The mesh certificates it scrapes with exist only in the pod (its sidecar writes
    // them to /etc/prom-certs), and promtool insists that they exist: check a copy,
    // beside alerts.yml, that points at empty stand-ins.
    const temp = mkdtempSync(join(tmpdir(), "prometheus-test-"));
    tempDirs.push(temp);
    const config = readYaml<PrometheusConfig>(kubernetesConfig);
    const standIns = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(standIns);
      if (typeof value !== "object" || value === null) return value;
      return Object.fromEntries(
        Object.entries(value).map(([key, v]) => {
          if (key.endsWith("_file") && typeof v === "string" && v.startsWith("/etc/prom-certs/")) {
            const standIn = join(temp, v.replaceAll("/", "_"));
            writeFileSync(standIn, "");
            return [key, standIn];
          }
          return [key, standIns(v)];
        }),
      );
    };
    const check = (c: PrometheusConfig) => {
      writeFileSync(join(temp, "prometheus.yml"), stringify(standIns(c)));
      for (const file of c.rule_files ?? []) copyFileSync(join(dir, file), join(temp, file));
      return promtool(["check", "config", "prometheus.yml"], temp);
    };
    let result = check(config);
    if (result.status !== 0 && /field kubernetes_sd_configs not found/.test(output(result))) {
      // Debian builds Prometheus without Kubernetes service discovery, so its promtool
      // rejects the field itself. Check everything else: each kubernetes_sd_configs
      // replaced by an empty static_configs.
      for (const job of config.scrape_configs ?? []) {
        if (!job.kubernetes_sd_configs) continue;
        delete job.kubernetes_sd_configs;
        job.static_configs = [...(job.static_configs ?? []), { targets: [] }];
      }
      result = check(config);
    }
    expect(result.status, `promtool check config ${rel(kubernetesConfig)} (with stand-ins for the certificate files${config.scrape_configs?.some((j) => j.kubernetes_sd_configs) ? "" : ", kubernetes_sd_configs set aside: this promtool lacks them"}):\n${output(result)}`).toBe(0);
  });

  it(`accepts the rules in ${rel(alerts)}`, () => {
    const result = promtool(["check", "rules", rel(alerts)]);
    expect(result.status, `promtool check rules ${rel(alerts)}:\n${output(result)}`).toBe(0);
  });

  it(`passes the alerts' unit tests in ${rel(alertTests)}`, () => {
    const result = promtool(["test", "rules", rel(alertTests)]);
    expect(result.status, `promtool test rules ${rel(alertTests)}:\n${output(result)}`).toBe(0);
  });
});

describe("deploy/prometheus", () => {
  const configs = [composeConfig, kubernetesConfig].map((file) => ({ file, config: readYaml<PrometheusConfig>(file) }));
  const rules = readYaml<{ groups?: { name: string; rules?: AlertRule[] }[] }>(alerts).groups?.flatMap((g) => g.rules ?? []) ?? [];

  it(`${rel(composeConfig)} scrapes /metrics of every service that exists, and Envoy's stats`, () => {
    const problems: string[] = [];
    const jobs = configs[0]?.config.scrape_configs ?? [];
    const services = jobs.find((j) => j.job_name === "services");
    if (!services) problems.push(`${rel(composeConfig)}: no job "services" (alerts.yml expects it)`);
    else if ((services.metrics_path ?? "/metrics") !== "/metrics") problems.push(`${rel(composeConfig)}: job services scrapes ${services.metrics_path}, not /metrics`);
    for (const name of existing) {
      const port = platformServices.find((s) => s.name === name)?.port;
      const target = `${name}:${port ?? "?"}`;
      const group = services?.static_configs?.find((g) => g.targets?.includes(target));
      if (!group) problems.push(`${rel(composeConfig)}: job services does not scrape ${target} (services/${name} exists; its compose hostname and port)`);
      else if (group.labels?.["app"] !== name) problems.push(`${rel(composeConfig)}: target ${target} needs the label app: ${name}`);
    }
    const envoy = jobs.find((j) => j.job_name === "envoy");
    if (envoy?.metrics_path !== "/stats/prometheus" || !envoy.static_configs?.some((g) => g.targets?.includes("envoy:9901")))
      problems.push(`${rel(composeConfig)}: job envoy should scrape envoy:9901 at /stats/prometheus (Envoy's admin)`);
    expect(problems).toEqual([]);
  });

  it("both configs load alerts.yml and define the jobs the alerts name", () => {
    const problems: string[] = [];
    const named = new Set(rules.flatMap((r) => [...r.expr.matchAll(/job\s*=\s*"([^"]+)"/g)].map((m) => m[1] ?? "")));
    for (const { file, config } of configs) {
      if (!config.rule_files?.includes("alerts.yml")) problems.push(`${rel(file)}: rule_files should list alerts.yml`);
      const jobs = new Set((config.scrape_configs ?? []).map((j) => j.job_name));
      for (const job of named) if (!jobs.has(job)) problems.push(`${rel(file)}: alerts.yml uses job="${job}", which this config does not define`);
    }
    expect(problems).toEqual([]);
  });

  it("every alert has a severity, a summary and a description", () => {
    const problems: string[] = [];
    for (const rule of rules.filter((r) => r.alert)) {
      if (!["critical", "warning", "info"].includes(rule.labels?.["severity"] ?? "")) problems.push(`${rel(alerts)}: ${rule.alert}: labels.severity should be critical, warning or info`);
      for (const key of ["summary", "description"]) if (!rule.annotations?.[key]) problems.push(`${rel(alerts)}: ${rule.alert}: annotations.${key} is missing`);
    }
    expect(rules.length).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  });

  it("docker-compose.yml runs Prometheus on this folder", () => {
    const compose = readYaml<{ services?: Record<string, { volumes?: string[]; command?: string[] }> }>(join(repoRoot, "docker-compose.yml"));
    const prometheus = compose.services?.["prometheus"];
    expect(prometheus, "docker-compose.yml: a prometheus service").toBeTruthy();
    expect(prometheus?.volumes ?? [], "docker-compose.yml: prometheus mounts ./deploy/prometheus at /etc/prometheus").toContain("./deploy/prometheus:/etc/prometheus:ro");
    expect(prometheus?.command ?? [], "docker-compose.yml: prometheus reads /etc/prometheus/prometheus.yml").toContain("--config.file=/etc/prometheus/prometheus.yml");
  });
});

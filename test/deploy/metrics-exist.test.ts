// Every metric a dashboard (deploy/grafana/dashboards) or an alert rule (deploy/prometheus)
// queries is exported by some service's /metrics — read from running services (real
// processes: the sale path and the fleet path), so a renamed or removed metric cannot leave
// a panel silently blank or an alert silently never firing. Metrics that are not a
// service's are named below with where they come from.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { StartedService } from "@adminkiosk/devstack";
import { startSale, type SaleFixture } from "../../services/orders/test/fixture.js";
import { startFleet, type FleetFixture } from "../support/fleet.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const dashboardsDir = join(repoRoot, "deploy/grafana/dashboards");

/** Not exported by a service: Prometheus' own, and Envoy's (/stats/prometheus on 9901). */
const notFromServices = [/^up$/, /^envoy_/, /^ALERTS(_FOR_STATE)?$/];

const keywords = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless", "inf", "nan"]);

/** The metric names a PromQL expression selects (a tokenizer's worth: strings, matchers, ranges and grouping labels removed). */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\boffset\s+-?\d+[smhdwy]+/g, " ");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (call || keywords.has(name!.toLowerCase()) || /^\d/.test(name!)) continue;
    // A number's exponent or a duration's unit (1e3, 5m) was consumed with its digits: skip what follows a digit.
    const before = stripped[m.index! - 1];
    if (before && /[0-9.]/.test(before)) continue;
    names.add(name!);
  }
  return [...names];
}

interface Use {
  metric: string;
  where: string;
}

function dashboardUses(): Use[] {
  const uses: Use[] = [];
  for (const file of readdirSync(dashboardsDir).filter((f) => f.endsWith(".json"))) {
    const dashboard = JSON.parse(readFileSync(join(dashboardsDir, file), "utf8")) as { panels?: { title?: string; targets?: { expr?: string }[] }[] };
    for (const panel of dashboard.panels ?? [])
      for (const target of panel.targets ?? []) for (const metric of metricNames(target.expr ?? "")) uses.push({ metric, where: `deploy/grafana/dashboards/${file}: "${panel.title}"` });
  }
  return uses;
}

function alertUses(): Use[] {
  const rules = parse(readFileSync(join(repoRoot, "deploy/prometheus/alerts.yml"), "utf8")) as { groups: { rules: { alert?: string; record?: string; expr: string }[] }[] };
  const recorded = new Set(rules.groups.flatMap((g) => g.rules.map((r) => r.record).filter(Boolean)));
  return rules.groups.flatMap((g) =>
    g.rules.flatMap((r) => metricNames(String(r.expr)).filter((m) => !recorded.has(m)).map((metric) => ({ metric, where: `deploy/prometheus/alerts.yml: ${r.alert ?? r.record}` }))),
  );
}

/** The metric families a /metrics page declares (# TYPE), with the sample names each makes. */
function exported(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) {
      names.add(t[1]!);
      if (t[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(t[1]! + s);
      if (t[2] === "summary") for (const s of ["_sum", "_count"]) names.add(t[1]! + s);
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  return names;
}

describe("dashboards and alert rules", () => {
  it("parse to metric names (the check below depends on it)", () => {
    expect(metricNames('sum by (le, grpc_method) (rate(grpc_server_handling_seconds_bucket{grpc_service=~"a\\\\.b"}[5m])) > 0.5')).toEqual(["grpc_server_handling_seconds_bucket"]);
    expect(metricNames("count by (app) (up{job=\"services\"} offset 1h) unless count by (app) (up)")).toEqual(["up"]);
    expect(metricNames("a_total / ignoring(x) b_total * 1e3")).toEqual(["a_total", "b_total"]);
    expect(dashboardUses().length).toBeGreaterThan(20);
    expect(alertUses().length).toBeGreaterThan(5);
  });
});

describe("every metric a dashboard or an alert rule queries", () => {
  let sale: SaleFixture;
  let fleet: FleetFixture;
  beforeAll(async () => {
    sale = await startSale();
    fleet = await startFleet({ name: "metrics" });
  });
  afterAll(async () => {
    await sale?.stop();
    await fleet?.stop();
  });

  it("exists in some running service's /metrics", async () => {
    const services: StartedService[] = [sale.auth.service, sale.catalog, sale.payments, sale.orders, fleet.fleet, ...fleet.links];
    const available = new Map<string, string>();
    for (const s of services) {
      const res = await fetch(`${s.url}/metrics`);
      expect(res.status, `${s.name}'s /metrics`).toBe(200);
      for (const name of exported(await res.text())) if (!available.has(name)) available.set(name, s.name);
    }
    const missing = [...dashboardUses(), ...alertUses()].filter((u) => !available.has(u.metric) && !notFromServices.some((r) => r.test(u.metric)));
    expect(missing.map((u) => `${u.metric} (${u.where})`), "metrics queried that no service exports").toEqual([]);
  });
});

// The fleet by status for dashboards and alerts (fleet_kiosks{status}): counted from the
// registry when Prometheus scrapes (the same counts as GetFleetSummary), at most once every
// few seconds however often it is scraped. Every fleet replica answers the same numbers, so
// dashboards take max(), not sum().
import { Gauge } from "prom-client";
import type { Logger, Pool } from "@adminkiosk/runtime";
import { fleetSummary, type FleetSummaryRow } from "./store.js";

const statuses: (keyof FleetSummaryRow)[] = ["online", "offline", "alerting", "provisioned", "low_paper"];

export function fleetStatusGauge(pool: Pool, log: Logger, maxAgeMs = 5_000): Gauge<"status"> {
  let last: { at: number; summary: FleetSummaryRow } | undefined;
  return new Gauge({
    name: "fleet_kiosks",
    help: "Kiosks in the registry by status (online, offline, alerting: online and ALERTING, provisioned: never connected, low_paper), as GetFleetSummary counts them.",
    labelNames: ["status"],
    registers: [],
    async collect() {
      try {
        if (!last || Date.now() - last.at > maxAgeMs) last = { at: Date.now(), summary: await fleetSummary(pool) };
      } catch (err) {
        // PostgreSQL unreachable: the gauge keeps its last counts (the health probe says why).
        log.debug({ err }, "fleet_kiosks: could not count the fleet");
        return;
      }
      for (const status of statuses) this.set({ status }, last.summary[status]);
    },
  });
}

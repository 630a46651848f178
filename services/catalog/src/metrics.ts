// catalog's own metrics, beside the runtime's per-RPC ones: reservations by outcome
// and how many kiosk × SKU pairs are low on stock.
import { Counter, Gauge, type Registry } from "prom-client";
import type { Pool } from "@adminkiosk/runtime";
import { stock } from "./inventory.js";

export type ReservationOutcome =
  | "reserved"
  | "replayed"
  | "out_of_stock"
  | "seats_unavailable"
  | "refused"
  | "committed"
  | "released"
  | "expired";

export interface CatalogMetrics {
  reservation(outcome: ReservationOutcome, n?: number): void;
}

export function createCatalogMetrics(): CatalogMetrics & { register(registry: Registry, pool: Pool): void } {
  const reservations = new Counter({
    name: "catalog_reservations_total",
    help: "Reservation attempts and transitions by outcome (reserved, replayed, out_of_stock, seats_unavailable, refused, committed, released, expired).",
    labelNames: ["outcome"],
    registers: [],
  });
  return {
    reservation: (outcome, n = 1) => reservations.inc({ outcome }, n),
    register(registry, pool) {
      registry.registerMetric(reservations);
      new Gauge({
        name: "catalog_low_stock_items",
        help: "Kiosk × SKU stock records at or below their low-stock threshold (all replicas see the same number).",
        registers: [registry],
        async collect() {
          // NaN (unknown) while PostgreSQL cannot answer; readiness reports the outage itself.
          this.set(await stock.lowCount(pool).catch(() => NaN));
        },
      });
    },
  };
}

// MaintenanceService: maintenance risks (health.ts's kiosk_telemetry) and silent failures
// (silent.ts's silent_failures), read as stored by the telemetry consumer and the last pass.
// Who may call each RPC is declared in proto/ (operators and admins) and enforced by the runtime.
import type { ConnectRouter } from "@connectrpc/connect";
import { Gauge, type Registry } from "prom-client";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MaintenanceService } from "@adminkiosk/proto/adminkiosk/ai/v1/maintenance_pb";
import { cursorPatterns, decodePageToken, encodePageToken, pageSize, requireKioskId, type Pool } from "@adminkiosk/runtime";
import { kioskTelemetry, toMaintenanceRisk } from "./health.js";
import { silentFailures } from "./silent.js";

export const maintenanceServices = [MaintenanceService];

export function maintenanceRoutes(deps: { pool: Pool; staleMs: number; threshold: number; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  const page = (req: { pageSize: number; pageToken: string }) => {
    const size = pageSize("page_size", req.pageSize);
    const cursor = decodePageToken("page_token", req.pageToken, { offset: cursorPatterns.integer });
    return { size, offset: cursor ? Number(cursor.offset) : 0 };
  };
  const next = (offset: number, size: number, total: number) => (offset + size < total ? encodePageToken({ offset: String(offset + size) }) : "");
  return (router: ConnectRouter) => {
    router.service(MaintenanceService, {
      async getMaintenanceRisks(req) {
        const kioskId = req.kioskId === "" ? undefined : requireKioskId("kiosk_id", req.kioskId);
        const { size, offset } = page(req);
        const { rows, total } = await kioskTelemetry.page(deps.pool, { kioskId, dueOnly: req.dueOnly, offset, limit: size, staleMs: deps.staleMs });
        const at = now().getTime();
        return { risks: rows.map((r) => toMaintenanceRisk(r.kioskId, r.risk!, r.online, at)), nextPageToken: next(offset, size, total), totalSize: total };
      },
      async listSilentFailures(req) {
        const kioskId = req.kioskId === "" ? undefined : requireKioskId("kiosk_id", req.kioskId);
        const { size, offset } = page(req);
        const { rows, total, assessedAt } = await silentFailures.page(deps.pool, { kioskId, includeAssessed: req.includeAssessed, offset, limit: size });
        return {
          failures: rows,
          nextPageToken: next(offset, size, total),
          totalSize: total,
          threshold: deps.threshold,
          assessTime: assessedAt ? timestampFromDate(assessedAt) : undefined,
        };
      },
    });
  };
}

/** Kiosks with each maintenance item due, and silent failures standing (read at scrape time). */
export function registerMaintenanceMetrics(registry: Registry, pool: Pool): void {
  new Gauge({
    name: "ai_maintenance_due_kiosks",
    help: "Kiosks with a maintenance item due (paper, printer, scanner, temperature), from their telemetry.",
    labelNames: ["item"],
    registers: [registry],
    async collect() {
      const { rows } = await pool
        .query<{ item: string; n: number }>("SELECT i AS item, count(*)::int AS n FROM kiosk_telemetry, unnest(due) AS i GROUP BY i")
        .catch(() => ({ rows: [] as { item: string; n: number }[] }));
      this.reset();
      for (const item of ["paper", "printer", "scanner", "temperature"]) this.set({ item }, rows.find((r) => r.item === item)?.n ?? 0);
    },
  });
  new Gauge({
    name: "ai_silent_failures_detected",
    help: "Kiosks online and healthy whose sales fell far below their forecast (ai.silent_failure.<kiosk>.detected standing).",
    registers: [registry],
    async collect() {
      const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM silent_failures WHERE detected").catch(() => ({ rows: [{ n: 0 }] }));
      this.set(rows[0]!.n);
    },
  });
}

// Per-kiosk counts per time bucket (kiosk_facts, migration 1799200000000): sales, units of the
// forecast SKU, failed orders, telemetry samples and faulty ones, and reconnects (streams opened on the version the kiosk ran). The
// consumers that store the events add to them in the same transaction, one upsert per batch,
// so a rollout's gate sums a few rows per kiosk instead of scanning every sale and sample.
// Rows are upserted in key order, so two batches touching the same rows cannot deadlock.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { KioskConnectedEvent } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus, type TelemetrySample } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import type { PoolClient } from "@adminkiosk/runtime";

/** A sample with an app error or a printer/scanner FAULT (receipt-print errors show as printer faults). */
export const faulty = (s: TelemetrySample) => s.printer === DeviceStatus.FAULT || s.scanner === DeviceStatus.FAULT || s.errors.length > 0;

export type FactName = "sales" | "forecast_units" | "failed_orders" | "payment_failures" | "samples" | "faulty_samples" | "reconnects";
const names: FactName[] = ["sales", "forecast_units", "failed_orders", "payment_failures", "samples", "faulty_samples", "reconnects"];

/** Counts for one kiosk at one time. */
export type FactDelta = { kioskId: string; at: Date } & Partial<Record<FactName, number>>;

/** Collects deltas by kiosk and bucket; `flush` writes them in one statement. */
export function factBatch(bucketMs: number) {
  const rows = new Map<string, { kioskId: string; bucket: number; counts: Record<FactName, number> }>();
  /** Adds `counts` to the kiosk's bucket holding `atMs`. */
  const count = (kioskId: string, atMs: number, counts: Partial<Record<FactName, number>>) => {
    const bucket = Math.floor(atMs / bucketMs) * bucketMs;
    const key = `${kioskId}\u0000${bucket}`;
    let row = rows.get(key);
    if (!row) rows.set(key, (row = { kioskId, bucket, counts: Object.fromEntries(names.map((n) => [n, 0])) as Record<FactName, number> }));
    for (const n of names) row.counts[n] += counts[n] ?? 0;
  };
  return {
    add: (d: FactDelta) => count(d.kioskId, d.at.getTime(), d),
    count,
    async flush(tx: PoolClient) {
      if (rows.size === 0) return;
      const list = [...rows.values()].sort((a, b) => (a.kioskId < b.kioskId ? -1 : a.kioskId > b.kioskId ? 1 : a.bucket - b.bucket));
      rows.clear();
      await tx.query(
        `INSERT INTO kiosk_facts AS f (kiosk_id, bucket, ${names.join(", ")})
         SELECT * FROM unnest($1::text[], $2::timestamptz[], ${names.map((_, i) => `$${i + 3}::int[]`).join(", ")}) ORDER BY 1, 2
         ON CONFLICT (kiosk_id, bucket) DO UPDATE SET ${names.map((n) => `${n} = f.${n} + EXCLUDED.${n}`).join(", ")}`,
        [list.map((r) => r.kioskId), list.map((r) => new Date(r.bucket)), ...names.map((n) => list.map((r) => r.counts[n]))],
      );
    },
  };
}

/** Adds `deltas` to kiosk_facts in `tx`. */
export async function addFacts(tx: PoolClient, bucketMs: number, deltas: FactDelta[]): Promise<void> {
  const batch = factBatch(bucketMs);
  deltas.forEach((d) => batch.add(d));
  await batch.flush(tx);
}

/**
 * The batch's connections that are reconnects: the kiosk's hello names the versions fleet
 * already has for it. The restart into a newly installed (or reverted) version is the
 * install's, not a reconnect. Read before the batch applies the connections.
 */
export async function reconnects(tx: PoolClient, events: KioskConnectedEvent[]): Promise<FactDelta[]> {
  if (events.length === 0) return [];
  const { rows } = await tx.query<{ kiosk_id: string; app_version: string | null; firmware_version: string | null }>(
    "SELECT kiosk_id, app_version, firmware_version FROM kiosks WHERE kiosk_id = ANY($1::text[])",
    [[...new Set(events.map((e) => e.kioskId))]],
  );
  const known = new Map(rows.map((r) => [r.kiosk_id, { app: r.app_version ?? "", firmware: r.firmware_version ?? "" }]));
  const out: FactDelta[] = [];
  for (const e of events) {
    const k = known.get(e.kioskId);
    if (!k) continue;
    const app = e.hello?.appVersion ?? "";
    const firmware = e.hello?.firmwareVersion ?? "";
    const newVersion = (app !== "" && app !== k.app) || (firmware !== "" && firmware !== k.firmware);
    // A later connection in the same batch compares with this one.
    if (app) k.app = app;
    if (firmware) k.firmware = firmware;
    if (!newVersion) out.push({ kioskId: e.kioskId, at: e.time ? timestampDate(e.time) : new Date(), reconnects: 1 });
  }
  return out;
}

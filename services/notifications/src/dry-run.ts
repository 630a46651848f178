// Dry runs (RuleService.DryRunRule): which alerts a rule would have fired over the last hour,
// replayed from recent_events (evaluate.ts keeps every connection change, every telemetry
// sample that changed the paper level in whole percent or the printer's fault state, and
// every stock-out prediction and clearance; the sweeper drops what is older than an hour).
// Kiosks are matched with their current labels (fleet's registry as notifications knows it).
// Per kiosk (and product), in time order, the rule's condition starts and clears; an alert
// counts when it held for the rule's for-duration before it cleared or the window ended —
// as the live evaluation would have fired it. A condition that began before the window
// (no event in it says when) is not counted. Nothing is written.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DryRunRuleResponseSchema, type DryRunRuleResponse } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { failedPrecondition, type Pool } from "@adminkiosk/runtime";
import type { ValidRule } from "./rules.js";

interface EventRow {
  event_time: Date;
  kiosk_id: string;
  kind: "connected" | "disconnected" | "telemetry" | "stockout_predicted" | "stockout_cleared";
  detail: string;
  paper_percent: number | null;
  printer_fault: boolean | null;
  summary: string;
  group_id: string;
  tags: string[];
}

interface Found {
  kioskId: string;
  groupId: string;
  tags: string[];
  sku: string;
  summary: string;
  fireAt: Date;
  resolvedAt?: Date;
}

const eventKinds: Partial<Record<ValidRule["kind"], EventRow["kind"][]>> = {
  kiosk_offline: ["connected", "disconnected"],
  low_paper: ["telemetry"],
  printer_fault: ["telemetry"],
  stockout_predicted: ["stockout_predicted", "stockout_cleared"],
};

const sampleSize = 20;

/** Replays the window's events against `rule` (validated by validateRule). */
export async function dryRun(pool: Pool, rule: ValidRule): Promise<DryRunRuleResponse> {
  const kinds = eventKinds[rule.kind];
  if (!kinds) throw failedPrecondition(`dry runs cover kiosk_offline, low_paper, printer_fault and stockout_predicted rules, not ${rule.kind}`);
  const groupIds = rule.definition.matcher?.groupIds ?? [];
  const tags = rule.definition.matcher?.tags ?? [];
  // One consistent view: the window's bounds and its events read in one statement.
  const { rows } = await pool.query<EventRow & { window_start: Date; window_end: Date; total: string }>(
    `WITH w AS (SELECT now() - interval '1 hour' AS window_start, now() AS window_end),
          e AS (SELECT r.*, count(*) OVER () AS total FROM recent_events r, w WHERE r.event_time >= w.window_start AND r.kind = ANY($1::text[]))
     SELECT w.window_start, w.window_end, e.total, e.event_time, e.kiosk_id, e.kind, e.detail, e.paper_percent, e.printer_fault, e.summary,
            coalesce(k.group_id, '') AS group_id, coalesce(k.tags, '{}') AS tags
     FROM w LEFT JOIN e ON true LEFT JOIN kiosks k ON k.kiosk_id = e.kiosk_id
     WHERE e.kiosk_id IS NULL OR (NOT coalesce(k.deleted, false) AND (cardinality($2::text[]) = 0 OR coalesce(k.group_id, '') = ANY($2)) AND coalesce(k.tags, '{}') @> $3::text[])
     ORDER BY e.kiosk_id, e.event_time, e.id`,
    [kinds, groupIds, tags],
  );
  const windowStart = rows[0]!.window_start;
  const windowEnd = rows[0]!.window_end;
  const events = rows.filter((r) => r.kiosk_id !== null);
  const total = Number(rows.find((r) => r.total !== null)?.total ?? 0);

  const found: Found[] = [];
  // Open conditions by kiosk + product: since when, with what summary.
  const holding = new Map<string, { since: Date; summary: string; row: EventRow; sku: string }>();
  const close = (key: string, at: Date | undefined) => {
    const h = holding.get(key);
    if (!h) return;
    holding.delete(key);
    const fireAt = new Date(h.since.getTime() + rule.forMs);
    // It fires once it held for the for-duration, before it cleared and by the window's end.
    if (fireAt > windowEnd || (at && at < fireAt)) return;
    found.push({ kioskId: h.row.kiosk_id, groupId: h.row.group_id, tags: h.row.tags, sku: h.sku, summary: h.summary, fireAt, resolvedAt: at });
  };
  const start = (key: string, e: EventRow, summary: string, sku = "") => {
    if (!holding.has(key)) holding.set(key, { since: e.event_time, summary, row: e, sku });
  };
  for (const e of events) {
    switch (rule.kind) {
      case "kiosk_offline":
        if (e.kind === "disconnected") start(e.kiosk_id, e, `kiosk ${e.kiosk_id} is offline (${e.detail || "disconnected"})`);
        else close(e.kiosk_id, e.event_time);
        break;
      case "low_paper":
        if (e.paper_percent !== null && e.paper_percent < (rule.threshold ?? 0)) start(e.kiosk_id, e, `kiosk ${e.kiosk_id}: paper at ${e.paper_percent.toFixed(0)} % (below ${rule.threshold} %)`);
        else close(e.kiosk_id, e.event_time);
        break;
      case "printer_fault":
        if (e.printer_fault) start(e.kiosk_id, e, `kiosk ${e.kiosk_id}: printer fault`);
        else close(e.kiosk_id, e.event_time);
        break;
      case "stockout_predicted": {
        if (rule.sku !== "" && rule.sku !== e.detail) break;
        const key = `${e.kiosk_id}\u0000${e.detail}`;
        if (e.kind === "stockout_predicted") start(key, e, e.summary, e.detail);
        else close(key, e.event_time);
        break;
      }
    }
  }
  for (const key of [...holding.keys()]) close(key, undefined);

  found.sort((a, b) => b.fireAt.getTime() - a.fireAt.getTime());
  const byGroup: Record<string, number> = {};
  for (const a of found) byGroup[a.groupId] = (byGroup[a.groupId] ?? 0) + 1;
  return create(DryRunRuleResponseSchema, {
    alertCount: found.length,
    samples: found.slice(0, sampleSize).map((a) => ({
      kioskId: a.kioskId,
      groupId: a.groupId,
      labels: { kiosk_id: a.kioskId, ...(a.sku ? { sku: a.sku } : {}), ...(a.groupId ? { group_id: a.groupId } : {}), ...(a.tags.length ? { tags: a.tags.join(",") } : {}) },
      summary: a.summary,
      fireTime: timestampFromDate(a.fireAt),
      resolveTime: a.resolvedAt ? timestampFromDate(a.resolvedAt) : undefined,
    })),
    windowStart: timestampFromDate(windowStart),
    windowEnd: timestampFromDate(windowEnd),
    eventsEvaluated: BigInt(total),
    kiosksMatched: new Set(events.map((e) => e.kiosk_id)).size,
    alertsByGroup: byGroup,
  });
}

// Dry runs (RuleService.DryRunRule): which alerts a rule would have fired over the last hour,
// replayed from recent_events (evaluate.ts keeps every connection change, every telemetry
// sample that changed the paper level in whole percent or the printer's fault state, and
// every stock-out prediction and clearance; conditions.ts every telemetry sample that changed
// whether the kiosk is ALERTING or reports errors, catalog's low and replenished stock, orders
// created and closed, ai's silent failures; service-health.ts each service's condition
// changing; the sweeper drops what is older than an hour). payment_failure_rate replays the
// decided payments (payment_outcomes, kept 7 days), judged at each payment over the rule's
// window ending then, as the consumer judges them.
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
  kind:
    | "connected"
    | "disconnected"
    | "telemetry"
    | "stockout_predicted"
    | "stockout_cleared"
    | "health"
    | "stock_low"
    | "stock_replenished"
    | "order_created"
    | "order_closed"
    | "silent_detected"
    | "silent_cleared"
    | "service_down"
    | "service_up"
    | "help_requested"
    | "payment";
  detail: string;
  paper_percent: number | null;
  printer_fault: boolean | null;
  alerting: boolean | null;
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
  alerting_status: ["health"],
  telemetry_errors: ["health"],
  low_stock: ["stock_low", "stock_replenished"],
  orders_stuck: ["order_created", "order_closed"],
  silent_failure: ["silent_detected", "silent_cleared"],
  service_not_serving: ["service_down", "service_up"],
  payment_failure_rate: ["payment"],
  help_requested: ["help_requested"],
};

const sampleSize = 20;

/** Replays the window's events against `rule` (validated by validateRule). */
export async function dryRun(pool: Pool, rule: ValidRule): Promise<DryRunRuleResponse> {
  const kinds = eventKinds[rule.kind];
  if (!kinds) throw failedPrecondition(`dry runs do not cover ${rule.kind} rules`);
  const groupIds = rule.definition.matcher?.groupIds ?? [];
  const tags = rule.definition.matcher?.tags ?? [];
  // One consistent view: the window's bounds and its events read in one statement. Payments
  // (payment_failure_rate) come from payment_outcomes, from one window before the hour on, so the
  // first payments of the hour are judged over a whole window.
  const payments = rule.kind === "payment_failure_rate";
  const { rows } = await pool.query<EventRow & { window_start: Date; window_end: Date; total: string }>(
    `WITH w AS (SELECT now() - interval '1 hour' AS window_start, now() AS window_end),
          src AS (
            SELECT r.id, r.event_time, r.kiosk_id, r.kind, r.detail, r.paper_percent, r.printer_fault, r.alerting, r.summary FROM recent_events r, w
            WHERE NOT $4 AND r.event_time >= w.window_start AND r.kind = ANY($1::text[])
            UNION ALL
            SELECT 0, p.decided_at, p.kiosk_id, 'payment', CASE WHEN p.failed THEN 'failed' ELSE 'succeeded' END, NULL, NULL, NULL, '' FROM payment_outcomes p, w
            WHERE $4 AND p.decided_at >= w.window_start - make_interval(secs => $5::double precision / 1000) AND p.decided_at <= w.window_end),
          e AS (SELECT src.*, count(*) FILTER (WHERE src.event_time >= w.window_start) OVER () AS total FROM src, w)
     SELECT w.window_start, w.window_end, e.total, e.event_time, e.kiosk_id, e.kind, e.detail, e.paper_percent, e.printer_fault, e.alerting, e.summary,
            coalesce(k.group_id, '') AS group_id, coalesce(k.tags, '{}') AS tags
     FROM w LEFT JOIN e ON true LEFT JOIN kiosks k ON k.kiosk_id = e.kiosk_id
     WHERE e.kiosk_id IS NULL OR (NOT coalesce(k.deleted, false) AND (cardinality($2::text[]) = 0 OR coalesce(k.group_id, '') = ANY($2)) AND coalesce(k.tags, '{}') @> $3::text[])
     ORDER BY e.kiosk_id, e.event_time, e.id`,
    [kinds, groupIds, tags, payments, rule.windowMs],
  );
  const windowStart = rows[0]!.window_start;
  const windowEnd = rows[0]!.window_end;
  const events = rows.filter((r) => r.kiosk_id !== null);
  const inWindow = events.filter((e) => e.event_time >= windowStart);
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
  const start = (key: string, e: EventRow, summary: string, sku = "", since = e.event_time) => {
    if (!holding.has(key)) holding.set(key, { since, summary, row: e, sku });
  };
  // orders_stuck: each kiosk's open orders (created within the hour) by id → created.
  const open = new Map<string, Map<string, Date>>();
  const oldestOpen = (kioskId: string): [string, Date] | undefined => {
    let oldest: [string, Date] | undefined;
    for (const [id, at] of open.get(kioskId) ?? []) if (!oldest || at < oldest[1]) oldest = [id, at];
    return oldest;
  };
  // payment_failure_rate: each kiosk's payments so far (time, failed), oldest first.
  const paid = new Map<string, { at: number; failed: boolean }[]>();
  const minutes = Math.max(1, Math.round(rule.forMs / 60_000));
  /** The kiosk's failure rate over the window ending at `at`: whether it is above the rule's threshold, and what an alert would say. */
  const rateAt = (kioskId: string, at: number) => {
    const inRate = (paid.get(kioskId) ?? []).filter((p) => p.at > at - rule.windowMs && p.at <= at);
    const failed = inRate.filter((p) => p.failed).length;
    const rate = inRate.length ? (failed * 100) / inRate.length : 0;
    const window = Math.round(rule.windowMs / 60_000);
    return {
      above: inRate.length >= rule.minCount && rate > (rule.threshold ?? 100),
      summary: `kiosk ${kioskId}: ${failed} of ${inRate.length} payments failed in the last ${window} min (${rate.toFixed(0)} %, above ${rule.threshold} %)`,
    };
  };
  /** A firing rate clears as its failures leave the window (the live upkeep judges it again each pass): checked at each departure before `until`. */
  const slide = (kioskId: string, until: number) => {
    if (!holding.has(kioskId)) return;
    const departures = (paid.get(kioskId) ?? []).map((p) => p.at + rule.windowMs).filter((d) => d < until && d >= holding.get(kioskId)!.since.getTime());
    for (const d of departures.sort((a, b) => a - b))
      if (!rateAt(kioskId, d).above) {
        close(kioskId, new Date(d));
        return;
      }
  };
  let lastKiosk: string | undefined;
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
      case "stockout_predicted":
      case "low_stock": {
        if (rule.sku !== "" && rule.sku !== e.detail) break;
        const key = `${e.kiosk_id}\u0000${e.detail}`;
        if (e.kind === "stockout_predicted" || e.kind === "stock_low") start(key, e, e.summary, e.detail);
        else close(key, e.event_time);
        break;
      }
      case "alerting_status":
        if (e.alerting) start(e.kiosk_id, e, e.summary);
        else close(e.kiosk_id, e.event_time);
        break;
      case "telemetry_errors":
        if (e.detail !== "") start(e.kiosk_id, e, e.detail);
        else close(e.kiosk_id, e.event_time);
        break;
      case "silent_failure":
        if (e.kind === "silent_detected") start(e.kiosk_id, e, e.summary);
        else close(e.kiosk_id, e.event_time);
        break;
      case "service_not_serving":
        if (rule.sku !== "" && rule.sku !== e.detail) break;
        if (e.kind === "service_down") start(e.detail, e, e.summary, e.detail);
        else close(e.detail, e.event_time);
        break;
      case "orders_stuck": {
        // The oldest open order fires once it is open for_duration; closing it (and any other
        // that old) clears, and the next oldest may fire later (as judgeOpenOrders does).
        const orders = open.get(e.kiosk_id) ?? new Map<string, Date>();
        open.set(e.kiosk_id, orders);
        if (e.kind === "order_created") orders.set(e.detail, e.event_time);
        else if (orders.delete(e.detail)) {
          const oldest = oldestOpen(e.kiosk_id);
          if (!oldest || oldest[1].getTime() + rule.forMs > e.event_time.getTime()) close(e.kiosk_id, e.event_time);
        }
        const oldest = oldestOpen(e.kiosk_id);
        if (oldest) start(e.kiosk_id, e, `kiosk ${e.kiosk_id}: order ${oldest[0]} not completed within ${minutes} min`, "", oldest[1]);
        break;
      }
      case "help_requested":
        // Open from the first call until someone resolves it (later calls join it).
        start(e.kiosk_id, e, e.summary);
        break;
      case "payment_failure_rate": {
        // Judged at each payment over the window ending then (payments before the hour only count).
        if (lastKiosk !== undefined && lastKiosk !== e.kiosk_id) slide(lastKiosk, windowEnd.getTime());
        lastKiosk = e.kiosk_id;
        const at = e.event_time.getTime();
        slide(e.kiosk_id, at);
        const list = paid.get(e.kiosk_id) ?? [];
        paid.set(e.kiosk_id, list);
        list.push({ at, failed: e.detail === "failed" });
        if (e.event_time < windowStart) break;
        const r = rateAt(e.kiosk_id, at);
        if (r.above) start(e.kiosk_id, e, r.summary);
        else close(e.kiosk_id, e.event_time);
        break;
      }
    }
  }
  if (lastKiosk !== undefined) slide(lastKiosk, windowEnd.getTime());
  for (const key of [...holding.keys()]) close(key, undefined);

  found.sort((a, b) => b.fireAt.getTime() - a.fireAt.getTime());
  const byGroup: Record<string, number> = {};
  for (const a of found) byGroup[a.groupId] = (byGroup[a.groupId] ?? 0) + 1;
  return create(DryRunRuleResponseSchema, {
    alertCount: found.length,
    samples: found.slice(0, sampleSize).map((a) => ({
      kioskId: a.kioskId,
      groupId: a.groupId,
      labels:
        rule.kind === "service_not_serving"
          ? ({ service: a.sku } as Record<string, string>)
          : { kiosk_id: a.kioskId, ...(a.sku ? { sku: a.sku } : {}), ...(a.groupId ? { group_id: a.groupId } : {}), ...(a.tags.length ? { tags: a.tags.join(",") } : {}) },
      summary: a.summary,
      fireTime: timestampFromDate(a.fireAt),
      resolveTime: a.resolvedAt ? timestampFromDate(a.resolvedAt) : undefined,
    })),
    windowStart: timestampFromDate(windowStart),
    windowEnd: timestampFromDate(windowEnd),
    eventsEvaluated: BigInt(total),
    kiosksMatched: new Set(inWindow.filter((e) => e.kiosk_id !== "").map((e) => e.kiosk_id)).size,
    alertsByGroup: byGroup,
  });
}

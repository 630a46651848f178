// The rule kinds fed by link's telemetry (alerting_status, telemetry_errors), catalog's stock
// events (low_stock), payments' events (payment_failure_rate), orders' events (orders_stuck;
// buyers' receipts too, see receipts.ts), ai's silent-failure events (silent_failure) and customers' events
// (help_requested and buyers' back-in-stock messages, customers-events.ts), each stream through its own durable
// consumer of the runtime (one transaction per message with its inbox row). No other
// service's database is read. What each rule judges is kept here (kiosk_health,
// stock_levels, payment_outcomes, open_orders, silent_failures); event times decide, so an older event
// changes nothing newer. A small upkeep loop re-judges what time alone changes (a payment
// window sliding past its failures) and forgets what is no longer needed.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { SilentFailureEventSchema } from "@adminkiosk/proto/adminkiosk/ai/v1/maintenance_events_pb";
import { StockLowEventSchema, StockReplenishedEventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/events_pb";
import { KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { OrderCompletedEventSchema, OrderCreatedEventSchema, OrderFailedEventSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/events_pb";
import { PaymentFailedEventSchema, PaymentSucceededEventSchema } from "@adminkiosk/proto/adminkiosk/payments/v1/events_pb";
import {
  aiSubjects,
  catalogSubjects,
  customersSubjects,
  decodeEvent,
  ensureStream,
  inTransaction,
  isAlerting,
  isLowOnPaper,
  linkSubjects,
  opsSubjects,
  ordersSubjects,
  paymentsSubjects,
  runForever,
  sleep,
  startConsumer,
  type ConsumedMessage,
  type DurableConsumer,
  type JudgedState,
  type Logger,
  type NatsConnection,
  type Pool,
  type PoolClient,
} from "@adminkiosk/runtime";
import { conditionCleared, conditionHolds } from "./alerts.js";
import { applyCustomersEvent, backInStockUpkeep } from "./customers-events.js";
import { receiptOrderCompleted, receiptOrderFailed, receiptsUpkeep } from "./receipts.js";
import { applyHealthEvent, serviceHealthUpkeep } from "./service-health.js";
import { matches, rules, type LiveRule, type RuleKind } from "./rules.js";

interface Kiosk {
  kioskId: string;
  groupId: string;
  tags: string[];
}

/** The kiosk's labels as fleet's events last set them (none known yet: no group, no tags). */
export async function kioskOf(tx: PoolClient, kioskId: string): Promise<Kiosk & { deleted: boolean }> {
  const { rows } = await tx.query<{ group_id: string; tags: string[]; deleted: boolean }>("SELECT group_id, tags, deleted FROM kiosks WHERE kiosk_id = $1", [kioskId]);
  return { kioskId, groupId: rows[0]?.group_id ?? "", tags: rows[0]?.tags ?? [], deleted: rows[0]?.deleted ?? false };
}

/** The live rules of `kinds` that select the kiosk. */
export async function rulesSelecting(tx: PoolClient, kinds: RuleKind[], kiosk: Kiosk & { deleted: boolean }): Promise<LiveRule[]> {
  if (kiosk.deleted) return [];
  return (await rules.live(tx, kinds)).filter((r) => matches(r, kiosk));
}

/** Keeps an event for dry runs (recent_events: the last hour, see dry-run.ts). */
export async function recordEvent(tx: PoolClient, time: Date, kioskId: string, kind: string, detail: string, summary = ""): Promise<void> {
  await tx.query("INSERT INTO recent_events (event_time, kiosk_id, kind, detail, summary) VALUES ($1, $2, $3, $4, $5)", [time, kioskId, kind, detail, summary]);
}

// ---- link's telemetry: alerting_status, telemetry_errors ----

/** What alerting_status and telemetry_errors judge of a sample (the runtime's isAlerting, as fleet's status). */
export function judgeSample(kioskId: string, s: { paperLevelPercent: number; printer: DeviceStatus; scanner: DeviceStatus; errors: string[] }) {
  const errors = s.errors.slice(0, 20).map((e) => e.slice(0, 200));
  const judged: JudgedState = {
    paperLevelPercent: s.paperLevelPercent,
    printerStatus: s.printer === DeviceStatus.FAULT ? "FAULT" : "OK",
    scannerStatus: s.scanner === DeviceStatus.FAULT ? "FAULT" : "OK",
    errors,
  };
  const listed = `${errors.slice(0, 3).join("; ")}${errors.length > 3 ? ` (+${errors.length - 3} more)` : ""}`;
  const why = [
    ...(errors.length ? [`errors: ${listed}`] : []),
    ...(judged.printerStatus === "FAULT" ? ["printer fault"] : []),
    ...(judged.scannerStatus === "FAULT" ? ["scanner fault"] : []),
    ...(isLowOnPaper(judged) ? [`paper at ${s.paperLevelPercent.toFixed(0)} %`] : []),
  ];
  return { alerting: isAlerting(judged), errors, alertingSummary: `kiosk ${kioskId} is alerting (${why.join(", ")})`, errorsSummary: `kiosk ${kioskId} reports errors: ${listed}` };
}

export async function applyTelemetryEvent(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  const parsed = linkSubjects.parse(msg.subject);
  if (parsed?.kind !== "telemetry") return;
  const e = decodeEvent(KioskTelemetryEventSchema, msg);
  const latest = [...(e.batch?.samples ?? [])].filter((s) => s.time).sort((a, b) => timestampDate(a.time!).getTime() - timestampDate(b.time!).getTime()).at(-1);
  if (!latest) return;
  const time = timestampDate(latest.time!);
  const j = judgeSample(parsed.kioskId, latest);
  // For dry runs: a sample that changed whether the kiosk is ALERTING or reports errors, read
  // before the upsert from the row the previous sample left (one sample of a kiosk at a time:
  // the consumer applies two messages at once, and both would read no row yet). A sample older
  // than the kiosk's latest (the two may be applied out of order) is compared with the sample
  // kept before it in time instead.
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('notifications.kiosk_health'), hashtext($1))", [parsed.kioskId]);
  await tx.query(
    `INSERT INTO recent_events (event_time, kiosk_id, kind, alerting, detail, summary)
     SELECT $2::timestamptz, $1::text, 'health', $3::boolean, $4::text, $5::text
     FROM (SELECT 1) one LEFT JOIN kiosk_health h ON h.kiosk_id = $1::text
     WHERE CASE
       WHEN h.kiosk_id IS NULL THEN $3::boolean OR $4::text <> ''
       WHEN h.sample_time = $2::timestamptz THEN false
       WHEN h.sample_time < $2::timestamptz THEN NOT (h.alerting = $3::boolean AND (cardinality(h.errors) > 0) = ($4::text <> ''))
       ELSE NOT EXISTS (
         SELECT 1 FROM (SELECT alerting, detail FROM recent_events WHERE kiosk_id = $1::text AND kind = 'health' AND event_time < $2::timestamptz ORDER BY event_time DESC LIMIT 1) p
         WHERE p.alerting = $3::boolean AND (p.detail <> '') = ($4::text <> ''))
     END`,
    [parsed.kioskId, time, j.alerting, j.errors.length > 0 ? j.errorsSummary : "", j.alertingSummary],
  );
  const { rowCount } = await tx.query(
    `INSERT INTO kiosk_health (kiosk_id, alerting, errors, summary, sample_time) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (kiosk_id) DO UPDATE SET alerting = $2, errors = $3, summary = $4, sample_time = $5 WHERE kiosk_health.sample_time < $5`,
    [parsed.kioskId, j.alerting, j.errors, j.alertingSummary, time],
  );
  if (!rowCount) return;
  const kiosk = await kioskOf(tx, parsed.kioskId);
  for (const rule of await rulesSelecting(tx, ["alerting_status", "telemetry_errors"], kiosk)) {
    const holds = rule.kind === "alerting_status" ? j.alerting : j.errors.length > 0;
    // A kiosk that keeps reporting keeps its alert (active since the first such sample).
    if (holds) await conditionHolds(tx, rule, kiosk, time, rule.kind === "alerting_status" ? j.alertingSummary : j.errorsSummary);
    else await conditionCleared(tx, rule.ruleId, kiosk.kioskId);
  }
}

// ---- catalog's stock: low_stock ----

export const lowStockSummary = (kioskId: string, sku: string, onHand: bigint | string, threshold: bigint | string) =>
  `kiosk ${kioskId}: product ${sku} is low on stock (${onHand} on hand, threshold ${threshold})`;

export async function applyCatalogEvent(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  const parsed = catalogSubjects.parseStock(msg.subject);
  if (!parsed) return;
  const low = parsed.kind === "low";
  const e = low ? decodeEvent(StockLowEventSchema, msg) : decodeEvent(StockReplenishedEventSchema, msg);
  if (!e.sku) return;
  const time = e.time ? timestampDate(e.time) : new Date();
  const { rowCount } = await tx.query(
    `INSERT INTO stock_levels (kiosk_id, sku, low, on_hand, threshold, event_time) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (kiosk_id, sku) DO UPDATE SET low = $3, on_hand = $4, threshold = $5, event_time = $6 WHERE stock_levels.event_time < $6`,
    [parsed.kioskId, e.sku, low, e.onHand.toString(), e.lowStockThreshold.toString(), time],
  );
  if (!rowCount) return;
  await recordEvent(tx, time, parsed.kioskId, low ? "stock_low" : "stock_replenished", e.sku, low ? lowStockSummary(parsed.kioskId, e.sku, e.onHand, e.lowStockThreshold) : "");
  const kiosk = await kioskOf(tx, parsed.kioskId);
  for (const rule of await rulesSelecting(tx, ["low_stock"], kiosk)) {
    if (rule.sku !== "" && rule.sku !== e.sku) continue;
    if (low) await conditionHolds(tx, rule, kiosk, time, lowStockSummary(kiosk.kioskId, e.sku, e.onHand, e.lowStockThreshold), e.sku);
    else await conditionCleared(tx, rule.ruleId, kiosk.kioskId, "stock replenished", e.sku);
  }
}

// ---- payments: payment_failure_rate ----

/** Judges the kiosk's payments over each rule's window ending now: holds above the threshold with enough payments, clears otherwise. */
async function judgePayments(tx: PoolClient, kiosk: Kiosk, rulesToJudge: LiveRule[]): Promise<void> {
  if (rulesToJudge.length === 0) return;
  // One judge per kiosk at a time (the consumer on a new payment, the upkeep as the window
  // slides): the second waits for the first to commit, then counts what it committed, so a
  // stale count cannot reopen an alert the other just resolved.
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('notifications.payment_rate'), hashtext($1))", [kiosk.kioskId]);
  for (const rule of rulesToJudge) {
    const { rows } = await tx.query<{ total: number; failed: number }>(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE failed)::int AS failed FROM payment_outcomes
       WHERE kiosk_id = $1 AND decided_at > now() - make_interval(secs => $2::double precision / 1000)`,
      [kiosk.kioskId, rule.windowMs],
    );
    const { total, failed } = rows[0]!;
    const rate = total > 0 ? (failed * 100) / total : 0;
    if (total >= rule.minCount && rate > (rule.threshold ?? 100)) {
      const minutes = Math.round(rule.windowMs / 60_000);
      await conditionHolds(tx, rule, kiosk, new Date(), `kiosk ${kiosk.kioskId}: ${failed} of ${total} payments failed in the last ${minutes} min (${rate.toFixed(0)} %, above ${rule.threshold} %)`);
    } else await conditionCleared(tx, rule.ruleId, kiosk.kioskId, "payment failure rate back under the threshold");
  }
}

export async function applyPaymentEvent(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  const parsed = paymentsSubjects.parseIntent(msg.subject);
  if (parsed?.kind !== "succeeded" && parsed?.kind !== "failed") return;
  const e = parsed.kind === "failed" ? decodeEvent(PaymentFailedEventSchema, msg) : decodeEvent(PaymentSucceededEventSchema, msg);
  const intent = e.paymentIntent;
  if (!intent?.kioskId) return;
  const time = e.time ? timestampDate(e.time) : new Date();
  const { rowCount } = await tx.query(
    "INSERT INTO payment_outcomes (payment_intent_id, kiosk_id, failed, decided_at) VALUES ($1, $2, $3, $4) ON CONFLICT (payment_intent_id) DO NOTHING",
    [parsed.intentId, intent.kioskId, parsed.kind === "failed", time],
  );
  if (!rowCount) return;
  const kiosk = await kioskOf(tx, intent.kioskId);
  await judgePayments(tx, kiosk, await rulesSelecting(tx, ["payment_failure_rate"], kiosk));
}

// ---- orders: orders_stuck (and receipts) ----

/** Re-judges orders_stuck for the kiosk from its open orders: the oldest decides when the alert fires. */
async function judgeOpenOrders(tx: PoolClient, kiosk: Kiosk, rulesToJudge: LiveRule[]): Promise<void> {
  if (rulesToJudge.length === 0) return;
  const { rows } = await tx.query<{ order_id: string; created_at: Date; open: number }>(
    "SELECT order_id, created_at, count(*) OVER ()::int AS open FROM open_orders WHERE kiosk_id = $1 ORDER BY created_at, order_id LIMIT 1",
    [kiosk.kioskId],
  );
  const oldest = rows[0];
  const now = Date.now();
  for (const rule of rulesToJudge) {
    const minutes = Math.max(1, Math.round(rule.forMs / 60_000));
    if (oldest && oldest.created_at.getTime() + rule.forMs <= now) continue; // still stuck: the alert stays as it is
    // None stuck now: an open alert resolves; the oldest open order (if any) may become stuck later.
    await conditionCleared(tx, rule.ruleId, kiosk.kioskId, "no order stuck any more");
    if (oldest)
      await conditionHolds(
        tx,
        rule,
        kiosk,
        oldest.created_at,
        `kiosk ${kiosk.kioskId}: order ${oldest.order_id} not completed within ${minutes} min${oldest.open > 1 ? ` (${oldest.open} orders open)` : ""}`,
      );
  }
}

export async function applyOrderEvent(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  const parsed = ordersSubjects.parseOrder(msg.subject);
  if (!parsed) return;
  switch (parsed.kind) {
    case "created": {
      const { order, time } = decodeEvent(OrderCreatedEventSchema, msg);
      if (!order?.kioskId) return;
      const created = order.createTime ? timestampDate(order.createTime) : time ? timestampDate(time) : new Date();
      const { rowCount } = await tx.query("INSERT INTO open_orders (order_id, kiosk_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING", [
        parsed.orderId,
        order.kioskId,
        created,
      ]);
      if (!rowCount) return;
      await recordEvent(tx, created, order.kioskId, "order_created", parsed.orderId);
      const kiosk = await kioskOf(tx, order.kioskId);
      await judgeOpenOrders(tx, kiosk, await rulesSelecting(tx, ["orders_stuck"], kiosk));
      return;
    }
    case "completed":
    case "failed": {
      const { order, time } = parsed.kind === "completed" ? decodeEvent(OrderCompletedEventSchema, msg) : decodeEvent(OrderFailedEventSchema, msg);
      if (!order) return;
      if (parsed.kind === "completed") await receiptOrderCompleted(tx, order);
      else await receiptOrderFailed(tx, parsed.orderId);
      const { rows } = await tx.query<{ kiosk_id: string }>("DELETE FROM open_orders WHERE order_id = $1 RETURNING kiosk_id", [parsed.orderId]);
      if (!rows[0]) return;
      await recordEvent(tx, time ? timestampDate(time) : new Date(), rows[0].kiosk_id, "order_closed", parsed.orderId);
      const kiosk = await kioskOf(tx, rows[0].kiosk_id);
      await judgeOpenOrders(tx, kiosk, await rulesSelecting(tx, ["orders_stuck"], kiosk));
      return;
    }
    default:
      return;
  }
}

// ---- ai: silent_failure ----

export async function applySilentFailureEvent(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  const parsed = aiSubjects.parseSilentFailure(msg.subject);
  if (!parsed) return;
  const e = decodeEvent(SilentFailureEventSchema, msg);
  const time = e.time ? timestampDate(e.time) : new Date();
  const detected = parsed.kind === "detected";
  const { rowCount } = await tx.query(
    `INSERT INTO silent_failures (kiosk_id, detected, event_time) VALUES ($1, $2, $3)
     ON CONFLICT (kiosk_id) DO UPDATE SET detected = $2, event_time = $3 WHERE silent_failures.event_time < $3`,
    [parsed.kioskId, detected, time],
  );
  if (!rowCount) return;
  const kiosk = await kioskOf(tx, parsed.kioskId);
  const f = e.failure;
  const summary = `kiosk ${kiosk.kioskId} sells far less than forecast: ${f?.observedUnits ?? 0n} units sold, ${(f?.expectedUnits ?? 0).toFixed(1)} expected (p = ${(f?.probability ?? 0).toPrecision(2)})`;
  await recordEvent(tx, time, kiosk.kioskId, detected ? "silent_detected" : "silent_cleared", "", detected ? summary : "");
  for (const rule of await rulesSelecting(tx, ["silent_failure"], kiosk)) {
    if (detected) await conditionHolds(tx, rule, kiosk, time, summary);
    else await conditionCleared(tx, rule.ruleId, kiosk.kioskId, e.clearReason || "sales as expected again");
  }
}

// ---- fleet's label changes ----

/** A condition of these kinds that holds for a kiosk now (for re-evaluating it when its labels change). */
export interface HeldCondition {
  kind: RuleKind;
  since: Date;
  summary: string;
  sku?: string;
}

/**
 * What holds now for each of `kioskIds` of the kinds here, from the state kept (so a kiosk
 * newly selected by a rule alerts at once, since when it began). payment_failure_rate is
 * judged again on the kiosk's next payment, as its window moves.
 */
export async function heldConditions(tx: PoolClient, kioskIds: string[]): Promise<Map<string, HeldCondition[]>> {
  const held = new Map<string, HeldCondition[]>();
  if (kioskIds.length === 0) return held;
  const add = (kioskId: string, c: HeldCondition) => held.set(kioskId, [...(held.get(kioskId) ?? []), c]);
  const { rows: health } = await tx.query<{ kiosk_id: string; alerting: boolean; errors: string[]; summary: string; sample_time: Date }>(
    "SELECT kiosk_id, alerting, errors, summary, sample_time FROM kiosk_health WHERE kiosk_id = ANY($1::text[]) AND (alerting OR cardinality(errors) > 0)",
    [kioskIds],
  );
  for (const h of health) {
    if (h.alerting) add(h.kiosk_id, { kind: "alerting_status", since: h.sample_time, summary: h.summary });
    if (h.errors.length > 0) add(h.kiosk_id, { kind: "telemetry_errors", since: h.sample_time, summary: `kiosk ${h.kiosk_id} reports errors: ${h.errors.slice(0, 3).join("; ")}` });
  }
  const { rows: stock } = await tx.query<{ kiosk_id: string; sku: string; on_hand: string; threshold: string; event_time: Date }>(
    "SELECT kiosk_id, sku, on_hand, threshold, event_time FROM stock_levels WHERE kiosk_id = ANY($1::text[]) AND low",
    [kioskIds],
  );
  for (const l of stock) add(l.kiosk_id, { kind: "low_stock", since: l.event_time, summary: lowStockSummary(l.kiosk_id, l.sku, l.on_hand, l.threshold), sku: l.sku });
  const { rows: silent } = await tx.query<{ kiosk_id: string; event_time: Date }>("SELECT kiosk_id, event_time FROM silent_failures WHERE kiosk_id = ANY($1::text[]) AND detected", [kioskIds]);
  for (const f of silent) add(f.kiosk_id, { kind: "silent_failure", since: f.event_time, summary: `kiosk ${f.kiosk_id} sells far less than forecast` });
  const { rows: open } = await tx.query<{ kiosk_id: string; order_id: string; created_at: Date }>(
    "SELECT DISTINCT ON (kiosk_id) kiosk_id, order_id, created_at FROM open_orders WHERE kiosk_id = ANY($1::text[]) ORDER BY kiosk_id, created_at, order_id",
    [kioskIds],
  );
  for (const o of open) add(o.kiosk_id, { kind: "orders_stuck", since: o.created_at, summary: `kiosk ${o.kiosk_id}: order ${o.order_id} not completed in time` });
  return held;
}

/** Which of `held` a rule of these kinds alerts on (its product filter applied). */
export function heldFor(rule: LiveRule, held: HeldCondition[] | undefined): HeldCondition[] {
  return (held ?? []).filter((c) => c.kind === rule.kind && (rule.kind !== "low_stock" || rule.sku === "" || rule.sku === c.sku));
}

// ---- wiring ----

export interface ConditionConsumersOptions {
  pool: Pool;
  nats: Promise<NatsConnection>;
  log: Logger;
  consumers: { telemetry: string; catalog: string; payments: string; orders: string; silentFailures: string; serviceHealth: string; customers: string };
  sinceStart: boolean;
  /** How often the upkeep runs. */
  upkeepMs: number;
}

/** Starts the five durable consumers and the upkeep loop. */
export function startConditions(o: ConditionConsumersOptions): { consumers: DurableConsumer[]; stop(): Promise<void> } {
  const { pool, nats, log } = o;
  const since = o.sinceStart ? new Date() : undefined;
  // The streams are their producers'; made here too (same definitions) so each consumer starts
  // at once whichever service starts first.
  for (const stream of [catalogSubjects.stream, paymentsSubjects.stream, ordersSubjects.stream, aiSubjects.stream, opsSubjects.stream, customersSubjects.stream])
    void nats.then((nc) => ensureStream(nc, stream)).catch((err: unknown) => log.warn({ err, stream: stream.name }, "could not create the stream yet; its consumer retries"));
  const consumers = [
    startConsumer({ pool, nats, log, stream: linkSubjects.stream.name, durable: o.consumers.telemetry, filter: linkSubjects.allTelemetry, since, concurrency: 2, apply: applyTelemetryEvent }),
    startConsumer({ pool, nats, log, stream: catalogSubjects.stream.name, durable: o.consumers.catalog, filter: catalogSubjects.allStock, since, apply: applyCatalogEvent }),
    startConsumer({ pool, nats, log, stream: paymentsSubjects.stream.name, durable: o.consumers.payments, filter: paymentsSubjects.allIntents, since, apply: applyPaymentEvent }),
    startConsumer({ pool, nats, log, stream: ordersSubjects.stream.name, durable: o.consumers.orders, filter: ordersSubjects.allOrders, since, apply: applyOrderEvent }),
    startConsumer({ pool, nats, log, stream: aiSubjects.stream.name, durable: o.consumers.silentFailures, filter: aiSubjects.allSilentFailures, since, apply: applySilentFailureEvent }),
    // Every process's health announcements (service_not_serving): heartbeats of past processes
    // matter only until they are replaced, so a new durable starts at the last hour the stream keeps.
    startConsumer({ pool, nats, log, stream: opsSubjects.stream.name, durable: o.consumers.serviceHealth, filter: opsSubjects.allHealth, since, apply: applyHealthEvent }),
    // customers' calls for help (help_requested) and buyers' back-in-stock messages (customers-events.ts).
    startConsumer({ pool, nats, log, stream: customersSubjects.stream.name, durable: o.consumers.customers, filter: customersSubjects.all, since, apply: applyCustomersEvent }),
  ];
  const stop = new AbortController();
  const loop = runForever({ log, what: "notifications condition upkeep", signal: stop.signal }, async (ready) => {
    while (!stop.signal.aborted) {
      await upkeep(pool);
      ready();
      await sleep(o.upkeepMs, stop.signal);
    }
  });
  return {
    consumers,
    async stop() {
      stop.abort();
      await loop;
      await Promise.all(consumers.map((c) => c.stop()));
    },
  };
}

/**
 * What time alone changes: open payment_failure_rate alerts are judged again as their window
 * slides; decided payments older than the longest window (7 days) are forgotten; receipt
 * requests past their time are deleted and sent receipts' and back-in-stock messages' addresses
 * masked (receipts.ts, customers-events.ts);
 * service processes silent past their heartbeat's ttl count as not serving (service-health.ts).
 */
async function upkeep(pool: Pool): Promise<void> {
  const { rows } = await pool.query<{ kiosk_id: string; rule_id: string }>(
    `SELECT DISTINCT a.kiosk_id, a.rule_id FROM alerts a JOIN rules r USING (rule_id)
     WHERE r.kind = 'payment_failure_rate' AND r.deleted_at IS NULL AND a.state IN ('pending', 'firing', 'acknowledged') LIMIT 1000`,
  );
  for (const row of rows)
    await inTransaction(pool, async (tx) => {
      const kiosk = await kioskOf(tx, row.kiosk_id);
      await judgePayments(tx, kiosk, (await rulesSelecting(tx, ["payment_failure_rate"], kiosk)).filter((r) => r.ruleId === row.rule_id));
    });
  await pool.query("DELETE FROM payment_outcomes WHERE decided_at < now() - interval '7 days 1 hour'");
  await receiptsUpkeep(pool);
  await backInStockUpkeep(pool);
  await serviceHealthUpkeep(pool);
}

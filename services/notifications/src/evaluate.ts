// Evaluation: link's events (stream LINK), fleet's kiosk registry events (stream FLEET:
// a kiosk's group and tags) and ai's stock-out predictions (stream AI: ai.stockout.<kiosk>.
// predicted | cleared, per product), each through the runtime's durable consumer, update what
// notifications knows of each kiosk and open or clear the rules' alerts. No other
// service's database is read. Event times decide, so a late event changes nothing newer.
// A label change re-evaluates the kiosk against every rule with what is known of it: a
// rule that now matches opens its alert if its condition holds (since when it began), one
// that no longer matches clears it; pending alerts take the new labels, open ones keep
// those they fired with (their group was named in a notification already).
// link's and fleet's events come in batches (the runtime consumer's applyBatch, one
// transaction each), applied set-wise per round of distinct kiosks: a storm of 10,000
// registrations or disconnections is a few dozen statements, not 50,000. What dry runs
// replay (recent_events: connection changes, telemetry that changed what a rule sees,
// stock-out predictions) is kept for an hour.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { StockoutPredictedEventSchema } from "@adminkiosk/proto/adminkiosk/ai/v1/events_pb";
import { KioskRegistryEventSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/events_pb";
import { KioskConnectedEventSchema, KioskDisconnectedEventSchema, KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { aiSubjects, decodeEvent, fleetSubjects, linkSubjects, type ConsumedMessage, type PoolClient } from "@adminkiosk/runtime";
import { clearAll, conditionCleared, conditionHolds, holdAll, type Clearing, type Holding } from "./alerts.js";
import { heldConditions, heldFor } from "./conditions.js";
import { commerceKinds, kioskKinds, matches, rules, type LiveRule, type RuleKind } from "./rules.js";

interface KioskLabels {
  kioskId: string;
  groupId: string;
  tags: string[];
  /** Deleted from fleet's registry: no rule selects it. */
  deleted: boolean;
}

async function kioskLabels(tx: PoolClient, kioskId: string): Promise<KioskLabels> {
  const { rows } = await tx.query<{ group_id: string; tags: string[]; deleted: boolean }>(
    "INSERT INTO kiosks (kiosk_id) VALUES ($1) ON CONFLICT (kiosk_id) DO UPDATE SET kiosk_id = EXCLUDED.kiosk_id RETURNING group_id, tags, deleted",
    [kioskId],
  );
  return { kioskId, groupId: rows[0]!.group_id, tags: rows[0]!.tags, deleted: rows[0]!.deleted };
}

/** The live rules of these kinds selecting the kiosk (`live`: the rules, when already read). */
async function rulesFor(tx: PoolClient, kinds: RuleKind[], kiosk: KioskLabels, live?: LiveRule[]): Promise<LiveRule[]> {
  if (kiosk.deleted) return [];
  return (live ?? (await rules.live(tx, kinds))).filter((r) => kinds.includes(r.kind) && matches(r, kiosk));
}

/** What notifications knows of a kiosk's condition (kiosks row). */
interface KioskState {
  connected: boolean | null;
  connection_time: Date | null;
  paper_percent: number | null;
  printer_fault: boolean | null;
  sample_time: Date | null;
}

/** The conditions of `rule` that hold for a kiosk, from what is known of it (stock-outs: its predicted products). */
function conditionsOf(rule: LiveRule, kioskId: string, k: KioskState, predicted: { sku: string; summary: string; event_time: Date }[]): { since: Date; summary: string; sku?: string }[] {
  if (rule.kind === "kiosk_offline" && k.connected === false && k.connection_time) return [{ since: k.connection_time, summary: `kiosk ${kioskId} is offline` }];
  if (rule.kind === "low_paper" && k.paper_percent !== null && k.sample_time && k.paper_percent < (rule.threshold ?? 0))
    return [{ since: k.sample_time, summary: `kiosk ${kioskId}: paper at ${k.paper_percent.toFixed(0)} % (below ${rule.threshold} %)` }];
  if (rule.kind === "printer_fault" && k.printer_fault && k.sample_time) return [{ since: k.sample_time, summary: `kiosk ${kioskId}: printer fault` }];
  if (rule.kind === "stockout_predicted") return predicted.filter((p) => rule.sku === "" || rule.sku === p.sku).map((p) => ({ since: p.event_time, summary: p.summary, sku: p.sku }));
  return [];
}

/**
 * Splits a batch into rounds in which each kiosk appears at most once, keeping each kiosk's
 * messages in order: a round is applied with a few set-wise statements (kiosks are
 * independent of each other), and a kiosk's second message sees what its first did.
 */
function rounds<T>(items: T[], kioskOf: (item: T) => string): T[][] {
  const out: T[][] = [];
  const seen = new Map<string, number>();
  for (const item of items) {
    const kiosk = kioskOf(item);
    const n = seen.get(kiosk) ?? 0;
    seen.set(kiosk, n + 1);
    (out[n] ??= []).push(item);
  }
  return out;
}

const byKiosk = <T extends { kioskId: string }>(a: T, b: T) => (a.kioskId < b.kioskId ? -1 : a.kioskId > b.kioskId ? 1 : 0);

/**
 * Applies a batch of fleet's kiosk registry events (in the consumer's transaction, with their
 * inbox rows): a handful of statements per round however many kiosks (10,000 registered at once).
 */
export async function applyFleetEvents(tx: PoolClient, msgs: ConsumedMessage[]): Promise<void> {
  const events = msgs.flatMap((msg) => {
    const parsed = fleetSubjects.parseKiosk(msg.subject);
    if (!parsed) return [];
    const e = decodeEvent(KioskRegistryEventSchema, msg);
    const deleted = parsed.kind === "deleted" || e.deleted;
    return [{ kioskId: parsed.kioskId, groupId: deleted ? "" : e.groupId, tags: deleted ? [] : [...new Set(e.tags)], time: e.time ? timestampDate(e.time) : new Date(), deleted }];
  });
  if (events.length === 0) return;
  const live = await rules.live(tx, [...kioskKinds, "stockout_predicted", ...commerceKinds]);
  for (const round of rounds(events, (e) => e.kioskId)) {
    round.sort(byKiosk);
    const { rows } = await tx.query<KioskState & { kiosk_id: string; group_id: string; tags: string[]; deleted: boolean }>(
      `INSERT INTO kiosks (kiosk_id, group_id, tags, labels_time, deleted)
       SELECT e.kiosk_id, e.group_id, e.tags, e.time, e.deleted FROM jsonb_to_recordset($1::jsonb) AS e(kiosk_id text, group_id text, tags text[], time timestamptz, deleted boolean)
       ON CONFLICT (kiosk_id) DO UPDATE SET group_id = EXCLUDED.group_id, tags = EXCLUDED.tags, labels_time = EXCLUDED.labels_time, deleted = EXCLUDED.deleted
       WHERE kiosks.labels_time IS NULL OR kiosks.labels_time < EXCLUDED.labels_time
       RETURNING kiosk_id, group_id, tags, deleted, connected, connection_time, paper_percent, printer_fault, sample_time`,
      [JSON.stringify(round.map((e) => ({ kiosk_id: e.kioskId, group_id: e.groupId, tags: e.tags, time: e.time.toISOString(), deleted: e.deleted })))],
    );
    if (rows.length === 0) continue;
    // Pending alerts take the new labels; open ones keep those they fired with.
    await tx.query(
      `UPDATE alerts a SET group_id = k.group_id, tags = k.tags FROM jsonb_to_recordset($1::jsonb) AS k(kiosk_id text, group_id text, tags text[])
       WHERE a.kiosk_id = k.kiosk_id AND a.state = 'pending'`,
      [JSON.stringify(rows.map((k) => ({ kiosk_id: k.kiosk_id, group_id: k.group_id, tags: k.tags })))],
    );
    const present = rows.filter((k) => !k.deleted).map((k) => k.kiosk_id);
    const { rows: predictions } = present.length
      ? await tx.query<{ kiosk_id: string; sku: string; summary: string; event_time: Date }>("SELECT kiosk_id, sku, summary, event_time FROM stockouts WHERE kiosk_id = ANY($1::text[]) AND predicted", [present])
      : { rows: [] };
    // The other kinds' conditions (conditions.ts: telemetry, stock, orders, silent failures).
    const held = await heldConditions(tx, present);
    const clears: Clearing[] = [];
    const holds: Holding[] = [];
    for (const k of rows) {
      const kiosk = { kioskId: k.kiosk_id, groupId: k.group_id, tags: k.tags };
      const predicted = predictions.filter((p) => p.kiosk_id === k.kiosk_id);
      for (const rule of live) {
        if (k.deleted) clears.push({ ruleId: rule.ruleId, kioskId: kiosk.kioskId, reason: "kiosk deleted" });
        else if (!matches(rule, kiosk)) clears.push({ ruleId: rule.ruleId, kioskId: kiosk.kioskId, reason: "kiosk no longer selected by the rule" });
        else for (const c of [...conditionsOf(rule, kiosk.kioskId, k, predicted), ...heldFor(rule, held.get(k.kiosk_id))]) holds.push({ rule, kiosk, ...c });
      }
    }
    await clearAll(tx, clears);
    await holdAll(tx, holds);
  }
}

/** Applies one of ai's stock-out events (in the consumer's transaction, with its inbox row). */
export async function applyAiEvent(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  const parsed = aiSubjects.parseStockout(msg.subject);
  if (!parsed) return;
  const e = decodeEvent(StockoutPredictedEventSchema, msg);
  const sku = e.risk?.sku ?? "";
  if (!sku) return;
  const time = e.time ? timestampDate(e.time) : new Date();
  const predicted = parsed.kind === "predicted";
  const probability = e.risk?.stockoutProbability ?? 0;
  const hours = e.risk?.stockoutExpected ? `, expected in ${Math.round(e.risk.stockoutHours)} h` : "";
  const summary = `kiosk ${parsed.kioskId}: product ${sku} may run out before the next visit (probability ${Math.round(probability * 100)} %${hours})`;
  const { rowCount } = await tx.query(
    `INSERT INTO stockouts (kiosk_id, sku, predicted, probability, summary, event_time) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (kiosk_id, sku) DO UPDATE SET predicted = $3, probability = $4, summary = $5, event_time = $6
     WHERE stockouts.event_time < $6`,
    [parsed.kioskId, sku, predicted, probability, summary, time],
  );
  if (!rowCount) return;
  await tx.query("INSERT INTO recent_events (event_time, kiosk_id, kind, detail, summary) VALUES ($1, $2, $3, $4, $5)", [
    time,
    parsed.kioskId,
    predicted ? "stockout_predicted" : "stockout_cleared",
    sku,
    summary,
  ]);
  const kiosk = await kioskLabels(tx, parsed.kioskId);
  for (const rule of await rulesFor(tx, ["stockout_predicted"], kiosk)) {
    if (rule.sku !== "" && rule.sku !== sku) continue;
    if (predicted) await conditionHolds(tx, rule, kiosk, time, summary, sku);
    else await conditionCleared(tx, rule.ruleId, kiosk.kioskId, "stock-out no longer predicted", sku);
  }
}

/** A connection change from link's events. */
interface ConnectionChange {
  kioskId: string;
  connected: boolean;
  time: Date;
  reason: string;
}

function connectionChange(msg: ConsumedMessage): ConnectionChange | undefined {
  const parsed = linkSubjects.parse(msg.subject);
  if (parsed?.kind === "connected") {
    const e = decodeEvent(KioskConnectedEventSchema, msg);
    return { kioskId: parsed.kioskId, connected: true, time: e.time ? timestampDate(e.time) : new Date(), reason: "" };
  }
  if (parsed?.kind === "disconnected") {
    const e = decodeEvent(KioskDisconnectedEventSchema, msg);
    // Replaced: the kiosk is still connected through its newer stream.
    if (e.reason === "replaced") return undefined;
    return { kioskId: parsed.kioskId, connected: false, time: e.time ? timestampDate(e.time) : new Date(), reason: e.reason || "disconnected" };
  }
  return undefined;
}

/**
 * Applies connection changes, at most one per kiosk (a round): keeps every one for dry runs,
 * records those newer than what is known, and, for those, opens (disconnected) or clears (connected) the alerts
 * of the kiosk_offline rules selecting each kiosk — a few statements for any number of kiosks.
 */
async function applyConnections(tx: PoolClient, changes: ConnectionChange[], live: LiveRule[]): Promise<void> {
  if (changes.length === 0) return;
  changes.sort(byKiosk);
  const { rows } = await tx.query<{ kiosk_id: string; group_id: string; tags: string[]; deleted: boolean }>(
    `INSERT INTO kiosks (kiosk_id, connected, connection_time)
     SELECT * FROM unnest($1::text[], $2::boolean[], $3::timestamptz[])
     ON CONFLICT (kiosk_id) DO UPDATE SET connected = EXCLUDED.connected, connection_time = EXCLUDED.connection_time
     WHERE kiosks.connection_time IS NULL OR kiosks.connection_time <= EXCLUDED.connection_time
     RETURNING kiosk_id, group_id, tags, deleted`,
    [changes.map((c) => c.kioskId), changes.map((c) => c.connected), changes.map((c) => c.time)],
  );
  // Every change is history for dry runs, also one older than what is known: link's events
  // arrive in two concurrent batches (and retries), so a kiosk's reconnection can be applied
  // before the disconnection that preceded it; the dry run orders them by time.
  await tx.query("INSERT INTO recent_events (event_time, kiosk_id, kind, detail) SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[])", [
    changes.map((c) => c.time),
    changes.map((c) => c.kioskId),
    changes.map((c) => (c.connected ? "connected" : "disconnected")),
    changes.map((c) => c.reason),
  ]);
  if (rows.length === 0) return;
  const applied = new Map(rows.map((r) => [r.kiosk_id, r]));
  const kept = changes.filter((c) => applied.has(c.kioskId));
  const offline = live.filter((r) => r.kind === "kiosk_offline");
  const clears: Clearing[] = [];
  const holds: Holding[] = [];
  for (const c of kept) {
    const k = applied.get(c.kioskId)!;
    if (k.deleted) continue;
    const kiosk = { kioskId: c.kioskId, groupId: k.group_id, tags: k.tags };
    for (const rule of offline) {
      if (!matches(rule, kiosk)) continue;
      if (c.connected) clears.push({ ruleId: rule.ruleId, kioskId: c.kioskId });
      else holds.push({ rule, kiosk, since: c.time, summary: `kiosk ${c.kioskId} is offline (${c.reason})` });
    }
  }
  await clearAll(tx, clears);
  await holdAll(tx, holds);
}

/**
 * Keeps, for dry runs, the telemetry samples that change what a rule can see (the paper level
 * in whole percent, the printer's fault state); called before the samples are applied, so
 * the kiosks row still holds the previous ones. A sample older than the kiosk's latest (its
 * batch applied after a newer one: link's events come in two concurrent batches) is compared
 * with the sample kept before it in time instead.
 */
async function recordTelemetry(tx: PoolClient, kioskId: string, time: Date, paperPercent: number, fault: boolean): Promise<void> {
  await tx.query(
    `INSERT INTO recent_events (event_time, kiosk_id, kind, paper_percent, printer_fault)
     SELECT $2, $1, 'telemetry', $3, $4 FROM (SELECT 1) one LEFT JOIN kiosks k ON k.kiosk_id = $1 AND k.sample_time IS NOT NULL WHERE CASE
       WHEN k.kiosk_id IS NULL THEN true
       WHEN k.sample_time = $2 THEN false
       WHEN k.sample_time < $2
         THEN NOT (floor(k.paper_percent) IS NOT DISTINCT FROM floor($3::double precision) AND k.printer_fault IS NOT DISTINCT FROM $4)
       ELSE NOT EXISTS (
         SELECT 1 FROM (SELECT paper_percent, printer_fault FROM recent_events WHERE kiosk_id = $1 AND kind = 'telemetry' AND event_time < $2 ORDER BY event_time DESC LIMIT 1) p
         WHERE floor(p.paper_percent) IS NOT DISTINCT FROM floor($3::double precision) AND p.printer_fault IS NOT DISTINCT FROM $4)
     END`,
    [kioskId, time, paperPercent, fault],
  );
}

/**
 * Applies a batch of link's events (in the consumer's transaction, with their inbox rows).
 * Connection changes go set-wise per round (a storm of 10,000 disconnections is a few dozen
 * statements); the other kinds one by one, in order, with the rules read once per batch.
 */
export async function applyLinkEvents(tx: PoolClient, msgs: ConsumedMessage[]): Promise<void> {
  const live = await rules.live(tx, kioskKinds);
  for (const round of rounds(msgs, (m) => linkSubjects.parse(m.subject)?.kioskId ?? "")) {
    const connections: ConnectionChange[] = [];
    const others: ConsumedMessage[] = [];
    for (const msg of round) {
      const kind = linkSubjects.parse(msg.subject)?.kind;
      if (kind === "connected" || kind === "disconnected") {
        const c = connectionChange(msg);
        if (c) connections.push(c);
      } else others.push(msg);
    }
    await applyConnections(tx, connections, live);
    for (const msg of others) await applyLinkEvent(tx, msg, live);
  }
}

/** Applies one link event (in the consumer's transaction, with its inbox row); `live`: the rules, when already read. */
export async function applyLinkEvent(tx: PoolClient, msg: ConsumedMessage, live?: LiveRule[]): Promise<void> {
  const parsed = linkSubjects.parse(msg.subject);
  if (!parsed) return;
  switch (parsed.kind) {
    case "connected":
    case "disconnected": {
      const c = connectionChange(msg);
      if (c) await applyConnections(tx, [c], live ?? (await rules.live(tx, kioskKinds)));
      return;
    }
    case "telemetry": {
      const e = decodeEvent(KioskTelemetryEventSchema, msg);
      const samples = [...(e.batch?.samples ?? [])].filter((s) => s.time).sort((a, b) => timestampDate(a.time!).getTime() - timestampDate(b.time!).getTime());
      const latest = samples.at(-1);
      if (!latest) return;
      const time = timestampDate(latest.time!);
      const fault = latest.printer === DeviceStatus.FAULT;
      await recordTelemetry(tx, parsed.kioskId, time, latest.paperLevelPercent, fault);
      const { rowCount } = await tx.query(
        `INSERT INTO kiosks (kiosk_id, paper_percent, printer_fault, sample_time) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kiosk_id) DO UPDATE SET paper_percent = $2, printer_fault = $3, sample_time = $4
         WHERE kiosks.sample_time IS NULL OR kiosks.sample_time < $4`,
        [parsed.kioskId, latest.paperLevelPercent, fault, time],
      );
      if (!rowCount) return;
      const kiosk = await kioskLabels(tx, parsed.kioskId);
      for (const rule of await rulesFor(tx, ["low_paper", "printer_fault"], kiosk, live)) {
        if (rule.kind === "low_paper") {
          if (latest.paperLevelPercent < (rule.threshold ?? 0))
            await conditionHolds(tx, rule, kiosk, time, `kiosk ${kiosk.kioskId}: paper at ${latest.paperLevelPercent.toFixed(0)} % (below ${rule.threshold} %)`);
          else await conditionCleared(tx, rule.ruleId, kiosk.kioskId);
        } else if (fault) await conditionHolds(tx, rule, kiosk, time, `kiosk ${kiosk.kioskId}: printer fault`);
        else await conditionCleared(tx, rule.ruleId, kiosk.kioskId);
      }
      return;
    }
    default:
      return;
  }
}

// Evaluation: link's events (stream LINK), fleet's kiosk registry events (stream FLEET:
// a kiosk's group and tags) and ai's stock-out predictions (stream AI: ai.stockout.<kiosk>.
// predicted | cleared, per product), each through the runtime's durable consumer, update what
// notifications knows of each kiosk and open or clear the rules' alerts. No other
// service's database is read. Event times decide, so a late event changes nothing newer.
// A label change re-evaluates the kiosk against every rule with what is known of it: a
// rule that now matches opens its alert if its condition holds (since when it began), one
// that no longer matches clears it; pending alerts take the new labels, open ones keep
// those they fired with (their group was named in a notification already).
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { StockoutPredictedEventSchema } from "@adminkiosk/proto/adminkiosk/ai/v1/events_pb";
import { KioskRegistryEventSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/events_pb";
import { KioskConnectedEventSchema, KioskDisconnectedEventSchema, KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { aiSubjects, decodeEvent, fleetSubjects, linkSubjects, type ConsumedMessage, type PoolClient } from "@adminkiosk/runtime";
import { conditionCleared, conditionHolds } from "./alerts.js";
import { kioskKinds, matches, rules, type LiveRule, type RuleKind } from "./rules.js";

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

async function rulesFor(tx: PoolClient, kinds: RuleKind[], kiosk: KioskLabels): Promise<LiveRule[]> {
  if (kiosk.deleted) return [];
  return (await rules.live(tx, kinds)).filter((r) => matches(r, kiosk));
}

/** Applies one of fleet's kiosk registry events (in the consumer's transaction, with its inbox row). */
export async function applyFleetEvent(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  const parsed = fleetSubjects.parseKiosk(msg.subject);
  if (!parsed) return;
  const e = decodeEvent(KioskRegistryEventSchema, msg);
  const time = e.time ? timestampDate(e.time) : new Date();
  const deleted = parsed.kind === "deleted" || e.deleted;
  const { rows } = await tx.query<{ group_id: string; tags: string[]; connected: boolean | null; connection_time: Date | null; paper_percent: number | null; printer_fault: boolean | null; sample_time: Date | null }>(
    `INSERT INTO kiosks (kiosk_id, group_id, tags, labels_time, deleted) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (kiosk_id) DO UPDATE SET group_id = $2, tags = $3, labels_time = $4, deleted = $5
     WHERE kiosks.labels_time IS NULL OR kiosks.labels_time < $4
     RETURNING group_id, tags, connected, connection_time, paper_percent, printer_fault, sample_time`,
    [parsed.kioskId, deleted ? "" : e.groupId, deleted ? [] : [...new Set(e.tags)], time, deleted],
  );
  const k = rows[0];
  if (!k) return;
  const kiosk: KioskLabels = { kioskId: parsed.kioskId, groupId: k.group_id, tags: k.tags, deleted };
  await tx.query("UPDATE alerts SET group_id = $2, tags = $3 WHERE kiosk_id = $1 AND state = 'pending'", [kiosk.kioskId, kiosk.groupId, kiosk.tags]);
  const { rows: predicted } = deleted
    ? { rows: [] }
    : await tx.query<{ sku: string; summary: string; event_time: Date }>("SELECT sku, summary, event_time FROM stockouts WHERE kiosk_id = $1 AND predicted", [kiosk.kioskId]);
  for (const rule of await rules.live(tx, [...kioskKinds, "stockout_predicted"])) {
    if (deleted) {
      await conditionCleared(tx, rule.ruleId, kiosk.kioskId, "kiosk deleted");
      continue;
    }
    if (!matches(rule, kiosk)) {
      await conditionCleared(tx, rule.ruleId, kiosk.kioskId, "kiosk no longer selected by the rule");
      continue;
    }
    if (rule.kind === "kiosk_offline" && k.connected === false && k.connection_time)
      await conditionHolds(tx, rule, kiosk, k.connection_time, `kiosk ${kiosk.kioskId} is offline`);
    else if (rule.kind === "low_paper" && k.paper_percent !== null && k.sample_time && k.paper_percent < (rule.threshold ?? 0))
      await conditionHolds(tx, rule, kiosk, k.sample_time, `kiosk ${kiosk.kioskId}: paper at ${k.paper_percent.toFixed(0)} % (below ${rule.threshold} %)`);
    else if (rule.kind === "printer_fault" && k.printer_fault && k.sample_time) await conditionHolds(tx, rule, kiosk, k.sample_time, `kiosk ${kiosk.kioskId}: printer fault`);
    else if (rule.kind === "stockout_predicted")
      for (const p of predicted) if (rule.sku === "" || rule.sku === p.sku) await conditionHolds(tx, rule, kiosk, p.event_time, p.summary, p.sku);
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
  const kiosk = await kioskLabels(tx, parsed.kioskId);
  for (const rule of await rulesFor(tx, ["stockout_predicted"], kiosk)) {
    if (rule.sku !== "" && rule.sku !== sku) continue;
    if (predicted) await conditionHolds(tx, rule, kiosk, time, summary, sku);
    else await conditionCleared(tx, rule.ruleId, kiosk.kioskId, "stock-out no longer predicted", sku);
  }
}

/** Applies one link event (in the consumer's transaction, with its inbox row). */
export async function applyLinkEvent(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  const parsed = linkSubjects.parse(msg.subject);
  if (!parsed) return;
  switch (parsed.kind) {
    case "connected": {
      const e = decodeEvent(KioskConnectedEventSchema, msg);
      const time = e.time ? timestampDate(e.time) : new Date();
      if (!(await connection(tx, parsed.kioskId, true, time))) return;
      const kiosk = await kioskLabels(tx, parsed.kioskId);
      for (const rule of await rulesFor(tx, ["kiosk_offline"], kiosk)) await conditionCleared(tx, rule.ruleId, kiosk.kioskId);
      return;
    }
    case "disconnected": {
      const e = decodeEvent(KioskDisconnectedEventSchema, msg);
      // Replaced: the kiosk is still connected through its newer stream.
      if (e.reason === "replaced") return;
      const time = e.time ? timestampDate(e.time) : new Date();
      if (!(await connection(tx, parsed.kioskId, false, time))) return;
      const kiosk = await kioskLabels(tx, parsed.kioskId);
      for (const rule of await rulesFor(tx, ["kiosk_offline"], kiosk))
        await conditionHolds(tx, rule, kiosk, time, `kiosk ${kiosk.kioskId} is offline (${e.reason || "disconnected"})`);
      return;
    }
    case "telemetry": {
      const e = decodeEvent(KioskTelemetryEventSchema, msg);
      const samples = [...(e.batch?.samples ?? [])].filter((s) => s.time).sort((a, b) => timestampDate(a.time!).getTime() - timestampDate(b.time!).getTime());
      const latest = samples.at(-1);
      if (!latest) return;
      const time = timestampDate(latest.time!);
      const fault = latest.printer === DeviceStatus.FAULT;
      const { rowCount } = await tx.query(
        `INSERT INTO kiosks (kiosk_id, paper_percent, printer_fault, sample_time) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kiosk_id) DO UPDATE SET paper_percent = $2, printer_fault = $3, sample_time = $4
         WHERE kiosks.sample_time IS NULL OR kiosks.sample_time < $4`,
        [parsed.kioskId, latest.paperLevelPercent, fault, time],
      );
      if (!rowCount) return;
      const kiosk = await kioskLabels(tx, parsed.kioskId);
      for (const rule of await rulesFor(tx, ["low_paper", "printer_fault"], kiosk)) {
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

/** Records a connection change unless a newer one is known; true when it was applied. */
async function connection(tx: PoolClient, kioskId: string, connected: boolean, time: Date): Promise<boolean> {
  const { rowCount } = await tx.query(
    `INSERT INTO kiosks (kiosk_id, connected, connection_time) VALUES ($1, $2, $3)
     ON CONFLICT (kiosk_id) DO UPDATE SET connected = $2, connection_time = $3
     WHERE kiosks.connection_time IS NULL OR kiosks.connection_time <= $3`,
    [kioskId, connected, time],
  );
  return (rowCount ?? 0) > 0;
}

// customers' events (stream CUSTOMERS, through the runtime's durable consumer: one transaction
// per message with its inbox row, so a redelivery sends nothing twice):
//   customers.back_in_stock.<request>.ready — a buyer's "tell me when it is back" (restocked at
//     the kiosk asked at or one in the request's scope, named): one email (or SMS) for the delivery worker, like a buyer's receipt (retries, dead letters, audit); the
//     address is masked once the delivery is done;
//   customers.help.<kiosk>.requested — a call for help: a help_requested alert for each rule
//     selecting the kiosk, at once, with what notifications knows of the kiosk's live state.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { BackInStockReadyEventSchema, HelpRequestedEventSchema } from "@adminkiosk/proto/adminkiosk/customers/v1/events_pb";
import { HelpCaller } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { customersSubjects, decodeEvent, type ConsumedMessage, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { conditionHolds } from "./alerts.js";
import type { NotificationBody } from "./channels.js";
import { kioskOf, recordEvent, rulesSelecting } from "./conditions.js";

export async function applyCustomersEvent(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  const parsed = customersSubjects.parse(msg.subject);
  if (parsed?.kind === "back_in_stock") await backInStockReady(tx, msg);
  else if (parsed?.kind === "help") await helpRequested(tx, msg);
}

/** Where it is back: the kiosk, its address, and how far from the kiosk the buyer asked at when another. */
export function whereBack(e: { kioskId: string; requestedKioskId: string; distanceKm: number; kioskAddress: string }): string {
  const address = e.kioskAddress ? ` (${e.kioskAddress})` : "";
  if (!e.requestedKioskId || e.requestedKioskId === e.kioskId) return `kiosk ${e.kioskId}${address}`;
  const far = e.distanceKm > 0 ? `${e.distanceKm < 10 ? e.distanceKm.toFixed(1) : e.distanceKm.toFixed(0)} km from` : "near";
  return `kiosk ${e.kioskId}${address}, ${far} kiosk ${e.requestedKioskId} where you asked`;
}

/** The message a buyer gets when the product is back. */
export function backInStockText(e: { sku: string; kioskId: string; available: bigint; requestedKioskId: string; distanceKm: number; kioskAddress: string }): string {
  return [
    `Good news: ${e.sku} is back in stock at ${whereBack(e)} (${e.available} available now).`,
    "",
    "You asked us to tell you once. We have now forgotten your address for this request.",
    "",
  ].join("\n");
}

async function backInStockReady(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  const e = decodeEvent(BackInStockReadyEventSchema, msg);
  const [channel, target] = e.email ? ["email", e.email] : e.phone ? ["sms", e.phone] : [undefined, undefined];
  if (!channel || !target) return;
  const text = backInStockText(e);
  const body: NotificationBody = { status: "back_in_stock", ruleId: "", ruleName: "", severity: "", groupId: "", count: 0, lines: [], alertIds: [], text };
  await tx.query(
    `INSERT INTO deliveries (notification_id, rule_id, group_id, channel, target, secret_name, status, alert_count, subject, body, state)
     VALUES (gen_random_uuid(), NULL, '', $1, $2, '', 'back_in_stock', 0, $3, $4, 'pending')`,
    [channel, target, `${e.sku} is back at kiosk ${e.kioskId}`, JSON.stringify(body)],
  );
}

const callers: Record<number, string> = { [HelpCaller.BUYER]: "a buyer", [HelpCaller.TECHNICIAN]: "a technician" };

/** What notifications knows of the kiosk now: its connection, last telemetry and health, from link's events. */
async function liveState(tx: PoolClient, kioskId: string): Promise<string> {
  const { rows } = await tx.query<{ connected: boolean | null; connection_time: Date | null; paper_percent: number | null; printer_fault: boolean | null; sample_time: Date | null; health: string | null }>(
    `SELECT k.connected, k.connection_time, k.paper_percent, k.printer_fault, k.sample_time, h.summary AS health
     FROM kiosks k LEFT JOIN kiosk_health h USING (kiosk_id) WHERE k.kiosk_id = $1`,
    [kioskId],
  );
  const k = rows[0];
  if (!k || k.connected === null) return "live state: not known yet";
  const parts = [k.connected ? `online since ${k.connection_time?.toISOString() ?? "?"}` : `offline since ${k.connection_time?.toISOString() ?? "?"}`];
  if (k.sample_time) parts.push(`last telemetry ${k.sample_time.toISOString()}: paper ${k.paper_percent === null ? "?" : `${k.paper_percent.toFixed(0)} %`}, printer ${k.printer_fault ? "FAULT" : "ok"}`);
  if (k.health) parts.push(`health: ${k.health}`);
  return `live state: ${parts.join("; ")}`;
}

async function helpRequested(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  const e = decodeEvent(HelpRequestedEventSchema, msg);
  if (!e.kioskId) return;
  const time = e.time ? timestampDate(e.time) : new Date();
  const who = callers[e.caller] ?? "someone";
  const summary = `kiosk ${e.kioskId}: help requested by ${who}${e.message ? ` — "${e.message}"` : ""}; ${await liveState(tx, e.kioskId)}`;
  await recordEvent(tx, time, e.kioskId, "help_requested", e.helpRequestId, summary);
  const kiosk = await kioskOf(tx, e.kioskId);
  // Fires at the next sweep (no for-duration); a call while the kiosk's alert is open joins it.
  for (const rule of await rulesSelecting(tx, ["help_requested"], kiosk)) await conditionHolds(tx, rule, kiosk, time, summary);
}

/** Back-in-stock messages that are done (delivered or given up on) keep only a masked address. */
export async function backInStockUpkeep(pool: Pool): Promise<void> {
  await pool.query(
    `UPDATE deliveries SET target = CASE WHEN channel = 'email' THEN regexp_replace(target, '^(.)[^@]*@', '\\1***@') ELSE left(target, 4) || '****' || right(target, 3) END
     WHERE status = 'back_in_stock' AND state <> 'pending' AND target NOT LIKE '%***%'`,
  );
}

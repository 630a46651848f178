// Rule kind service_not_serving: every service process announces its serving status on
// stream OPS (ops.health.<service>, the runtime's health.ts: at each change and as a
// heartbeat). A durable consumer keeps each process's last word (service_instances); the
// condition upkeep (conditions.ts) marks a process whose heartbeat is older than its ttl as
// missing — a process that died cannot say NOT_SERVING — and judges every service again.
// A service is not serving while one of its processes known says so (a required dependency
// fails its probe), is missing with no newer process of the service serving since (its
// restart or replacement), or drained with no other process of the service serving.
// One alert per rule and service (alerts.kiosk_id '', alerts.sku the service).
import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import { ServiceHealthEventSchema } from "@adminkiosk/proto/adminkiosk/ops/v1/health_events_pb";
import { decodeEvent, inTransaction, opsSubjects, type ConsumedMessage, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { clearAll, holdAll } from "./alerts.js";
import { rules, type LiveRule } from "./rules.js";

interface InstanceRow {
  instance: string;
  state: "serving" | "not_serving" | "draining" | "missing";
  failed_probes: string;
  last_seen: Date;
  since: Date | null;
}

const noKiosk = { kioskId: "", groupId: "", tags: [] as string[] };

/** What a not-serving process says of itself, for the alert's summary. */
function describe(r: InstanceRow): string {
  const at = r.last_seen.toISOString().slice(11, 19);
  if (r.state === "missing") return `${r.instance}: no heartbeat since ${at}`;
  if (r.state === "draining") return `${r.instance}: shut down at ${at}`;
  return `${r.instance}: NOT_SERVING${r.failed_probes ? ` (${r.failed_probes})` : ""}`;
}

const summaryOf = (service: string, down: InstanceRow[], total: number) =>
  `service ${service}: ${down.length} of ${total} process${total === 1 ? "" : "es"} not serving (${down
    .slice(0, 3)
    .map(describe)
    .join("; ")}${down.length > 3 ? `; +${down.length - 3} more` : ""})`;

/**
 * Judges one service (in tx, one judge per service at a time): forgets the processes a newer
 * one replaced, and opens or clears the alert of each service_not_serving rule watching it.
 */
export async function judgeService(tx: PoolClient, service: string, live?: LiveRule[]): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('notifications.service_health'), hashtext($1))", [service]);
  // Restarted or replaced: a missing or drained process once a newer process serves; drained, once any other serves.
  await tx.query(
    `DELETE FROM service_instances o WHERE o.service = $1 AND o.state IN ('missing', 'draining') AND EXISTS (
       SELECT 1 FROM service_instances n WHERE n.service = $1 AND n.state = 'serving' AND n.instance <> o.instance
         AND (o.state = 'draining' OR n.started_at > o.last_seen))`,
    [service],
  );
  const { rows } = await tx.query<InstanceRow>(
    "SELECT instance, state, failed_probes, last_seen, since FROM service_instances WHERE service = $1 ORDER BY instance",
    [service],
  );
  const down = rows.filter((r) => r.state !== "serving");
  await recordChange(tx, service, down, rows.length);
  const watching = (live ?? (await rules.live(tx, ["service_not_serving"]))).filter((r) => r.kind === "service_not_serving" && (r.sku === "" || r.sku === service));
  if (watching.length === 0) return;
  if (down.length === 0) {
    await clearAll(
      tx,
      watching.map((r) => ({ ruleId: r.ruleId, kioskId: "", sku: service, reason: "every process of the service serves" })),
    );
    return;
  }
  const since = new Date(Math.min(...down.map((r) => (r.since ?? r.last_seen).getTime())));
  const summary = summaryOf(service, down, rows.length);
  await holdAll(
    tx,
    watching.map((rule) => ({ rule, kiosk: noKiosk, since, summary, sku: service })),
  );
}

/** Keeps, for dry runs, the service's condition when it changed (service_conditions: as last judged; recent_events: the change). */
async function recordChange(tx: PoolClient, service: string, down: InstanceRow[], total: number): Promise<void> {
  const isDown = down.length > 0;
  const since = isDown ? new Date(Math.min(...down.map((r) => (r.since ?? r.last_seen).getTime()))) : new Date();
  const { rows } = await tx.query<{ inserted: boolean }>(
    `INSERT INTO service_conditions (service, down, since) VALUES ($1, $2, $3)
     ON CONFLICT (service) DO UPDATE SET down = EXCLUDED.down, since = EXCLUDED.since WHERE service_conditions.down <> EXCLUDED.down
     RETURNING (xmax = 0) AS inserted`,
    [service, isDown, since],
  );
  // Changed (a service first heard serving is no change).
  if (rows[0] && (isDown || !rows[0].inserted))
    await tx.query("INSERT INTO recent_events (event_time, kiosk_id, kind, detail, summary) VALUES ($1, '', $2, $3, $4)", [
      since,
      isDown ? "service_down" : "service_up",
      service,
      isDown ? summaryOf(service, down, total) : "",
    ]);
}

/** Applies one ServiceHealthEvent (in the consumer's transaction, with its inbox row). */
export async function applyHealthEvent(tx: PoolClient, msg: ConsumedMessage): Promise<void> {
  if (!opsSubjects.parseHealth(msg.subject)) return;
  const e = decodeEvent(ServiceHealthEventSchema, msg);
  if (!e.service || !e.instance || !e.time) return;
  const time = timestampDate(e.time);
  const started = e.startTime ? timestampDate(e.startTime) : time;
  const ttlMs = e.ttl ? durationMs(e.ttl) : 30_000;
  const state = e.serving ? "serving" : e.draining ? "draining" : "not_serving";
  const failed = Object.entries(e.failedProbes)
    .slice(0, 5)
    .map(([name, error]) => `${name}: ${error.slice(0, 120)}`)
    .join("; ");
  const { rowCount } = await tx.query(
    `INSERT INTO service_instances (service, instance, state, failed_probes, started_at, last_seen, expires_at, since)
     VALUES ($1, $2, $3::text, $4, $5::timestamptz, $6::timestamptz, $6::timestamptz + make_interval(secs => $7::double precision / 1000), CASE WHEN $3::text = 'serving' THEN NULL ELSE $6::timestamptz END)
     ON CONFLICT (service, instance) DO UPDATE SET state = EXCLUDED.state, failed_probes = EXCLUDED.failed_probes, last_seen = EXCLUDED.last_seen,
       expires_at = EXCLUDED.expires_at,
       since = CASE WHEN EXCLUDED.state = 'serving' THEN NULL ELSE coalesce(service_instances.since, EXCLUDED.since) END
     WHERE service_instances.last_seen < EXCLUDED.last_seen`,
    [e.service.slice(0, 64), e.instance.slice(0, 200), state, failed, started, time, ttlMs],
  );
  if (rowCount) await judgeService(tx, e.service.slice(0, 64));
}

/**
 * What time alone changes (the condition upkeep, every pass): processes silent past their ttl
 * become missing, and every service known is judged again (a rule created since alerts from
 * what is known; a few dozen services, a statement or three each).
 */
export async function serviceHealthUpkeep(pool: Pool): Promise<void> {
  await pool.query(
    "UPDATE service_instances SET state = 'missing', since = coalesce(since, expires_at) WHERE state IN ('serving', 'not_serving') AND expires_at < now()",
  );
  const { rows } = await pool.query<{ service: string }>("SELECT DISTINCT service FROM service_instances");
  if (rows.length === 0) return;
  const live = await rules.live(pool, ["service_not_serving"]);
  for (const { service } of rows) await inTransaction(pool, (tx) => judgeService(tx, service, live));
}

// Sends what a connected kiosk is owed — queued commands, in order, and a newer
// desired configuration — to the link replica holding its stream: core NATS
// request/reply on `kiosk.<id>.deliver` (adminkiosk.link.v1.DeliverRequest), which
// only the replica holding that stream subscribes to. PostgreSQL keeps the truth:
// a command is resent until the kiosk acks it (the kiosk dedupes by command id) and
// never after it expires, so a lost message, a dead link replica or a fleet restart
// only delays delivery.
//
// Work is queued per kiosk and done in batches (one query for many kiosks, requests
// in parallel across kiosks and in order within one), so a broadcast to a whole fleet
// costs a few queries per few hundred kiosks. A periodic sweep expires commands past
// their TTL and re-kicks kiosks with work left over (resend after RESEND_AFTER_MS).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { CommandActionSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { DeliverReplySchema, DeliverRequestSchema, type DeliverRequest } from "@adminkiosk/proto/adminkiosk/link/v1/delivery_pb";
import { CommandDeliverySchema } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { linkSubjects, type Logger, type NatsConnection, type Pool } from "@adminkiosk/runtime";
import { Counter, type Registry } from "prom-client";
import type { ChangeFeed } from "./changes.js";
import { desiredConfigs } from "./desired-config.js";
import { commandStatesFor, openCommandStates, sqlNextState, sqlStates } from "./states.js";

export interface DispatcherOptions {
  pool: Pool;
  nats: Promise<NatsConnection>;
  changes: ChangeFeed;
  log: Logger;
  /** A sent command not acked after this long is sent again (the kiosk dedupes). */
  resendAfterMs: number;
  sweepMs: number;
  /** How long to wait for the link replica's reply. */
  deliverTimeoutMs: number;
  /** Kiosks pumped per batch. */
  batchSize?: number;
  /** Batches in flight at once. */
  parallelBatches?: number;
}

export interface Dispatcher {
  /** Something may be owed to these kiosks; `resend` also resends sent, unacked commands at once (a reconnect). */
  kick(kioskIds: Iterable<string>, resend?: boolean): void;
  /** Attaches the dispatcher's counters to a metrics registry. */
  registerMetrics(registry: Registry): void;
  stop(): Promise<void>;
}

interface PendingCommand {
  command_id: string;
  kiosk_id: string;
  action: Buffer;
  expire_at: Date;
}

export function startDispatcher(o: DispatcherOptions): Dispatcher {
  const batchSize = o.batchSize ?? 500;
  const parallel = o.parallelBatches ?? 4;
  const waiting = new Map<string, boolean>(); // kiosk → resend
  const inFlight = new Set<string>();
  const again = new Map<string, boolean>();
  let running = 0;
  let stopped = false;
  const idle: (() => void)[] = [];
  const delivered = new Counter({ name: "fleet_deliveries_total", help: "Commands and configurations handed to a link replica, by kind and result.", labelNames: ["kind", "result"], registers: [] });

  const kick = (ids: Iterable<string>, resend = false) => {
    for (const id of ids) {
      if (inFlight.has(id)) again.set(id, (again.get(id) ?? false) || resend);
      else waiting.set(id, (waiting.get(id) ?? false) || resend);
    }
    schedule();
  };

  function schedule() {
    while (!stopped && running < parallel && waiting.size > 0) {
      const batch = new Map<string, boolean>();
      for (const [id, resend] of waiting) {
        waiting.delete(id);
        inFlight.add(id);
        batch.set(id, resend);
        if (batch.size >= batchSize) break;
      }
      running++;
      pumpBatch(batch)
        .catch((err: unknown) => o.log.warn({ err, kiosks: batch.size }, "delivery batch failed; the sweep retries it"))
        .finally(() => {
          running--;
          for (const id of batch.keys()) {
            inFlight.delete(id);
            const resend = again.get(id);
            if (resend !== undefined) {
              again.delete(id);
              waiting.set(id, (waiting.get(id) ?? false) || resend);
            }
          }
          if (running === 0 && waiting.size === 0) idle.splice(0).forEach((f) => f());
          schedule();
        });
    }
  }

  async function request(nc: NatsConnection, kioskId: string, message: MessageInitShape<typeof DeliverRequestSchema>, kind: string): Promise<boolean> {
    try {
      const reply = await nc.request(linkSubjects.deliver(kioskId), toBinary(DeliverRequestSchema, create(DeliverRequestSchema, message)), { timeout: o.deliverTimeoutMs });
      const r = fromBinary(DeliverReplySchema, reply.data);
      delivered.inc({ kind, result: r.accepted ? "accepted" : r.reason || "refused" });
      return r.accepted;
    } catch (err) {
      // No responders: the kiosk is not connected anywhere (its stream ended). Timeout:
      // the replica holds another stream for it, or is stuck. Either way, try later.
      const code = (err as { code?: string }).code;
      delivered.inc({ kind, result: code === "503" || /no responders/i.test(String(err)) ? "offline" : "timeout" });
      return false;
    }
  }

  async function pumpBatch(batch: Map<string, boolean>) {
    const nc = await o.nats;
    const ids = [...batch.keys()];
    const { rows: online } = await o.pool.query<{ kiosk_id: string; session_id: string; config_version: string; config_pushed_version: string; config_stale: boolean; reported_config_version: string; reported_config_failed_version: string }>(
      `SELECT kiosk_id, session_id, config_version, config_pushed_version, reported_config_version, reported_config_failed_version,
              (config_pushed_at IS NULL OR config_pushed_at < now() - make_interval(secs => $2::float8 / 1000)) AS config_stale
       FROM kiosks WHERE kiosk_id = ANY($1) AND connected AND session_id IS NOT NULL AND deleted_at IS NULL`,
      [ids, o.resendAfterMs],
    );
    if (online.length === 0) return;
    const resendIds = online.filter((k) => batch.get(k.kiosk_id)).map((k) => k.kiosk_id);
    const { rows: commands } = await o.pool.query<PendingCommand>(
      // Acked but unfinished ones too: a result lost with a dying stream is repeated by
      // the kiosk when it sees the command again (it does not run it again).
      `SELECT command_id, kiosk_id, action, expire_at FROM commands
       WHERE kiosk_id = ANY($1) AND state IN (${sqlStates(openCommandStates)}) AND expire_at > now()
         AND (state = 'queued' OR kiosk_id = ANY($2) OR sent_at < now() - make_interval(secs => $3::float8 / 1000))
       ORDER BY kiosk_id, seq`,
      [online.map((k) => k.kiosk_id), resendIds, o.resendAfterMs],
    );
    const byKiosk = new Map<string, PendingCommand[]>();
    for (const c of commands) {
      const list = byKiosk.get(c.kiosk_id) ?? [];
      list.push(c);
      byKiosk.set(c.kiosk_id, list);
    }
    const configDue = online.filter((k) => {
      const desired = BigInt(k.config_version);
      // A version the kiosk said it cannot apply is not pushed again; a newer one is.
      if (desired === BigInt(k.reported_config_failed_version)) return false;
      return desired > BigInt(k.reported_config_version) && (BigInt(k.config_pushed_version) < desired || k.config_stale || batch.get(k.kiosk_id));
    });
    const configs = configDue.length ? await desiredConfigs(o.pool, configDue.map((k) => k.kiosk_id)) : new Map();

    const sent: string[] = [];
    const pushed: { kioskId: string; version: string }[] = [];
    await Promise.all(
      online.map(async (k) => {
        // In order: a refused delivery stops this kiosk's turn (the rest would overtake it).
        for (const c of byKiosk.get(k.kiosk_id) ?? []) {
          const command: DeliverRequest["body"] = {
            case: "command",
            value: create(CommandDeliverySchema, { commandId: c.command_id, action: fromBinary(CommandActionSchema, c.action), expireTime: timestampFromDate(c.expire_at) }),
          };
          if (!(await request(nc, k.kiosk_id, { sessionId: k.session_id, body: command }, "command"))) return;
          sent.push(c.command_id);
        }
        const desired = configs.get(k.kiosk_id);
        if (desired) {
          const ok = await request(nc, k.kiosk_id, { sessionId: k.session_id, body: { case: "desiredConfig", value: { version: desired.version, config: desired.config } } }, "config");
          if (ok) pushed.push({ kioskId: k.kiosk_id, version: String(desired.version) });
        }
      }),
    );
    if (sent.length) {
      const { rows } = await o.pool.query<{ command_id: string; kiosk_id: string }>(
        `UPDATE commands SET state = ${sqlNextState("deliver")}, sent_at = now(), attempts = attempts + 1
         WHERE command_id = ANY($1) AND state IN (${sqlStates(commandStatesFor("deliver"))}) RETURNING command_id, kiosk_id`,
        [sent],
      );
      rows.forEach((r) => o.changes.publish(r.kiosk_id, "command", r.command_id));
    }
    if (pushed.length) {
      await o.pool.query(
        `UPDATE kiosks k SET config_pushed_version = GREATEST(k.config_pushed_version, p.version), config_pushed_at = now()
         FROM unnest($1::text[], $2::bigint[]) AS p(kiosk_id, version) WHERE k.kiosk_id = p.kiosk_id`,
        [pushed.map((p) => p.kioskId), pushed.map((p) => p.version)],
      );
    }
  }

  async function sweep() {
    const { rows: expired } = await o.pool.query<{ command_id: string; kiosk_id: string }>(
      `UPDATE commands SET state = 'expired', finished_at = now()
       WHERE state IN (${sqlStates(commandStatesFor("expire"))}) AND expire_at <= now() RETURNING command_id, kiosk_id`,
    );
    expired.forEach((r) => o.changes.publish(r.kiosk_id, "command", r.command_id));
    // Kiosks online with work left: commands not sent (a delivery that failed) or not
    // acked in time, and configuration not applied.
    const { rows } = await o.pool.query<{ kiosk_id: string }>(
      `SELECT DISTINCT c.kiosk_id FROM commands c JOIN kiosks k USING (kiosk_id)
       WHERE k.connected AND c.state IN (${sqlStates(openCommandStates)}) AND c.expire_at > now()
         AND (c.state = 'queued' AND c.created_at < now() - interval '1 second'
              OR c.sent_at < now() - make_interval(secs => $1::float8 / 1000))
       UNION
       SELECT kiosk_id FROM kiosks
       WHERE connected AND deleted_at IS NULL AND config_version > reported_config_version AND config_version <> reported_config_failed_version
         AND (config_pushed_version < config_version OR config_pushed_at < now() - make_interval(secs => $1::float8 / 1000))
       LIMIT 50000`,
      [o.resendAfterMs],
    );
    if (rows.length) kick(rows.map((r) => r.kiosk_id));
  }

  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping || stopped) return;
    sweeping = true;
    sweep()
      .catch((err: unknown) => o.log.warn({ err }, "command sweep failed"))
      .finally(() => (sweeping = false));
  }, o.sweepMs);
  timer.unref();

  return {
    kick,
    registerMetrics(registry) {
      registry.registerMetric(delivered);
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      if (running > 0) await Promise.race([new Promise<void>((r) => idle.push(r)), new Promise((r) => setTimeout(r, 3_000))]);
    },
  };
}

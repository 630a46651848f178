// Kiosks' telemetry into ai: link's events (stream LINK, the runtime's durable consumer in
// batches: connections, disconnections and telemetry samples) fold into each kiosk's bounded
// state (maintenance.ts) in kiosk_telemetry — never fleet's tables. Whenever a kiosk's
// 15-minute bucket closes, a device changes status or a roll is replaced, its maintenance risk
// is evaluated again; an item that becomes due (stops being due) is published as
// ai.maintenance.<kiosk>.due (.cleared) through the outbox in the same transaction — from fresh
// telemetry only (the newest sample within AI_TELEMETRY_STALE_SECONDS), so a replayed backlog
// does not fire and clear states long past. A batch
// reads and writes each kiosk's row once, whatever number of its messages it holds.
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { MaintenanceDueEventSchema } from "@adminkiosk/proto/adminkiosk/ai/v1/maintenance_events_pb";
import { MaintenanceItem, MaintenanceRiskSchema, type MaintenanceRisk } from "@adminkiosk/proto/adminkiosk/ai/v1/maintenance_pb";
import { KioskConnectedEventSchema, KioskDisconnectedEventSchema, KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import {
  aiSubjects,
  decodeEvent,
  enqueueEvents,
  linkSubjects,
  startConsumer,
  type ConsumedMessage,
  type DurableConsumer,
  type Logger,
  type NatsConnection,
  type Pool,
  type PoolClient,
} from "@adminkiosk/runtime";
import { applyConnection, applySample, emptyState, items, riskOf, type Item, type KioskState, type Risk, type Thresholds } from "./maintenance.js";

const hourMs = 3_600_000;

export const maintenanceItems: Record<Item, MaintenanceItem> = {
  paper: MaintenanceItem.PAPER,
  printer: MaintenanceItem.PRINTER,
  scanner: MaintenanceItem.SCANNER,
  temperature: MaintenanceItem.TEMPERATURE,
};

/** The contract's MaintenanceRisk; `online` and the paper-out hours as of `nowMs`. */
export function toMaintenanceRisk(kioskId: string, r: Risk, online: boolean, nowMs: number): MaintenanceRisk {
  const outAt = Number.isFinite(r.paperOutHours) ? r.sampleTime + r.paperOutHours * hourMs : undefined;
  return create(MaintenanceRiskSchema, {
    kioskId,
    paperLevelPercent: r.paperLevel,
    paperRatePercentPerHour: r.paperRate,
    paperOutExpected: outAt !== undefined,
    paperOutHours: outAt !== undefined ? Math.max(0, (outAt - nowMs) / hourMs) : 0,
    paperOutTime: outAt !== undefined ? timestampFromMs(Math.round(outAt)) : undefined,
    printerFaultProbability: r.printerFault,
    scannerFaultProbability: r.scannerFault,
    printerDegradedShare: r.printerDegraded,
    scannerDegradedShare: r.scannerDegraded,
    temperatureCelsius: r.temperature,
    temperatureBaselineCelsius: r.temperatureBaseline,
    temperatureDriftCelsius: r.temperatureDrift,
    temperatureTrendCelsiusPerDay: r.temperatureTrendPerDay,
    due: r.due.map((i) => maintenanceItems[i]),
    sampleTime: timestampFromMs(r.sampleTime),
    online,
  });
}

interface Row {
  kiosk_id: string;
  state: KioskState;
  due: string[];
  risk: Risk | null;
}

export interface TelemetryConsumerOptions {
  pool: Pool;
  nats: NatsConnection | Promise<NatsConnection>;
  log: Logger;
  durable: string;
  since?: Date;
  thresholds: Thresholds;
  /** A kiosk is online while connected and its last sample is younger than this. */
  staleMs: number;
}

export function startTelemetryConsumer(o: TelemetryConsumerOptions): DurableConsumer {
  async function applyBatch(tx: PoolClient, msgs: ConsumedMessage[]): Promise<void> {
    // Decode first (a message that does not decode is dead-lettered by the runtime, alone).
    type Change = { kind: "connection"; connected: boolean; time: number } | { kind: "telemetry"; samples: Parameters<typeof applySample>[1][] };
    const byKiosk = new Map<string, Change[]>();
    for (const msg of msgs) {
      const parsed = linkSubjects.parse(msg.subject);
      if (!parsed) continue;
      let change: Change | undefined;
      if (parsed.kind === "connected") {
        const e = decodeEvent(KioskConnectedEventSchema, msg);
        change = { kind: "connection", connected: true, time: e.time ? timestampDate(e.time).getTime() : Date.now() };
      } else if (parsed.kind === "disconnected") {
        const e = decodeEvent(KioskDisconnectedEventSchema, msg);
        // A replaced stream's kiosk is still connected through its newer stream.
        if (e.reason === "replaced") continue;
        change = { kind: "connection", connected: false, time: e.time ? timestampDate(e.time).getTime() : Date.now() };
      } else if (parsed.kind === "telemetry") {
        const e = decodeEvent(KioskTelemetryEventSchema, msg);
        const received = e.receiveTime ? timestampDate(e.receiveTime).getTime() : Date.now();
        const samples = (e.batch?.samples ?? [])
          .map((s) => ({
            time: s.time ? timestampDate(s.time).getTime() : received,
            paper: s.paperLevelPercent,
            temperature: s.temperatureCelsius,
            printer: s.printer,
            scanner: s.scanner,
            errors: s.errors.length,
          }))
          // Samples from the future (a kiosk's clock ahead) would hold every later one back.
          .filter((s) => s.time <= received + 60_000)
          .sort((a, b) => a.time - b.time);
        change = { kind: "telemetry", samples };
      }
      if (!change) continue;
      const list = byKiosk.get(parsed.kioskId) ?? [];
      list.push(change);
      byKiosk.set(parsed.kioskId, list);
    }
    if (byKiosk.size === 0) return;
    const ids = [...byKiosk.keys()];
    const { rows } = await tx.query<Row>("SELECT kiosk_id, state, due, risk FROM kiosk_telemetry WHERE kiosk_id = ANY($1) FOR UPDATE", [ids]);
    const stored = new Map(rows.map((r) => [r.kiosk_id, r]));
    const out: { id: string; state: KioskState; due: Item[]; risk: Risk | null }[] = [];
    const events: { subject: string; message: ReturnType<typeof create<typeof MaintenanceDueEventSchema>> }[] = [];
    for (const [kioskId, changes] of byKiosk) {
      const row = stored.get(kioskId);
      const s = row?.state ?? emptyState();
      const before = { bucket: s.open?.start, roll: s.paperT.length, printer: s.last?.printer, scanner: s.last?.scanner };
      for (const c of changes) {
        if (c.kind === "connection") applyConnection(s, c.connected, c.time);
        else for (const x of c.samples) applySample(s, x);
      }
      const wasDue = (row?.due ?? []) as Item[];
      let risk = row?.risk ?? null;
      // Evaluate when something the risk depends on moved: a bucket closed, a roll was
      // replaced, a device changed status (or nothing was evaluated yet).
      const moved = !risk || s.open?.start !== before.bucket || s.paperT.length < before.roll || s.last?.printer !== before.printer || s.last?.scanner !== before.scanner;
      let due = wasDue;
      if (moved && s.last) {
        risk = riskOf(s, o.thresholds, wasDue) ?? null;
        // Only fresh telemetry moves what is due: a backlog (ai catching up after downtime, a
        // kiosk flushing hours of samples) does not fire and clear states long past; the
        // crossing is published once the newest sample is recent.
        const fresh = s.last.time > Date.now() - o.staleMs;
        if (risk && !fresh) risk = { ...risk, due: wasDue };
        due = risk?.due ?? [];
        for (const item of items) {
          const now = due.includes(item);
          if (now === wasDue.includes(item)) continue;
          const online = s.connected && fresh;
          events.push({
            subject: now ? aiSubjects.maintenanceDue(kioskId) : aiSubjects.maintenanceCleared(kioskId),
            message: create(MaintenanceDueEventSchema, { risk: toMaintenanceRisk(kioskId, risk!, online, Date.now()), item: maintenanceItems[item], time: timestampFromMs(Date.now()) }),
          });
        }
      }
      out.push({ id: kioskId, state: s, due, risk });
    }
    await tx.query(
      `INSERT INTO kiosk_telemetry (kiosk_id, state, last_sample_at, connected, healthy_since, risk, due, paper_out_at, updated_at)
       SELECT u.id, u.state, u.last_at, u.connected, u.healthy_since, u.risk, string_to_array(u.due, ','), u.out_at, now()
       FROM unnest($1::text[], $2::jsonb[], $3::timestamptz[], $4::boolean[], $5::timestamptz[], $6::jsonb[], $7::text[], $8::timestamptz[])
         AS u(id, state, last_at, connected, healthy_since, risk, due, out_at)
       ON CONFLICT (kiosk_id) DO UPDATE SET state = EXCLUDED.state, last_sample_at = EXCLUDED.last_sample_at, connected = EXCLUDED.connected,
         healthy_since = EXCLUDED.healthy_since, risk = EXCLUDED.risk, due = EXCLUDED.due, paper_out_at = EXCLUDED.paper_out_at, updated_at = now()`,
      [
        out.map((r) => r.id),
        out.map((r) => JSON.stringify(r.state)),
        out.map((r) => (r.state.last ? new Date(r.state.last.time) : null)),
        out.map((r) => r.state.connected),
        out.map((r) => (r.state.healthySince !== null ? new Date(r.state.healthySince) : null)),
        out.map((r) => (r.risk ? JSON.stringify(r.risk) : null)),
        out.map((r) => r.due.join(",")),
        out.map((r) => (r.risk && Number.isFinite(r.risk.paperOutHours) ? new Date(r.risk.sampleTime + r.risk.paperOutHours * hourMs) : null)),
      ],
    );
    await enqueueEvents(tx, MaintenanceDueEventSchema, events);
  }

  return startConsumer({
    pool: o.pool,
    nats: o.nats,
    log: o.log,
    // link creates the stream; until it has, the consumer retries (logged once).
    stream: linkSubjects.stream.name,
    durable: o.durable,
    filter: linkSubjects.allKioskEvents,
    since: o.since,
    ackWaitMs: 10_000,
    batchSize: 500,
    applyBatch,
  });
}

export interface TelemetryRow {
  kioskId: string;
  risk: Risk | null;
  online: boolean;
  connected: boolean;
  lastSampleAt: Date | null;
  healthySince: Date | null;
}

export const kioskTelemetry = {
  /** Kiosks by urgency (most items due, then the soonest paper-out), a page at a time. */
  async page(db: Pool, o: { kioskId?: string; dueOnly: boolean; offset: number; limit: number; staleMs: number }): Promise<{ rows: TelemetryRow[]; total: number }> {
    const where = `WHERE risk IS NOT NULL AND ($1::text IS NULL OR kiosk_id = $1) AND (NOT $2 OR cardinality(due) > 0)`;
    const { rows } = await db.query<{ kiosk_id: string; risk: Risk; connected: boolean; last_sample_at: Date | null; healthy_since: Date | null; online: boolean }>(
      `SELECT kiosk_id, risk, connected, last_sample_at, healthy_since, (connected AND last_sample_at > now() - make_interval(secs => $5)) AS online
       FROM kiosk_telemetry ${where} ORDER BY cardinality(due) DESC, paper_out_at ASC NULLS LAST, kiosk_id LIMIT $3 OFFSET $4`,
      [o.kioskId ?? null, o.dueOnly, o.limit, o.offset, o.staleMs / 1000],
    );
    const { rows: count } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM kiosk_telemetry ${where}`, [o.kioskId ?? null, o.dueOnly]);
    return {
      rows: rows.map((r) => ({ kioskId: r.kiosk_id, risk: r.risk, online: r.online, connected: r.connected, lastSampleAt: r.last_sample_at, healthySince: r.healthy_since })),
      total: count[0]!.n,
    };
  },
  /** Kiosks online (connected, a sample within staleMs) and healthy, with the start of their healthy stretch. */
  async healthy(db: Pool | PoolClient, staleMs: number, nowMs: number): Promise<Map<string, Date>> {
    const { rows } = await db.query<{ kiosk_id: string; healthy_since: Date }>(
      `SELECT kiosk_id, healthy_since FROM kiosk_telemetry WHERE connected AND healthy_since IS NOT NULL AND last_sample_at > $1`,
      [new Date(nowMs - staleMs)],
    );
    return new Map(rows.map((r) => [r.kiosk_id, r.healthy_since]));
  },
};

// The live views. A watcher gets a snapshot, then what changed, read from PostgreSQL
// when a change notice arrives (changes.ts). WatchFleet coalesces to at most one
// message a second, and every fleet-wide summary is computed at most once a second
// per replica however many admins watch.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { KioskStatus, type KioskSchema, type WatchFleetResponseSchema, type WatchKioskResponseSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { requireKioskId, type Pool } from "@adminkiosk/runtime";
import type { ChangeFeed, Change } from "./changes.js";
import { commandById, toCommand } from "./commands.js";
import { kioskConfig } from "./desired-config.js";
import { isAlerting, thresholdsMessage } from "./kiosk-rules.js";
import { fleetSummary, kiosks, type FleetSummaryRow, type KioskRow } from "./store.js";

export function statusOf(row: KioskRow): KioskStatus {
  if (row.connected) return isAlerting(row.state) ? KioskStatus.ALERTING : KioskStatus.ONLINE;
  return row.last_seen_at ? KioskStatus.OFFLINE : KioskStatus.PROVISIONED;
}

export function toKiosk(row: KioskRow): MessageInitShape<typeof KioskSchema> {
  return {
    kioskId: row.kiosk_id,
    name: row.name,
    location: row.latitude === null || row.longitude === null ? undefined : { latitude: row.latitude, longitude: row.longitude, address: row.address },
    timezone: row.timezone,
    tags: row.tags,
    groupId: row.group_id,
    hardwareModel: row.hardware_model,
    firmwareVersion: row.firmware_version,
    appVersion: row.app_version,
    status: statusOf(row),
    lastSeenTime: row.last_seen_at ? timestampFromDate(row.last_seen_at) : undefined,
    state:
      row.state && row.state_sampled_at
        ? { ...row.state, cashLevelMinor: BigInt(row.state.cashLevelMinor), sampleTime: timestampFromDate(row.state_sampled_at) }
        : undefined,
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
  };
}

const toSummary = (s: FleetSummaryRow) => ({
  total: s.total,
  online: s.online,
  offline: s.offline,
  alerting: s.alerting,
  provisioned: s.provisioned,
  lowPaper: s.low_paper,
  thresholds: thresholdsMessage(),
});

const maxChangedPerMessage = 500;

/** Resolves after `ms`, or at once when the call is aborted. */
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

export function createWatches(pool: Pool, changes: ChangeFeed, options: { refreshMs?: number } = {}) {
  const refreshMs = options.refreshMs ?? 15_000;
  let cached: { at: number; value: Promise<FleetSummaryRow> } | undefined;
  const summary = () => {
    if (!cached || Date.now() - cached.at >= 1_000) {
      const value = fleetSummary(pool);
      cached = { at: Date.now(), value };
      value.catch(() => (cached = undefined));
    }
    return cached.value;
  };

  async function* watchFleet(_req: unknown, ctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof WatchFleetResponseSchema>> {
    const changed = new Set<string>();
    let wake: (() => void) | undefined;
    const off = changes.onAny((c) => {
      if (c.kind !== "kiosk") return;
      changed.add(c.kioskId);
      wake?.();
    });
    try {
      yield { summary: toSummary(await summary()) };
      while (!ctx.signal.aborted) {
        const sent = Date.now();
        if (changed.size === 0) {
          await Promise.race([new Promise<void>((r) => (wake = r)), sleep(refreshMs, ctx.signal)]);
          wake = undefined;
        }
        // At most one message a second: let changes gather.
        await sleep(Math.max(0, 1_000 - (Date.now() - sent)), ctx.signal);
        if (ctx.signal.aborted) return;
        const ids = [...changed].slice(0, maxChangedPerMessage);
        const truncated = changed.size > maxChangedPerMessage;
        changed.clear();
        const rows = ids.length ? await kiosks.byIds(pool, ids) : [];
        yield {
          summary: toSummary(await summary()),
          changed: rows.filter((r) => !r.deleted_at).map(toKiosk),
          removedKioskIds: rows.filter((r) => r.deleted_at).map((r) => r.kiosk_id),
          changesTruncated: truncated,
        };
      }
    } finally {
      off();
    }
  }

  async function* watchKiosk(req: { kioskId: string }, ctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof WatchKioskResponseSchema>> {
    const kioskId = requireKioskId("kiosk_id", req.kioskId);
    const pending = new Map<string, Change>();
    let wake: (() => void) | undefined;
    const off = changes.onKiosk(kioskId, (c) => {
      pending.set(`${c.kind}:${c.id}`, c);
      wake?.();
    });
    const gone = () => new ConnectError(`kiosk ${kioskId} not found`, Code.NotFound);
    try {
      const row = await kiosks.byId(pool, kioskId);
      if (!row) throw gone();
      yield { event: { case: "kiosk", value: toKiosk(row) } };
      const config = await kioskConfig(pool, kioskId);
      if (config) yield { event: { case: "config", value: config } };
      while (!ctx.signal.aborted) {
        if (pending.size === 0) {
          // Quiet: send the kiosk again now and then, which also keeps idle proxies from closing the stream.
          const idle = sleep(refreshMs * 2, ctx.signal).then(() => "idle" as const);
          const result = await Promise.race([new Promise<"change">((r) => (wake = () => r("change"))), idle]);
          wake = undefined;
          if (result === "idle" && pending.size === 0) pending.set("kiosk:", { kioskId, kind: "kiosk", id: "" });
        }
        if (ctx.signal.aborted) return;
        const batch = [...pending.values()];
        pending.clear();
        for (const c of batch) {
          if (c.kind === "kiosk") {
            const r = await kiosks.byId(pool, kioskId);
            if (!r) throw gone();
            yield { event: { case: "kiosk", value: toKiosk(r) } };
          } else if (c.kind === "command") {
            const command = await commandById(pool, c.id);
            if (command && command.kiosk_id === kioskId) yield { event: { case: "command", value: toCommand(command) } };
          } else {
            const cfg = await kioskConfig(pool, kioskId);
            if (cfg) yield { event: { case: "config", value: cfg } };
          }
        }
      }
    } finally {
      off();
    }
  }

  return { watchFleet, watchKiosk, summary: async () => toSummary(await summary()) };
}

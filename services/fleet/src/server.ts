// fleet's RPC handlers: validate, call the store, map to the contract. Who may call
// each RPC is declared in proto/ and enforced by the runtime.
import { Code, ConnectError, type Client, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { AuditService } from "@adminkiosk/proto/adminkiosk/fleet/v1/audit_pb";
import { CommandService } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { ConfigService } from "@adminkiosk/proto/adminkiosk/fleet/v1/config_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { JobService } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { TelemetryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/telemetry_pb";
import { FleetQueryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { BulkActionService } from "@adminkiosk/proto/adminkiosk/fleet/v1/bulk_pb";
import { ReleaseService } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { releaseRoutes } from "./releases/service.js";
import type { Releases } from "./releases/wire.js";
import { callOptions, cursorPatterns, decodePageToken, encodePageToken, inTransaction, invalidArgument, pageSize, requireKioskId, requireText, type Pool } from "@adminkiosk/runtime";
import { auditRoutes, recordAudit } from "./audit.js";
import { bulkRoutes } from "./bulk.js";
import type { ChangeFeed } from "./changes.js";
import { commandRoutes } from "./commands.js";
import { configRoutes } from "./desired-config.js";
import type { Dispatcher } from "./dispatch.js";
import { jobRoutes } from "./jobs.js";
import { queryRoutes } from "./query/service.js";
import { RolloutService } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";
import { rolloutRoutes } from "./rollouts/index.js";
import type { BlackoutSettings } from "./rollouts/blackouts.js";
import type { AutoWindows } from "./rollouts/windows.js";
import { optionalGroupId, requireLocation, requireTags, requireTimezone } from "./kiosk-rules.js";
import { recordRegistryEvent } from "./registry-events.js";
import { kiosks, presenceFilter, type KioskFields, type KioskFilter, type KioskOrder } from "./store.js";
import { telemetryRoutes, type TelemetryStore } from "./telemetry.js";
import { createWatches, toKiosk } from "./watch.js";

export const fleetServices = [ReleaseService, KioskService, CommandService, ConfigService, JobService, TelemetryService, AuditService, FleetQueryService, BulkActionService, RolloutService];

export interface FleetDeps {
  pool: Pool;
  /** auth's DeviceService over serviceTransport; calls carry the caller's own credential (callOptions onBehalf). */
  authDevices: Client<typeof DeviceService>;
  changes: ChangeFeed;
  dispatcher: Dispatcher;
  telemetry: TelemetryStore;
  /** Configuration or group changes on more kiosks than this need a second admin (BULK_APPROVAL_OVER). */
  bulkApprovalOver?: number;
  /** Release artifacts and signing keys (releases/wire.ts). */
  releases: Releases;
  /** How often an idle watch stream gets a refresh (tests shorten it). */
  watchRefreshMs?: number;
  /** AUTO rollout windows from ai's forecast (rollouts/windows.ts). */
  autoWindows?: AutoWindows;
  /** Ticketed events as rollout blackouts (rollouts/blackouts.ts); absent: not checked. */
  eventBlackouts?: BlackoutSettings;
}

const nameRule = { max: 100 };

function requireKioskOrder(field: string, value: string): KioskOrder {
  if (value.trim() === "") return { field: "kiosk_id", desc: false };
  const m = /^\s*(kiosk_id|name|last_seen_time)(\s+(asc|desc))?\s*$/i.exec(value);
  if (!m) throw invalidArgument(field, 'must be "kiosk_id", "name" or "last_seen_time", optionally followed by " desc"');
  return { field: m[1]!.toLowerCase() as KioskOrder["field"], desc: (m[3] ?? "").toLowerCase() === "desc" };
}

export function fleetRoutes(deps: FleetDeps) {
  const { pool, changes } = deps;
  const notFound = (kioskId: string) => new ConnectError(`kiosk ${kioskId} not found`, Code.NotFound);
  const watches = createWatches(pool, changes, { refreshMs: deps.watchRefreshMs });
  const others = [
    commandRoutes({ pool, changes, dispatcher: deps.dispatcher }),
    configRoutes({ pool, changes, kick: (ids) => deps.dispatcher.kick(ids) }),
    jobRoutes({ pool, changes, dispatcher: deps.dispatcher }),
    telemetryRoutes(pool, deps.telemetry),
    auditRoutes(pool),
    queryRoutes(pool),
    rolloutRoutes({ pool, changes, dispatcher: deps.dispatcher, autoWindows: deps.autoWindows, events: deps.eventBlackouts }),
    bulkRoutes({ pool, changes, dispatcher: deps.dispatcher, authDevices: deps.authDevices, approvalOver: deps.bulkApprovalOver ?? 100 }),
    releaseRoutes({ pool, store: deps.releases.store, keys: deps.releases.keys }),
  ];

  return (router: ConnectRouter) => {
    others.forEach((r) => r(router));
    router.service(KioskService, {
      async createKiosk(req, ctx) {
        if (!req.kiosk) throw invalidArgument("kiosk", "is required");
        const k = req.kiosk;
        const kioskId = requireKioskId("kiosk.kiosk_id", k.kioskId);
        const fields: KioskFields = {
          name: requireText("kiosk.name", k.name, nameRule),
          ...requireLocation("kiosk.location", k.location),
          timezone: requireTimezone("kiosk.timezone", k.timezone),
          tags: requireTags("kiosk.tags", k.tags),
          groupId: optionalGroupId("kiosk.group_id", k.groupId),
          hardwareModel: k.hardwareModel === "" ? "" : requireText("kiosk.hardware_model", k.hardwareModel, { max: 64 }),
        };
        const row = await inTransaction(pool, async (tx) => {
          const created = await kiosks.insert(tx, kioskId, fields);
          if (created) {
            await recordAudit(tx, ctx, "kiosk.created", kioskId, { name: fields.name, groupId: fields.groupId, tags: fields.tags });
            await recordRegistryEvent(tx, "created", created);
          }
          return created;
        });
        if (!row) {
          const existing = await kiosks.byId(pool, kioskId, { includeDeleted: true });
          throw new ConnectError(
            existing?.deleted_at ? `kiosk ${kioskId} was deleted; choose another id` : `kiosk ${kioskId} already exists`,
            Code.AlreadyExists,
          );
        }
        return { kiosk: toKiosk(row) };
      },

      async getKiosk(req) {
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        const row = await kiosks.byId(pool, kioskId);
        if (!row) throw notFound(kioskId);
        return { kiosk: toKiosk(row) };
      },

      async listKiosks(req) {
        const limit = pageSize("page_size", req.pageSize, 100, 1000);
        const order = requireKioskOrder("order_by", req.orderBy);
        const orderKey = `${order.field}${order.desc ? " desc" : ""}`;
        const cursor = decodePageToken("page_token", req.pageToken, { after: cursorPatterns.any, v: cursorPatterns.any, o: cursorPatterns.any });
        if (cursor && cursor.o !== orderKey) throw invalidArgument("page_token", "was made for another order_by");
        const after = cursor ? { id: cursor.after, value: cursor.v } : undefined;
        if (!(req.status in presenceFilter)) throw invalidArgument("status", "is not a kiosk status");
        const filter: KioskFilter = {
          presence: presenceFilter[req.status],
          tag: req.tag === "" ? undefined : requireTags("tag", [req.tag])[0],
          groupId: req.groupId === "" ? undefined : optionalGroupId("group_id", req.groupId),
          query: req.query === "" ? undefined : requireText("query", req.query, { max: 100 }),
        };
        const [rows, total] = await Promise.all([kiosks.list(pool, filter, { limit: limit + 1, order, after }), kiosks.count(pool, filter)]);
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          kiosks: page.map(toKiosk),
          nextPageToken: rows.length > limit && last ? encodePageToken({ after: last.kiosk_id, v: last.sort_value, o: orderKey }) : "",
          totalSize: total,
        };
      },

      async updateKiosk(req, ctx) {
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        const row = await inTransaction(pool, async (tx) => {
          const current = await kiosks.byId(tx, kioskId, { forUpdate: true });
          if (!current) throw notFound(kioskId);
          const location = req.location ? requireLocation("location", req.location) : { latitude: current.latitude, longitude: current.longitude, address: current.address };
          const fields: KioskFields = {
            name: req.name === undefined ? current.name : requireText("name", req.name, nameRule),
            ...location,
            timezone: req.timezone === undefined ? current.timezone : requireTimezone("timezone", req.timezone),
            tags: req.updateTags ? requireTags("tags", req.tags) : current.tags,
            groupId: req.groupId === undefined ? current.group_id : optionalGroupId("group_id", req.groupId),
            hardwareModel: current.hardware_model,
          };
          const updated = await kiosks.update(tx, kioskId, fields);
          await recordAudit(tx, ctx, "kiosk.updated", kioskId, { ...fields, previousGroupId: current.group_id });
          if (updated) await recordRegistryEvent(tx, "updated", updated);
          return updated;
        });
        changes.publish(kioskId, "kiosk");
        if (row && req.groupId !== undefined) {
          // Another group can mean another desired configuration.
          changes.publish(kioskId, "config");
          deps.dispatcher.kick([kioskId]);
        }
        return { kiosk: toKiosk(row!) };
      },

      async deleteKiosk(req, ctx) {
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        if (!(await kiosks.byId(pool, kioskId))) throw notFound(kioskId);
        // Revoke first: if auth cannot be reached nothing changes and the caller retries;
        // revoking twice is harmless.
        await revokeDevice(deps.authDevices, ctx, kioskId);
        await inTransaction(pool, async (tx) => {
          if (await kiosks.softDelete(tx, kioskId)) {
            await recordAudit(tx, ctx, "kiosk.deleted", kioskId);
            const deleted = await kiosks.byId(tx, kioskId, { includeDeleted: true });
            if (deleted) await recordRegistryEvent(tx, "deleted", deleted);
          }
        });
        changes.publish(kioskId, "kiosk");
        return {};
      },

      async getFleetSummary() {
        return { summary: await watches.summary() };
      },

      watchFleet: watches.watchFleet,
      watchKiosk: watches.watchKiosk,
    });
  };
}

async function revokeDevice(authDevices: Client<typeof DeviceService>, ctx: HandlerContext, kioskId: string) {
  try {
    // auth must judge the admin, not fleet: the caller's own token goes along (onBehalf),
    // with this call's request id and what is left of its deadline.
    await authDevices.revokeDevice({ kioskId, reason: "kiosk deleted from the fleet" }, callOptions(ctx, { onBehalf: true }));
  } catch (err) {
    const e = ConnectError.from(err);
    throw new ConnectError(`could not revoke the kiosk's device credential: ${e.rawMessage}`, e.code === Code.PermissionDenied ? Code.PermissionDenied : Code.Unavailable, undefined, undefined, err);
  }
}

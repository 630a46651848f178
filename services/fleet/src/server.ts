// fleet's RPC handlers: validate, call the store, map to the contract. Who may call
// each RPC is declared in proto/ and enforced by the runtime.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskService, KioskStatus, type KioskSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { cursorPatterns, decodePageToken, encodePageToken, inTransaction, invalidArgument, pageSize, requireKioskId, requireText, type Pool } from "@adminkiosk/runtime";
import { optionalGroupId, requireLocation, requireTags, requireTimezone } from "./kiosk-rules.js";
import { kiosks, type KioskFields, type KioskFilter, type KioskRow } from "./store.js";

const presenceFilter: Record<KioskStatus, KioskFilter["presence"]> = {
  [KioskStatus.UNSPECIFIED]: undefined,
  [KioskStatus.ONLINE]: "online",
  [KioskStatus.OFFLINE]: "offline",
  [KioskStatus.ALERTING]: undefined,
  [KioskStatus.PROVISIONED]: "provisioned",
};

export const fleetServices = [KioskService];

export interface FleetDeps {
  pool: Pool;
  /** auth's DeviceService; calls carry the caller's own credential. */
  authDevices: Client<typeof DeviceService>;
}

const nameRule = { max: 100 };

export function fleetRoutes(deps: FleetDeps) {
  const { pool } = deps;
  const statusOf = (row: KioskRow): KioskStatus =>
    row.connected ? KioskStatus.ONLINE : row.last_seen_at ? KioskStatus.OFFLINE : KioskStatus.PROVISIONED;
  const toKiosk = (row: KioskRow): MessageInitShape<typeof KioskSchema> => ({
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
    state: row.state && row.state_sampled_at ? { ...row.state, cashLevelMinor: BigInt(row.state.cashLevelMinor), sampleTime: timestampFromDate(row.state_sampled_at) } : undefined,
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
  });
  const notFound = (kioskId: string) => new ConnectError(`kiosk ${kioskId} not found`, Code.NotFound);

  return (router: ConnectRouter) => {
    router.service(KioskService, {
      async createKiosk(req) {
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
        const row = await kiosks.insert(pool, kioskId, fields);
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
        const after = decodePageToken("page_token", req.pageToken, { after: cursorPatterns.any })?.after;
        if (req.status === KioskStatus.ALERTING) throw invalidArgument("status", "KIOSK_STATUS_ALERTING is not available yet (alert thresholds are still to come)");
        const filter: KioskFilter = {
          presence: presenceFilter[req.status],
          tag: req.tag === "" ? undefined : requireTags("tag", [req.tag])[0],
          groupId: req.groupId === "" ? undefined : optionalGroupId("group_id", req.groupId),
          query: req.query === "" ? undefined : requireText("query", req.query, { max: 100 }),
        };
        const [rows, total] = await Promise.all([kiosks.list(pool, filter, { limit: limit + 1, afterId: after }), kiosks.count(pool, filter)]);
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          kiosks: page.map(toKiosk),
          nextPageToken: rows.length > limit && last ? encodePageToken({ after: last.kiosk_id }) : "",
          totalSize: total,
        };
      },

      async updateKiosk(req) {
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        const row = await inTransaction(pool, async (tx) => {
          const current = await kiosks.byId(tx, kioskId, { forUpdate: true });
          if (!current) throw notFound(kioskId);
          const location = req.location ? requireLocation("location", req.location) : { latitude: current.latitude, longitude: current.longitude, address: current.address };
          return kiosks.update(tx, kioskId, {
            name: req.name === undefined ? current.name : requireText("name", req.name, nameRule),
            ...location,
            timezone: req.timezone === undefined ? current.timezone : requireTimezone("timezone", req.timezone),
            tags: req.updateTags ? requireTags("tags", req.tags) : current.tags,
            groupId: req.groupId === undefined ? current.group_id : optionalGroupId("group_id", req.groupId),
            hardwareModel: current.hardware_model,
          });
        });
        return { kiosk: toKiosk(row!) };
      },

      async deleteKiosk(req, ctx) {
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        if (!(await kiosks.byId(pool, kioskId))) throw notFound(kioskId);
        // Revoke first: if auth cannot be reached nothing changes and the caller retries;
        // revoking twice is harmless.
        await revokeDevice(deps.authDevices, ctx, kioskId);
        await kiosks.softDelete(pool, kioskId);
        return {};
      },
    });
  };
}

async function revokeDevice(authDevices: Client<typeof DeviceService>, ctx: HandlerContext, kioskId: string) {
  const authorization = ctx.requestHeader.get("authorization") ?? "";
  try {
    await authDevices.revokeDevice(
      { kioskId, reason: "kiosk deleted from the fleet" },
      { headers: { authorization, "x-request-id": ctx.requestHeader.get("x-request-id") ?? "" }, timeoutMs: 5_000, signal: ctx.signal },
    );
  } catch (err) {
    const e = ConnectError.from(err);
    throw new ConnectError(`could not revoke the kiosk's device credential: ${e.rawMessage}`, e.code === Code.PermissionDenied ? Code.PermissionDenied : Code.Unavailable, undefined, undefined, err);
  }
}

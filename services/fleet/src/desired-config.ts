// Desired and reported configuration (a device twin). A kiosk's desired document is
// its group's document with its own merged over it; every change takes a version from
// one sequence, and kiosks.config_version holds the newest version that concerns the
// kiosk, so versions only grow. The dispatcher pushes a newer version to connected
// kiosks; link's config.applied events record what they applied.
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { ConfigService, type KioskConfigSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/config_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { describePrincipal, inTransaction, invalidArgument, principalOf, requireKioskId, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { recordAudit } from "./audit.js";
import type { ChangeFeed } from "./changes.js";
import { optionalGroupId } from "./kiosk-rules.js";

type Db = Pool | PoolClient;

const maxConfigBytes = 64 * 1024;

const isObject = (v: JsonValue | undefined): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** `over` merged onto `base`: objects key by key, anything else replaced. */
export function mergeConfig(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? mergeConfig(current, value) : value;
  }
  return out;
}

export interface DesiredConfig {
  kioskId: string;
  version: bigint;
  config: JsonObject;
}

/** The merged desired configuration of each kiosk given (those that exist). */
export async function desiredConfigs(db: Db, kioskIds: string[]): Promise<Map<string, DesiredConfig>> {
  const { rows } = await db.query<{ kiosk_id: string; config_version: string; kiosk_layer: JsonObject | null; group_layer: JsonObject | null }>(
    `SELECT k.kiosk_id, k.config_version, kc.config AS kiosk_layer, gc.config AS group_layer
     FROM kiosks k LEFT JOIN kiosk_config kc USING (kiosk_id) LEFT JOIN group_config gc ON gc.group_id = k.group_id AND k.group_id <> ''
     WHERE k.kiosk_id = ANY($1)`,
    [kioskIds],
  );
  return new Map(rows.map((r) => [r.kiosk_id, { kioskId: r.kiosk_id, version: BigInt(r.config_version), config: mergeConfig(r.group_layer ?? {}, r.kiosk_layer ?? {}) }]));
}

interface KioskConfigRow {
  kiosk_id: string;
  group_id: string;
  config_version: string;
  reported_config_version: string;
  reported_config_error: string;
  reported_config_at: Date | null;
  kiosk_layer: JsonObject | null;
  kiosk_updated_at: Date | null;
  kiosk_updated_by: string | null;
  group_layer: JsonObject | null;
}

export async function kioskConfig(db: Db, kioskId: string): Promise<MessageInitShape<typeof KioskConfigSchema> | undefined> {
  const { rows } = await db.query<KioskConfigRow>(
    `SELECT k.kiosk_id, k.group_id, k.config_version, k.reported_config_version, k.reported_config_error, k.reported_config_at,
            kc.config AS kiosk_layer, kc.updated_at AS kiosk_updated_at, kc.updated_by AS kiosk_updated_by, gc.config AS group_layer
     FROM kiosks k LEFT JOIN kiosk_config kc USING (kiosk_id) LEFT JOIN group_config gc ON gc.group_id = k.group_id AND k.group_id <> ''
     WHERE k.kiosk_id = $1 AND k.deleted_at IS NULL`,
    [kioskId],
  );
  const r = rows[0];
  if (!r) return undefined;
  const desiredVersion = BigInt(r.config_version);
  const reportedVersion = BigInt(r.reported_config_version);
  return {
    kioskId: r.kiosk_id,
    desiredVersion,
    desired: mergeConfig(r.group_layer ?? {}, r.kiosk_layer ?? {}),
    kioskLayer: r.kiosk_layer ?? {},
    groupId: r.group_id,
    groupLayer: r.group_layer ?? {},
    reportedVersion,
    reportedError: r.reported_config_error,
    reportedTime: r.reported_config_at ? timestampFromDate(r.reported_config_at) : undefined,
    inSync: reportedVersion === desiredVersion && r.reported_config_error === "",
    updateTime: r.kiosk_updated_at ? timestampFromDate(r.kiosk_updated_at) : undefined,
    updatedBy: r.kiosk_updated_by ?? "",
  };
}

function requireConfig(field: string, config: JsonObject | undefined): JsonObject {
  if (!config) throw invalidArgument(field, "is required (an empty object clears it)");
  if (Buffer.byteLength(JSON.stringify(config)) > maxConfigBytes) throw invalidArgument(field, `must be at most ${maxConfigBytes} bytes as JSON`);
  return config;
}

export interface ConfigDeps {
  pool: Pool;
  changes: ChangeFeed;
  /** Pushes the new desired configuration to these kiosks when they are connected. */
  kick(kioskIds: string[]): void;
}

export function configRoutes(deps: ConfigDeps) {
  const { pool, changes } = deps;
  const notFound = (kioskId: string) => new ConnectError(`kiosk ${kioskId} not found`, Code.NotFound);
  return (router: ConnectRouter) =>
    router.service(ConfigService, {
      async setKioskConfig(req, ctx) {
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        const config = requireConfig("config", req.config);
        const actor = describePrincipal(principalOf(ctx));
        await inTransaction(pool, async (tx) => {
          const { rows } = await tx.query<{ config_version: string }>("SELECT config_version FROM kiosks WHERE kiosk_id = $1 AND deleted_at IS NULL FOR UPDATE", [kioskId]);
          const current = rows[0];
          if (!current) throw notFound(kioskId);
          if (req.expectedVersion !== 0n && BigInt(current.config_version) !== req.expectedVersion)
            throw new ConnectError(`the configuration is at version ${current.config_version}, not ${req.expectedVersion}: reload it and try again`, Code.Aborted);
          const { rows: v } = await tx.query<{ version: string }>("SELECT nextval('config_version_seq') AS version");
          const version = v[0]!.version;
          await tx.query(
            `INSERT INTO kiosk_config (kiosk_id, config, version, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kiosk_id) DO UPDATE SET config = EXCLUDED.config, version = EXCLUDED.version, updated_by = EXCLUDED.updated_by, updated_at = now()`,
            [kioskId, config, version, actor],
          );
          await tx.query("UPDATE kiosks SET config_version = $2 WHERE kiosk_id = $1", [kioskId, version]);
          await recordAudit(tx, ctx, "config.kiosk_set", kioskId, { version, config });
        });
        changes.publish(kioskId, "config");
        deps.kick([kioskId]);
        return { config: (await kioskConfig(pool, kioskId))! };
      },

      async getKioskConfig(req) {
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        const config = await kioskConfig(pool, kioskId);
        if (!config) throw notFound(kioskId);
        return { config };
      },

      async setGroupConfig(req, ctx) {
        const groupId = optionalGroupId("group_id", req.groupId);
        if (groupId === "") throw invalidArgument("group_id", "is required");
        const config = requireConfig("config", req.config);
        const actor = describePrincipal(principalOf(ctx));
        const { row, affected } = await inTransaction(pool, async (tx) => {
          // The row lock serializes changes to one group (the first insert races on the key).
          const { rows } = await tx.query<{ version: string }>("SELECT version FROM group_config WHERE group_id = $1 FOR UPDATE", [groupId]);
          const current = rows[0]?.version ?? "0";
          if (req.expectedVersion !== 0n && BigInt(current) !== req.expectedVersion)
            throw new ConnectError(`the group's configuration is at version ${current}, not ${req.expectedVersion}: reload it and try again`, Code.Aborted);
          const { rows: saved } = await tx.query<{ version: string; config: JsonObject; updated_at: Date; updated_by: string }>(
            `INSERT INTO group_config (group_id, config, version, updated_by) VALUES ($1, $2, nextval('config_version_seq'), $3)
             ON CONFLICT (group_id) DO UPDATE SET config = EXCLUDED.config, version = EXCLUDED.version, updated_by = EXCLUDED.updated_by, updated_at = now()
             RETURNING version, config, updated_at, updated_by`,
            [groupId, config, actor],
          );
          const row = saved[0]!;
          const { rows: kiosks } = await tx.query<{ kiosk_id: string }>(
            "UPDATE kiosks SET config_version = $2 WHERE group_id = $1 AND deleted_at IS NULL RETURNING kiosk_id",
            [groupId, row.version],
          );
          await recordAudit(tx, ctx, "config.group_set", groupId, { version: row.version, config, kiosks: kiosks.length });
          return { row, affected: kiosks.map((k) => k.kiosk_id) };
        });
        affected.forEach((id) => changes.publish(id, "config"));
        deps.kick(affected);
        return {
          config: { groupId, version: BigInt(row.version), config: row.config, updateTime: timestampFromDate(row.updated_at), updatedBy: row.updated_by },
          kiosksAffected: affected.length,
        };
      },

      async getGroupConfig(req) {
        const groupId = optionalGroupId("group_id", req.groupId);
        if (groupId === "") throw invalidArgument("group_id", "is required");
        const { rows } = await pool.query<{ version: string; config: JsonObject; updated_at: Date; updated_by: string }>(
          "SELECT version, config, updated_at, updated_by FROM group_config WHERE group_id = $1",
          [groupId],
        );
        const row = rows[0];
        // A group without a document has the empty one, at version 0.
        return {
          config: row
            ? { groupId, version: BigInt(row.version), config: row.config, updateTime: timestampFromDate(row.updated_at), updatedBy: row.updated_by }
            : { groupId, version: 0n, config: {} },
        };
      },
    });
}

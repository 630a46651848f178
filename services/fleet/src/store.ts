// fleet's own SQL (schema "fleet").
import { KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import type { Pool, PoolClient } from "@adminkiosk/runtime";
import { alertingSql, lowPaperSql } from "./kiosk-rules.js";

type Db = Pool | PoolClient;

export interface KioskRow {
  kiosk_id: string;
  name: string;
  latitude: number | null;
  longitude: number | null;
  address: string;
  timezone: string;
  tags: string[];
  group_id: string;
  hardware_model: string;
  firmware_version: string;
  app_version: string;
  last_seen_at: Date | null;
  connected: boolean;
  state: KioskStateJson | null;
  state_sampled_at: Date | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

/** The latest telemetry sample, as fleet/src/events.ts stores it. */
export interface KioskStateJson {
  cpuPercent: number;
  temperatureCelsius: number;
  paperLevelPercent: number;
  cashLevelMinor: string;
  printerStatus: string;
  scannerStatus: string;
  errors: string[];
}

export interface KioskFields {
  name: string;
  latitude: number | null;
  longitude: number | null;
  address: string;
  timezone: string;
  tags: string[];
  groupId: string;
  hardwareModel: string;
}

/** How a listing narrows the fleet; `presence` follows link's connection events. */
export interface KioskFilter {
  presence?: "online" | "offline" | "provisioned" | "alerting";
  tag?: string;
  groupId?: string;
  query?: string;
}

export interface KioskOrder {
  field: "kiosk_id" | "name" | "last_seen_time";
  desc: boolean;
}

/** Sort expressions; never-seen kiosks sort as the oldest. */
const kioskOrderColumns: Record<KioskOrder["field"], { expr: string; cast: string }> = {
  kiosk_id: { expr: "kiosk_id", cast: "text" },
  name: { expr: "name", cast: "text" },
  last_seen_time: { expr: "COALESCE(last_seen_at, '-infinity'::timestamptz)", cast: "timestamptz" },
};

/** ListKiosks' and jobs' status filter. */
export const presenceFilter: Record<KioskStatus, KioskFilter["presence"]> = {
  [KioskStatus.UNSPECIFIED]: undefined,
  [KioskStatus.ONLINE]: "online",
  [KioskStatus.OFFLINE]: "offline",
  [KioskStatus.ALERTING]: "alerting",
  [KioskStatus.PROVISIONED]: "provisioned",
};

export function kioskWhere(f: KioskFilter, params: unknown[]): string {
  const clauses = ["deleted_at IS NULL"];
  const add = (value: unknown) => `$${params.push(value)}`;
  if (f.presence === "provisioned") clauses.push("last_seen_at IS NULL");
  if (f.presence === "online") clauses.push("connected");
  if (f.presence === "alerting") clauses.push(`connected AND ${alertingSql()}`);
  if (f.presence === "offline") clauses.push("NOT connected AND last_seen_at IS NOT NULL");
  if (f.tag) clauses.push(`tags @> ARRAY[${add(f.tag)}]::text[]`);
  if (f.groupId) clauses.push(`group_id = ${add(f.groupId)}`);
  if (f.query) {
    const pattern = add(`%${f.query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    clauses.push(`(kiosk_id ILIKE ${pattern} OR name ILIKE ${pattern} OR address ILIKE ${pattern})`);
  }
  return clauses.join(" AND ");
}

export const kiosks = {
  async insert(db: Db, kioskId: string, k: KioskFields) {
    const { rows } = await db.query<KioskRow>(
      `INSERT INTO kiosks (kiosk_id, name, latitude, longitude, address, timezone, tags, group_id, hardware_model)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (kiosk_id) DO NOTHING RETURNING *`,
      [kioskId, k.name, k.latitude, k.longitude, k.address, k.timezone, k.tags, k.groupId, k.hardwareModel],
    );
    return rows[0];
  },
  async byId(db: Db, kioskId: string, options: { includeDeleted?: boolean; forUpdate?: boolean } = {}) {
    const { rows } = await db.query<KioskRow>(
      `SELECT * FROM kiosks WHERE kiosk_id = $1 ${options.includeDeleted ? "" : "AND deleted_at IS NULL"} ${options.forUpdate ? "FOR UPDATE" : ""}`,
      [kioskId],
    );
    return rows[0];
  },
  /** Deleted ones too (a watcher needs to learn they went). */
  async byIds(db: Db, kioskIds: string[]) {
    const { rows } = await db.query<KioskRow>("SELECT * FROM kiosks WHERE kiosk_id = ANY($1) ORDER BY kiosk_id", [kioskIds]);
    return rows;
  },
  async update(db: Db, kioskId: string, k: KioskFields) {
    const { rows } = await db.query<KioskRow>(
      `UPDATE kiosks SET name = $2, latitude = $3, longitude = $4, address = $5, timezone = $6, tags = $7,
         group_id = $8, hardware_model = $9, updated_at = now(),
         -- Another group means another desired configuration: a new version.
         config_version = CASE WHEN group_id <> $8 THEN nextval('config_version_seq') ELSE config_version END
       WHERE kiosk_id = $1 AND deleted_at IS NULL RETURNING *`,
      [kioskId, k.name, k.latitude, k.longitude, k.address, k.timezone, k.tags, k.groupId, k.hardwareModel],
    );
    return rows[0];
  },
  async softDelete(db: Db, kioskId: string) {
    const { rowCount } = await db.query("UPDATE kiosks SET deleted_at = now(), updated_at = now() WHERE kiosk_id = $1 AND deleted_at IS NULL", [
      kioskId,
    ]);
    return (rowCount ?? 0) > 0;
  },
  /**
   * A page in `order` (keyset: after the last row's sort value and id, so pages stay
   * consistent while kiosks change). `after.value` is the sort value as text.
   */
  async list(db: Db, filter: KioskFilter, page: { limit: number; order: KioskOrder; after?: { id: string; value: string } }) {
    const params: unknown[] = [];
    const condition = kioskWhere(filter, params);
    const { expr, cast } = kioskOrderColumns[page.order.field];
    const dir = page.order.desc ? "DESC" : "ASC";
    const cmp = page.order.desc ? "<" : ">";
    let after = "";
    if (page.after) {
      after =
        page.order.field === "kiosk_id"
          ? ` AND kiosk_id ${cmp} $${params.push(page.after.id)}`
          : ` AND (${expr}, kiosk_id) ${cmp} ($${params.push(page.after.value)}::${cast}, $${params.push(page.after.id)})`;
    }
    const { rows } = await db.query<KioskRow & { sort_value: string }>(
      `SELECT *, (${expr})::text AS sort_value FROM kiosks WHERE ${condition}${after}
       ORDER BY ${expr} ${dir}, kiosk_id ${dir} LIMIT $${params.push(page.limit)}`,
      params,
    );
    return rows;
  },
  async count(db: Db, filter: KioskFilter) {
    const params: unknown[] = [];
    const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM kiosks WHERE ${kioskWhere(filter, params)}`, params);
    return Number(rows[0]!.n);
  },
};

export interface FleetSummaryRow {
  total: number;
  online: number;
  offline: number;
  alerting: number;
  provisioned: number;
  low_paper: number;
}

export async function fleetSummary(db: Db): Promise<FleetSummaryRow> {
  const { rows } = await db.query<Record<keyof FleetSummaryRow, string>>(
    `SELECT count(*) AS total, count(*) FILTER (WHERE connected) AS online,
            count(*) FILTER (WHERE NOT connected AND last_seen_at IS NOT NULL) AS offline,
            count(*) FILTER (WHERE connected AND ${alertingSql()}) AS alerting,
            count(*) FILTER (WHERE last_seen_at IS NULL) AS provisioned,
            count(*) FILTER (WHERE ${lowPaperSql()}) AS low_paper
     FROM kiosks WHERE deleted_at IS NULL`,
  );
  const r = rows[0]!;
  return {
    total: Number(r.total),
    online: Number(r.online),
    offline: Number(r.offline),
    alerting: Number(r.alerting),
    provisioned: Number(r.provisioned),
    low_paper: Number(r.low_paper),
  };
}

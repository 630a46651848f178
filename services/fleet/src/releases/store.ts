// Releases, artifacts and kiosks' installs in fleet's PostgreSQL (migration
// 1798000000000_releases.sql), and their mapping to the contract.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { KioskUpdateSchema, ReleaseKind, ReleaseSchema, type KioskUpdate, type Release } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import type { Pool, PoolClient } from "@adminkiosk/runtime";

export type Db = Pool | PoolClient;
export type ReleaseKindName = "app" | "firmware";

export const kindNames: Record<ReleaseKindName, ReleaseKind> = { app: ReleaseKind.APP, firmware: ReleaseKind.FIRMWARE };
export const kindOf = (kind: ReleaseKind): ReleaseKindName | undefined => (kind === ReleaseKind.APP ? "app" : kind === ReleaseKind.FIRMWARE ? "firmware" : undefined);

export interface ReleaseRow {
  release_id: string;
  kind: ReleaseKindName;
  version: string;
  min_version: string;
  notes: string;
  hardware_models: string[];
  artifact_sha256: string;
  /** bigint as text */
  size_bytes: string;
  manifest: Buffer;
  manifest_signature: Buffer;
  key_id: string;
  created_by: string;
  created_at: Date;
}

/** The path a kiosk GETs, relative to its API base. */
export const artifactPath = (sha256: string) => `/v1/artifacts/${sha256}`;

export function toRelease(r: ReleaseRow): Release {
  return create(ReleaseSchema, {
    releaseId: r.release_id,
    kind: kindNames[r.kind],
    version: r.version,
    minVersion: r.min_version,
    notes: r.notes,
    hardwareModels: r.hardware_models,
    artifactSha256: r.artifact_sha256,
    sizeBytes: BigInt(r.size_bytes),
    manifest: new Uint8Array(r.manifest),
    manifestSignature: new Uint8Array(r.manifest_signature),
    keyId: r.key_id,
    createTime: timestampFromDate(r.created_at),
    createdBy: r.created_by,
    artifactUrl: artifactPath(r.artifact_sha256),
  });
}

export async function releaseById(db: Db, releaseId: string): Promise<ReleaseRow | undefined> {
  if (!/^[0-9a-f-]{36}$/.test(releaseId)) return undefined;
  const { rows } = await db.query<ReleaseRow>("SELECT * FROM releases WHERE release_id = $1", [releaseId]);
  return rows[0];
}

export type UpdateState = "downloading" | "verifying" | "installing" | "installed" | "failed" | "rejected" | "reverted";
export const updateStateNames: readonly UpdateState[] = ["downloading", "verifying", "installing", "installed", "failed", "rejected", "reverted"];

export interface KioskUpdateRow {
  kiosk_id: string;
  release_id: string;
  rollout_id: string;
  state: UpdateState;
  version: string;
  from_version: string;
  error: string;
  bytes_done: string;
  bytes_total: string;
  reported_at: Date;
  reverted_at: Date | null;
  updated_at: Date;
}

export function toKioskUpdate(r: KioskUpdateRow): KioskUpdate {
  return create(KioskUpdateSchema, {
    kioskId: r.kiosk_id,
    releaseId: r.release_id,
    rolloutId: r.rollout_id,
    state: r.state,
    version: r.version,
    fromVersion: r.from_version,
    bytesDone: BigInt(r.bytes_done),
    bytesTotal: BigInt(r.bytes_total),
    errorMessage: r.error,
    updateTime: timestampFromDate(r.reported_at),
    revertTime: r.reverted_at ? timestampFromDate(r.reverted_at) : undefined,
  });
}

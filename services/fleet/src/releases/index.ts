// Releases (issue 17): what the rollout engine (services/fleet/src/rollouts) and the rest
// of fleet use. Everything about a release lives under this folder:
//   store.ts     rows (releases, artifacts, kiosk_updates) and their mapping to the contract
//   versions.ts  version strings: requireVersion, compareVersions
//   updates.ts   kiosks' UpdateStatus reports applied to kiosk_updates (from events.ts)
//   signing.ts   the manifest and its Ed25519 signature (FLEET_RELEASE_SIGNING_KEY)
//   artifacts.ts ArtifactStore (filesystem), s3.ts (S3-compatible), http.ts (PUT/GET /v1/artifacts)
//   service.ts   ReleaseService
//
// For a rollout:
//   const release = await getRelease(pool, releaseId);             // undefined: no such release
//   const action = installAction(release, rolloutId);               // a CommandAction for SendCommand or the commands table
//   const bytes = installActionBytes(release, rolloutId);           // the same, as commands.action stores it (binary), action_kind 'installRelease'
//   await updateStates(pool, rolloutId)                             // { installed: 12, failed: 1, ... } per state (every state present)
//   await kioskUpdatesOf(pool, { rolloutId, kioskIds })             // each kiosk's row (state, version, from_version, error, reverted_at)
//   versionColumn(release.kind)                                     // "app_version" | "firmware_version": kiosks.<column> is what the kiosk's Hello reported
//   compareVersions(a, b), isVersion(v)
// A kiosk reports: downloading → verifying → installing → installed (running it, after its
// restart), or failed (incompatible, download failed), rejected (hash or signature did not
// verify; nothing installed), reverted (it installed it, the new version did not boot or was
// unhealthy, it went back to from_version by itself; reverted_at is set).
import { create, toBinary } from "@bufbuild/protobuf";
import { CommandActionSchema, type CommandAction } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { artifactPath, kindNames, releaseById, updateStateNames, type Db, type KioskUpdateRow, type ReleaseRow, type UpdateState } from "./store.js";

export { compareVersions, isVersion, requireVersion } from "./versions.js";
export { applyUpdateStatuses } from "./updates.js";
export { artifactPath, toKioskUpdate, toRelease, updateStateNames, type KioskUpdateRow, type ReleaseKindName, type ReleaseRow, type UpdateState } from "./store.js";

/** The release, or undefined when there is none with this id. */
export const getRelease = (db: Db, releaseId: string): Promise<ReleaseRow | undefined> => releaseById(db, releaseId);

/** The command that makes a kiosk install `release` (rolloutId "" when sent by hand). */
export function installAction(release: ReleaseRow, rolloutId: string): CommandAction {
  return create(CommandActionSchema, {
    kind: {
      case: "installRelease",
      value: {
        releaseId: release.release_id,
        rolloutId,
        kind: kindNames[release.kind],
        version: release.version,
        manifest: new Uint8Array(release.manifest),
        manifestSignature: new Uint8Array(release.manifest_signature),
        keyId: release.key_id,
        artifactUrl: artifactPath(release.artifact_sha256),
      },
    },
  });
}

/** installAction as the commands table stores it (commands.action, with action_kind "installRelease"). */
export const installActionBytes = (release: ReleaseRow, rolloutId: string): Uint8Array => toBinary(CommandActionSchema, installAction(release, rolloutId));

/** The kiosks column holding the version a kiosk runs of this kind (reported in its Hello). */
export const versionColumn = (kind: ReleaseRow["kind"]): "app_version" | "firmware_version" => (kind === "app" ? "app_version" : "firmware_version");

/** How many of a rollout's kiosks are in each install state, as they last reported (every state present, 0 when none). */
export async function updateStates(db: Db, rolloutId: string): Promise<Record<UpdateState, number>> {
  const { rows } = await db.query<{ state: UpdateState; n: number }>("SELECT state, count(*)::int AS n FROM kiosk_updates WHERE rollout_id = $1 GROUP BY state", [rolloutId]);
  const counts = Object.fromEntries(updateStateNames.map((s) => [s, 0])) as Record<UpdateState, number>;
  for (const r of rows) counts[r.state] = r.n;
  return counts;
}

/** Kiosks' install rows of a rollout or of a release, optionally only some kiosks. */
export async function kioskUpdatesOf(db: Db, of: { rolloutId?: string; releaseId?: string; kioskIds?: string[] }): Promise<KioskUpdateRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (of.rolloutId !== undefined) where.push(`rollout_id = $${params.push(of.rolloutId)}`);
  if (of.releaseId !== undefined) where.push(`release_id = $${params.push(of.releaseId)}`);
  if (of.kioskIds) where.push(`kiosk_id = ANY($${params.push(of.kioskIds)}::text[])`);
  if (where.length === 0) throw new Error("kioskUpdatesOf needs a rollout, a release or kiosks");
  const { rows } = await db.query<KioskUpdateRow>(`SELECT * FROM kiosk_updates WHERE ${where.join(" AND ")} ORDER BY kiosk_id`, params);
  return rows;
}

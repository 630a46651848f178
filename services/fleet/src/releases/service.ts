// ReleaseService: releases of uploaded artifacts with signed manifests, the public keys,
// and kiosks' installs. Who may call what is in proto/adminkiosk/fleet/v1/releases.proto.
import { randomUUID } from "node:crypto";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { ReleaseKind, ReleaseService } from "@adminkiosk/proto/adminkiosk/fleet/v1/releases_pb";
import { cursorPatterns, decodePageToken, describePrincipal, encodePageToken, inTransaction, invalidArgument, pageSize, principalOf, requireText, type Pool } from "@adminkiosk/runtime";
import { recordAudit } from "../audit.js";
import type { ArtifactStore } from "./artifacts.js";
import { isSha256 } from "./artifacts.js";
import { manifestBytes, type ReleaseKeys } from "./signing.js";
import { kindOf, releaseById, toKioskUpdate, toRelease, updateStateNames, type KioskUpdateRow, type ReleaseRow, type UpdateState } from "./store.js";
import { compareVersions, requireVersion } from "./versions.js";

export interface ReleaseDeps {
  pool: Pool;
  store: ArtifactStore;
  keys: ReleaseKeys;
}

const notFound = (id: string) => new ConnectError(`release ${id} not found`, Code.NotFound);

function requireHardwareModels(field: string, models: string[]): string[] {
  if (models.length > 50) throw invalidArgument(field, "must list at most 50 hardware models");
  models.forEach((m, i) => requireText(`${field}[${i}]`, m, { max: 64 }));
  return [...new Set(models)].sort();
}

export function releaseRoutes(deps: ReleaseDeps) {
  const { pool, store, keys } = deps;
  return (router: ConnectRouter) =>
    router.service(ReleaseService, {
      async createRelease(req, ctx) {
        const kind = kindOf(req.kind);
        if (!kind) throw invalidArgument("kind", "must be RELEASE_KIND_APP or RELEASE_KIND_FIRMWARE");
        const version = requireVersion("version", req.version);
        const minVersion = req.minVersion === "" ? "" : requireVersion("min_version", req.minVersion);
        if (minVersion && compareVersions(minVersion, version) > 0) throw invalidArgument("min_version", `must not be newer than version ${version}`);
        const notes = req.notes === "" ? "" : requireText("notes", req.notes, { max: 10_000, allowControl: true });
        const hardwareModels = requireHardwareModels("hardware_models", req.hardwareModels);
        const sha256 = req.artifactSha256.trim().toLowerCase();
        if (!isSha256(sha256)) throw invalidArgument("artifact_sha256", "must be the 64 hex characters PUT /v1/artifacts answered");
        if (!keys.signer) throw new ConnectError("fleet has no release signing key (FLEET_RELEASE_SIGNING_KEY): releases cannot be signed", Code.FailedPrecondition);
        const { rows: uploaded } = await pool.query<{ size_bytes: string }>("SELECT size_bytes FROM artifacts WHERE sha256 = $1", [sha256]);
        const stat = uploaded[0] ? await store.stat(sha256) : undefined;
        if (!uploaded[0] || !stat) throw invalidArgument("artifact_sha256", `no artifact ${sha256} was uploaded (PUT /v1/artifacts)`);
        const releaseId = randomUUID();
        const createdBy = describePrincipal(principalOf(ctx));
        const row = await inTransaction(pool, async (tx) => {
          const { rows: now } = await tx.query<{ now: Date }>("SELECT date_trunc('milliseconds', now()) AS now");
          const createdAt = now[0]!.now;
          const manifest = manifestBytes({ releaseId, kind, version, minVersion, sha256, sizeBytes: BigInt(stat.size), hardwareModels, createTime: createdAt });
          const signature = keys.signer!.sign(manifest);
          const { rows } = await tx.query<ReleaseRow>(
            `INSERT INTO releases (release_id, kind, version, min_version, notes, hardware_models, artifact_sha256, size_bytes, manifest, manifest_signature, key_id, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (kind, version) DO NOTHING RETURNING *`,
            [releaseId, kind, version, minVersion, notes, hardwareModels, sha256, stat.size, Buffer.from(manifest), Buffer.from(signature), keys.signer!.keyId, createdBy, createdAt],
          );
          if (!rows[0]) throw new ConnectError(`version: a ${kind} release ${version} already exists`, Code.AlreadyExists);
          await recordAudit(tx, ctx, "release.created", releaseId, { kind, version, minVersion, hardwareModels, artifactSha256: sha256, sizeBytes: stat.size, keyId: keys.signer!.keyId });
          return rows[0];
        });
        return { release: toRelease(row) };
      },

      async getRelease(req) {
        const row = await releaseById(pool, req.releaseId);
        if (!row) {
          if (!cursorPatterns.uuid.test(req.releaseId)) throw invalidArgument("release_id", "must be a release id (a UUID)");
          throw notFound(req.releaseId);
        }
        return { release: toRelease(row) };
      },

      async listReleases(req) {
        const limit = pageSize("page_size", req.pageSize, 100, 1000);
        const cursor = decodePageToken("page_token", req.pageToken, { after: cursorPatterns.uuid });
        const kind = req.kind === ReleaseKind.UNSPECIFIED ? undefined : kindOf(req.kind);
        if (req.kind !== ReleaseKind.UNSPECIFIED && !kind) throw invalidArgument("kind", "is not a release kind");
        const { rows } = await pool.query<ReleaseRow>(
          `SELECT * FROM releases
           WHERE ($1::text IS NULL OR kind = $1)
             AND ($2::text IS NULL OR (created_at, release_id) < (SELECT created_at, release_id FROM releases WHERE release_id = $2))
           ORDER BY created_at DESC, release_id DESC LIMIT $3`,
          [kind ?? null, cursor?.after ?? null, limit + 1],
        );
        const page = rows.slice(0, limit);
        return { releases: page.map(toRelease), nextPageToken: rows.length > limit ? encodePageToken({ after: page.at(-1)!.release_id }) : "" };
      },

      async getReleaseKeys() {
        return { keys: keys.keys };
      },

      async listKioskUpdates(req) {
        if (req.releaseId === "" && req.rolloutId === "") throw invalidArgument("release_id", "release_id or rollout_id is required");
        if (req.releaseId !== "" && !cursorPatterns.uuid.test(req.releaseId)) throw invalidArgument("release_id", "must be a release id (a UUID)");
        if (req.rolloutId !== "") requireText("rollout_id", req.rolloutId, { max: 64 });
        if (req.state !== "" && !updateStateNames.includes(req.state as UpdateState)) throw invalidArgument("state", `must be one of ${updateStateNames.join(", ")}`);
        const limit = pageSize("page_size", req.pageSize, 100, 1000);
        const cursor = decodePageToken("page_token", req.pageToken, { after: cursorPatterns.any });
        const where = "($1 = '' OR release_id = $1) AND ($2 = '' OR rollout_id = $2)";
        const [{ rows }, { rows: counts }] = await Promise.all([
          pool.query<KioskUpdateRow>(`SELECT * FROM kiosk_updates WHERE ${where} AND ($3 = '' OR state = $3) AND ($4::text IS NULL OR kiosk_id > $4) ORDER BY kiosk_id, release_id LIMIT $5`, [
            req.releaseId,
            req.rolloutId,
            req.state,
            cursor?.after ?? null,
            limit + 1,
          ]),
          pool.query<{ state: string; n: number }>(`SELECT state, count(*)::int AS n FROM kiosk_updates WHERE ${where} GROUP BY state`, [req.releaseId, req.rolloutId]),
        ]);
        const page = rows.slice(0, limit);
        return {
          updates: page.map(toKioskUpdate),
          nextPageToken: rows.length > limit ? encodePageToken({ after: page.at(-1)!.kiosk_id }) : "",
          stateCounts: Object.fromEntries(counts.map((c) => [c.state, c.n])),
        };
      },
    });
}

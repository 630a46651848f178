// Kiosks' UpdateStatus reports (link.kiosk.<id>.update.status) applied to kiosk_updates,
// a batch at a time inside the link consumer's transaction (events.ts). The kiosk id comes
// from link (the device credential). A report for a release fleet does not have changes
// nothing ("unknown release"). Per kiosk and release the last report received wins: link's
// receive time orders them (a kiosk's clock is not trusted), the batch's order breaks ties.
// The rollout a report counts for is fleet's own assignment — the rollout that last sent this
// kiosk this release (rollout_targets) — never the rollout_id the kiosk names: a stolen device
// credential could otherwise feed installs to another rollout's gate. A kiosk naming another
// rollout than fleet's is answered in `mismatched` (logged and counted by the consumer).
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { KioskUpdateStatusEvent } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { UpdateStatus_State } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import type { PoolClient } from "@adminkiosk/runtime";
import type { UpdateState } from "./store.js";

export const stateNames: Partial<Record<UpdateStatus_State, UpdateState>> = {
  [UpdateStatus_State.DOWNLOADING]: "downloading",
  [UpdateStatus_State.VERIFYING]: "verifying",
  [UpdateStatus_State.INSTALLING]: "installing",
  [UpdateStatus_State.INSTALLED]: "installed",
  [UpdateStatus_State.FAILED]: "failed",
  [UpdateStatus_State.REJECTED]: "rejected",
  [UpdateStatus_State.REVERTED]: "reverted",
};

export interface RolloutClaimMismatch {
  kioskId: string;
  releaseId: string;
  /** The rollout the kiosk named. */
  claimed: string;
  /** The rollout fleet sent it this release for ("" when none: sent by hand, or never sent). */
  assigned: string;
}

/**
 * The rollout that last sent each (kiosk, release) its install, from fleet's own rows; "" for
 * none. A rollout's target is assigned once its install was sent (sent_at), so a report naming
 * a release a rollout has not sent yet counts for no rollout.
 */
async function assignedRollouts(tx: PoolClient, pairs: { kiosk: string; release: string }[]): Promise<Map<string, string>> {
  const { rows } = await tx.query<{ kiosk_id: string; release_id: string; rollout_id: string }>(
    `SELECT DISTINCT ON (t.kiosk_id, t.release_id) t.kiosk_id, t.release_id, t.rollout_id::text
     FROM unnest($1::text[], $2::text[]) AS p(kiosk_id, release_id)
     JOIN rollout_targets t ON t.kiosk_id = p.kiosk_id AND t.release_id = p.release_id AND t.sent_at IS NOT NULL
     ORDER BY t.kiosk_id, t.release_id, t.sent_at DESC`,
    [pairs.map((p) => p.kiosk), pairs.map((p) => p.release)],
  );
  return new Map(rows.map((r) => [`${r.kiosk_id}/${r.release_id}`, r.rollout_id]));
}

/**
 * Applies a batch's reports; answers the kiosks whose rows changed, how many reports named no
 * known release, and the reports whose rollout_id differs from fleet's assignment.
 */
export async function applyUpdateStatuses(
  tx: PoolClient,
  events: KioskUpdateStatusEvent[],
): Promise<{ changed: string[]; unknown: number; mismatched: RolloutClaimMismatch[] }> {
  const last = new Map<string, { kiosk: string; at: Date; e: KioskUpdateStatusEvent; state: UpdateState }>();
  for (const e of events) {
    const s = e.status;
    const state = s ? stateNames[s.state] : undefined;
    if (!s || !state) continue;
    const at = e.receiveTime ? timestampDate(e.receiveTime) : new Date();
    const key = `${e.kioskId}/${s.releaseId}`;
    const prev = last.get(key);
    if (!prev || prev.at <= at) last.set(key, { kiosk: e.kioskId, at, e, state });
  }
  if (last.size === 0) return { changed: [], unknown: 0, mismatched: [] };
  const list = [...last.values()];
  const assigned = await assignedRollouts(tx, list.map((x) => ({ kiosk: x.kiosk, release: x.e.status!.releaseId })));
  const rolloutOf = (x: (typeof list)[number]) => assigned.get(`${x.kiosk}/${x.e.status!.releaseId}`) ?? "";
  const mismatched = list
    .filter((x) => x.e.status!.rolloutId !== "" && x.e.status!.rolloutId !== rolloutOf(x))
    .map((x) => ({ kioskId: x.kiosk, releaseId: x.e.status!.releaseId, claimed: x.e.status!.rolloutId.slice(0, 64), assigned: rolloutOf(x) }));
  const { rows } = await tx.query<{ kiosk_id: string }>(
    `INSERT INTO kiosk_updates AS k (kiosk_id, release_id, rollout_id, state, version, from_version, error, bytes_done, bytes_total, reported_at, reverted_at)
     SELECT u.kiosk, u.release, u.rollout, u.state, u.version, u.from_version, u.error, u.done, u.total, u.at,
            CASE WHEN u.state = 'reverted' THEN u.at END
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::timestamptz[])
       AS u(kiosk, release, rollout, state, version, from_version, error, done, total, at)
     JOIN releases r ON r.release_id = u.release
     ON CONFLICT (kiosk_id, release_id) DO UPDATE SET
       rollout_id = EXCLUDED.rollout_id, state = EXCLUDED.state, version = EXCLUDED.version, from_version = EXCLUDED.from_version,
       error = EXCLUDED.error, bytes_done = EXCLUDED.bytes_done, bytes_total = EXCLUDED.bytes_total, reported_at = EXCLUDED.reported_at,
       reverted_at = CASE WHEN EXCLUDED.state = 'reverted' THEN EXCLUDED.reported_at WHEN EXCLUDED.state IN ('downloading', 'verifying', 'installing') THEN NULL ELSE k.reverted_at END,
       updated_at = now()
     WHERE k.reported_at <= EXCLUDED.reported_at
     RETURNING k.kiosk_id`,
    [
      list.map((x) => x.kiosk),
      list.map((x) => x.e.status!.releaseId),
      list.map(rolloutOf),
      list.map((x) => x.state),
      list.map((x) => x.e.status!.version),
      list.map((x) => x.e.status!.fromVersion),
      list.map((x) => x.e.status!.errorMessage.slice(0, 2000)),
      list.map((x) => String(x.e.status!.bytesDone)),
      list.map((x) => String(x.e.status!.bytesTotal)),
      list.map((x) => x.at),
    ],
  );
  const { rows: known } = await tx.query<{ release_id: string }>("SELECT release_id FROM releases WHERE release_id = ANY($1::text[])", [
    [...new Set(list.map((x) => x.e.status!.releaseId))],
  ]);
  const knownIds = new Set(known.map((r) => r.release_id));
  return {
    changed: [...new Set(rows.map((r) => r.kiosk_id))],
    unknown: list.filter((x) => !knownIds.has(x.e.status!.releaseId)).length,
    mismatched: mismatched.filter((m) => knownIds.has(m.releaseId)),
  };
}

// Kiosks' UpdateStatus reports (link.kiosk.<id>.update.status) applied to kiosk_updates,
// a batch at a time inside the link consumer's transaction (events.ts). The kiosk id comes
// from link (the device credential). A report for a release fleet does not have changes
// nothing ("unknown release"). Per kiosk and release the last report received wins: link's
// receive time orders them (a kiosk's clock is not trusted), the batch's order breaks ties.
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

/** Applies a batch's reports; answers the kiosks whose rows changed and how many reports named no known release. */
export async function applyUpdateStatuses(tx: PoolClient, events: KioskUpdateStatusEvent[]): Promise<{ changed: string[]; unknown: number }> {
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
  if (last.size === 0) return { changed: [], unknown: 0 };
  const list = [...last.values()];
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
      list.map((x) => x.e.status!.rolloutId),
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
  return { changed: [...new Set(rows.map((r) => r.kiosk_id))], unknown: list.filter((x) => !knownIds.has(x.e.status!.releaseId)).length };
}

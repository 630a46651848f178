// A kiosk whose link replica died never gets a "disconnected" event. link keeps a
// presence record per connected kiosk in Redis with a TTL that heartbeats renew; this
// sweep marks kiosks offline whose record has gone (replica dead, kiosk silent).
import { kioskPresenceKey, type Logger, type Pool, type Redis } from "@adminkiosk/runtime";
import type { ChangeFeed } from "./changes.js";

export function startPresenceSweep(pool: Pool, redis: Redis, intervalMs: number, changes: ChangeFeed, log: Logger) {
  const sweep = async () => {
    const { rows } = await pool.query<{ kiosk_id: string }>("SELECT kiosk_id FROM kiosks WHERE connected AND deleted_at IS NULL");
    if (rows.length === 0) return;
    const pipeline = redis.pipeline();
    rows.forEach((r) => pipeline.exists(kioskPresenceKey(r.kiosk_id)));
    const results = (await pipeline.exec()) ?? [];
    const gone = rows.filter((_, i) => results[i]?.[0] === null && results[i]?.[1] === 0).map((r) => r.kiosk_id);
    if (gone.length === 0) return;
    // Only if nothing newer arrived meanwhile (a reconnect sets connection_changed_at). The
    // mark keeps connection_changed_at: it is no event of link's, and moved to now() it made a
    // kiosk's reconnect that was taken before the check but applied after it count as older
    // and be dropped — the kiosk restarting into a new version stayed offline on its old one.
    // An older connected event applied late marks it online again; the next sweep corrects it.
    const { rows: marked } = await pool.query<{ kiosk_id: string }>(
      `UPDATE kiosks SET connected = false
       WHERE kiosk_id = ANY($1) AND connected AND connection_changed_at < now() - interval '2 seconds' RETURNING kiosk_id`,
      [gone],
    );
    marked.forEach((r) => changes.publish(r.kiosk_id, "kiosk"));
    log.info({ kiosks: gone.length }, "kiosks without presence marked offline");
  };
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweep()
      .catch((err: unknown) => log.warn({ err }, "presence sweep failed"))
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

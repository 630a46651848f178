// Ticketed events as rollout blackouts (docs/rollouts.md): a kiosk is not sent an install from
// an event's start minus ROLLOUT_EVENT_BEFORE_HOURS to its start plus ROLLOUT_EVENT_AFTER_HOURS
// when the event's venue is within ROLLOUT_EVENT_RADIUS_KM of the kiosk, or the kiosk holds a
// lease of the event's seats (it sells its tickets). fleet reads catalog's ListEvents as itself
// (its service token; ListEvents admits "fleet") every ROLLOUT_EVENTS_REFRESH_MS into
// ticketed_events, replacing the last good read; a failed read keeps it. The engine checks the
// table in SQL at each send, so every replica uses the same events and a catalog down for a
// while changes nothing — until the last good read is older than ROLLOUT_EVENTS_MAX_AGE_MS:
// then no kiosk of an AUTO or EXPLICIT rollout is sent an install (fleet cannot tell which hours
// are safe) and the rollout's event_note says why. Without CATALOG_URL nothing is checked.
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { EventService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { callOptions, inTransaction, serviceCredentials, serviceTransport, type Logger, type Pool } from "@adminkiosk/runtime";
import { unwrittenSql, windowSql } from "./plan.js";

export interface BlackoutSettings {
  radiusKm: number;
  beforeMs: number;
  afterMs: number;
  /** A last good read older than this blocks every kiosk of a checked rollout. */
  maxAgeMs: number;
}

export interface EventBlackouts {
  settings: BlackoutSettings;
  /** Reads catalog's events once into ticketed_events (tests and the timer). */
  refresh(): Promise<void>;
  stop(): void;
}

/** Events starting this far ahead are read (the refresh comes long before they matter). */
const horizonMs = 2 * 24 * 3_600_000;
const maxEvents = 5_000;

const kmSql = (lat1: string, lon1: string, lat2: string, lon2: string) =>
  `(12742 * asin(sqrt(power(sin(radians(${lat2} - ${lat1}) / 2), 2) + cos(radians(${lat1})) * cos(radians(${lat2})) * power(sin(radians(${lon2} - ${lon1}) / 2), 2))))`;

/**
 * SQL true when kiosk `k` (kiosks) may not be sent an install now under `s`: an event's
 * blackout covers now and its venue is within the radius or k leases its seats, or the events
 * were not read within maxAgeMs. The settings are validated numbers (config.ts).
 */
export function blockedByEventsSql(s: BlackoutSettings, k = "k"): string {
  const n = (v: number) => String(Number(v));
  return `(NOT EXISTS (SELECT 1 FROM ticketed_events_read r WHERE r.read_at > now() - make_interval(secs => ${n(s.maxAgeMs / 1000)}))
    OR EXISTS (SELECT 1 FROM ticketed_events e
      WHERE now() >= e.starts_at - make_interval(secs => ${n(s.beforeMs / 1000)}) AND now() < e.starts_at + make_interval(secs => ${n(s.afterMs / 1000)})
        AND (${k}.kiosk_id = ANY(e.lease_kiosk_ids)
          OR (e.latitude IS NOT NULL AND ${k}.latitude IS NOT NULL AND ${kmSql(`${k}.latitude`, `${k}.longitude`, "e.latitude", "e.longitude")} <= ${n(s.radiusKm)}))))`;
}

/** What a rollout's status says about the events (empty for ANY: not checked). */
export async function eventNote(db: Pool, s: BlackoutSettings | undefined, policy: string): Promise<string> {
  if (policy === "any") return "";
  if (!s) return "ticketed events are not checked: fleet has no catalog connection (CATALOG_URL, SERVICE_SECRET)";
  const { rows } = await db.query<{ read_at: Date | null; failed_at: Date | null; error: string; fresh: boolean; events: number }>(
    `SELECT r.read_at, r.failed_at, r.error, COALESCE(r.read_at > now() - make_interval(secs => $1::float8), false) AS fresh,
            (SELECT count(*)::int FROM ticketed_events) AS events
     FROM ticketed_events_read r`,
    [s.maxAgeMs / 1000],
  );
  const r = rows[0];
  if (!r?.read_at) return `installs wait: fleet has not read catalog's ticketed events yet${r?.error ? ` (${r.error})` : ""}`;
  const failed = r.failed_at && r.failed_at > r.read_at ? `; the last read failed at ${r.failed_at.toISOString()} (${r.error})` : "";
  if (!r.fresh) return `installs wait: catalog's ticketed events were last read at ${r.read_at.toISOString()}, longer ago than ROLLOUT_EVENTS_MAX_AGE_MS${failed}`;
  return `ticketed events read at ${r.read_at.toISOString()} (${r.events} upcoming)${failed}`;
}

export function startEventBlackouts(o: {
  pool: Pool;
  catalogUrl: string;
  authUrl: string;
  secret: string;
  settings: BlackoutSettings;
  refreshMs: number;
  log: Logger;
}): EventBlackouts {
  const client = createClient(EventService, serviceTransport(o.catalogUrl, serviceCredentials({ authUrl: o.authUrl, service: "fleet", secret: o.secret }), { upstream: "catalog" }));

  async function read() {
    const now = Date.now();
    const startAfter = timestampFromDate(new Date(now - o.settings.afterMs));
    const out: { id: string; name: string; startsAt: Date; lat: number | null; lon: number | null; leases: string[] }[] = [];
    let pageToken = "";
    do {
      const page = await client.listEvents({ startAfter, pageSize: 200, pageToken, includeLeaseKiosks: true }, callOptions(undefined, { timeoutMs: 5_000 }));
      for (const e of page.events) {
        if (!e.startTime) continue;
        out.push({ id: e.eventId, name: e.name, startsAt: timestampDate(e.startTime), lat: e.venueLatitude ?? null, lon: e.venueLongitude ?? null, leases: e.leaseKioskIds });
      }
      const last = out.at(-1);
      pageToken = last && last.startsAt.getTime() > now + horizonMs ? "" : page.nextPageToken;
    } while (pageToken && out.length < maxEvents);
    return out;
  }

  /** Whether this process has read the events once. */
  let readOnce = false;
  let waited = 0;
  async function refresh() {
    try {
      const events = await read();
      await inTransaction(o.pool, async (tx) => {
        await tx.query("SELECT 1 FROM ticketed_events_read FOR UPDATE");
        await tx.query("DELETE FROM ticketed_events");
        await tx.query(
          `INSERT INTO ticketed_events (event_id, name, starts_at, latitude, longitude, lease_kiosk_ids)
           SELECT e.id, e.name, e.starts_at, e.lat, e.lon, ARRAY(SELECT jsonb_array_elements_text(e.leases))
           FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::float8[], $6::jsonb[]) AS e(id, name, starts_at, lat, lon, leases)`,
          [events.map((e) => e.id), events.map((e) => e.name), events.map((e) => e.startsAt), events.map((e) => e.lat), events.map((e) => e.lon), events.map((e) => JSON.stringify(e.leases))],
        );
        await tx.query("UPDATE ticketed_events_read SET read_at = now()");
      });
      readOnce = true;
    } catch (err) {
      const e = ConnectError.from(err);
      // Catalog starting after fleet (npm start, a rollout of both) is not worth a warning.
      if (!readOnce && e.code === Code.Unavailable) {
        (waited++ === 0 ? o.log.info : o.log.debug).call(o.log, { reason: e.rawMessage }, "catalog's ticketed events: catalog not reachable yet; reading again in a few seconds");
      } else o.log.warn({ err }, "could not read catalog's ticketed events; the last read is kept");
      // The rollout's event_note shows the code (Unavailable, PermissionDenied, ...), not the message.
      await o.pool.query("UPDATE ticketed_events_read SET failed_at = now(), error = $1", [Code[e.code]]).catch((err2: unknown) => o.log.warn({ err: err2 }, "could not note the failed read"));
    }
  }

  let running = false;
  let stopped = false;
  const tick = () => {
    if (running) return;
    running = true;
    void refresh().finally(() => {
      running = false;
      // Until the first read works (catalog still starting), again within a few seconds.
      if (!readOnce && !stopped) setTimeout(tick, Math.min(o.refreshMs, 2_000)).unref();
    });
  };
  tick();
  const timer = setInterval(tick, o.refreshMs);
  timer.unref();
  return {
    settings: o.settings,
    refresh,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/**
 * A rollout's event status: its note, and per wave its pending kiosks inside their window now
 * but kept from installing by the events (none for ANY or without catalog).
 */
export async function eventStatus(db: Pool, s: BlackoutSettings | undefined, rollout: { rollout_id: string; window_policy: string; state: string }) {
  const note = await eventNote(db, s, rollout.window_policy);
  const blocked = new Map<number, number>();
  if (!s || rollout.window_policy === "any" || rollout.state !== "running") return { note, blocked };
  // Pending rows, and the kiosks of waves whose rows are not written yet (their plans).
  const { rows } = await db.query<{ wave: number; n: number }>(
    `SELECT t.wave, count(*)::int AS n FROM (
       SELECT wave, kiosk_id, timezone, window_start, window_end FROM rollout_targets WHERE rollout_id = $1 AND state = 'pending'
       UNION ALL SELECT wave, kiosk_id, timezone, window_start, window_end FROM (${unwrittenSql("$1")}) u
     ) t JOIN kiosks k USING (kiosk_id)
     WHERE ${windowSql("t")} AND ${blockedByEventsSql(s)} GROUP BY t.wave`,
    [rollout.rollout_id],
  );
  for (const r of rows) blocked.set(r.wave, r.n);
  return { note, blocked };
}

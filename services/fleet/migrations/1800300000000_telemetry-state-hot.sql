-- Up Migration
-- Telemetry updates each kiosk's latest state (kiosks.state, state_sampled_at) once per kiosk
-- per batch (services/fleet/src/events.ts). kiosks_paper, an index on an expression of
-- `state`, made every one of those updates write a new entry in each of the kiosks' nine
-- indexes (not HOT); without it the update changes no indexed column (last_seen_at only
-- when it is 30 s stale) and PostgreSQL updates the row in place, in the room fillfactor
-- leaves on each page. The query language's `paper` filter reads state's value from the
-- rows instead (a scan of kiosks, not an index).
DROP INDEX kiosks_paper;
ALTER TABLE kiosks SET (fillfactor = 70);
-- kiosk_facts' counters are upserted per batch too; no index holds them.
ALTER TABLE kiosk_facts SET (fillfactor = 70);

-- Down Migration
ALTER TABLE kiosk_facts RESET (fillfactor);
ALTER TABLE kiosks RESET (fillfactor);
CREATE INDEX kiosks_paper ON kiosks (((state->>'paperLevelPercent')::float8)) WHERE deleted_at IS NULL;

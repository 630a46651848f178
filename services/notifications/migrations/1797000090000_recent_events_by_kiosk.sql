-- Up Migration
-- A kiosk's telemetry sample applied after a newer one (link's events are applied two at a time)
-- is kept for dry runs when it differs from the kiosk's sample before it in time, which is
-- looked up here.
CREATE INDEX recent_events_kiosk ON recent_events (kiosk_id, kind, event_time);

-- Down Migration
DROP INDEX recent_events_kiosk;

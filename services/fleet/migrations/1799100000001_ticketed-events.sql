-- Up Migration
-- catalog's upcoming ticketed events as fleet last read them (rollouts/blackouts.ts): a rollout
-- keeps installs away from kiosks near an event, or leasing its seats, during its hours. The
-- last good read is kept, so a catalog down for a while changes nothing until it is too old.
CREATE TABLE ticketed_events (
  event_id         text PRIMARY KEY,
  name             text NOT NULL,
  starts_at        timestamptz NOT NULL,
  latitude         double precision,
  longitude        double precision,
  lease_kiosk_ids  text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX ticketed_events_start ON ticketed_events (starts_at);
-- One row: when the events were last read, and the last failure to read them.
CREATE TABLE ticketed_events_read (
  one           boolean PRIMARY KEY DEFAULT true CHECK (one),
  read_at       timestamptz,
  failed_at     timestamptz,
  error         text NOT NULL DEFAULT ''
);
INSERT INTO ticketed_events_read DEFAULT VALUES;

-- Down Migration
DROP TABLE ticketed_events_read;
DROP TABLE ticketed_events;

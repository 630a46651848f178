-- Up Migration
-- What link's events say about each kiosk (applied idempotently, in any order).
ALTER TABLE kiosks
  ADD COLUMN connected boolean NOT NULL DEFAULT false,
  ADD COLUMN connection_changed_at timestamptz,
  ADD COLUMN state jsonb,
  ADD COLUMN state_sampled_at timestamptz;

-- JetStream messages already applied (stream sequence), written in the same
-- transaction as their effect: a redelivered message changes nothing twice.
CREATE TABLE inbox (
  stream      text NOT NULL,
  seq         bigint NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream, seq)
);

-- Down Migration
DROP TABLE inbox;
ALTER TABLE kiosks DROP COLUMN connected, DROP COLUMN connection_changed_at, DROP COLUMN state, DROP COLUMN state_sampled_at;

-- Up Migration
-- Per-kiosk counts per time bucket (an hour by default, FLEET_FACTS_BUCKET_SECONDS), kept up
-- to date as sales, failed orders, telemetry and reconnections arrive (one upsert per batch),
-- so a rollout's gate sums a few rows per kiosk instead of scanning every sale and sample
-- (services/fleet/src/facts.ts, docs/rollouts.md). Kept two days, like kiosk_sales.
CREATE TABLE kiosk_facts (
  kiosk_id          text NOT NULL,
  bucket            timestamptz NOT NULL,
  sales             integer NOT NULL DEFAULT 0,
  -- Units of the SKU the gate compares with ai's forecast (ROLLOUT_AUTO_SKU).
  forecast_units    integer NOT NULL DEFAULT 0,
  failed_orders     integer NOT NULL DEFAULT 0,
  -- Failed orders other than abandoned holds (HOLD_EXPIRED).
  payment_failures  integer NOT NULL DEFAULT 0,
  samples           integer NOT NULL DEFAULT 0,
  -- Samples with an app error or a printer/scanner FAULT.
  faulty_samples    integer NOT NULL DEFAULT 0,
  -- Streams opened on the version the kiosk already ran (link's connected events; the restart
  -- into a new or reverted version is an install's, not counted).
  reconnects        integer NOT NULL DEFAULT 0,
  PRIMARY KEY (kiosk_id, bucket)
);
CREATE INDEX kiosk_facts_bucket ON kiosk_facts (bucket);

-- A running rollout's tick reads only the install reports that changed since its last read
-- (rollouts/engine.ts, syncTargets), not all of its kiosks' reports every second.
ALTER TABLE rollouts ADD COLUMN reports_synced_at timestamptz;
CREATE INDEX kiosk_updates_rollout_changed ON kiosk_updates (rollout_id, updated_at) WHERE rollout_id <> '';

-- Down Migration
DROP INDEX kiosk_updates_rollout_changed;
ALTER TABLE rollouts DROP COLUMN reports_synced_at;
DROP TABLE kiosk_facts;

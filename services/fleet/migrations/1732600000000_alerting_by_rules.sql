-- Up Migration
-- Whether a kiosk is alerting is judged by fleet's rules (services/fleet/src/kiosk-rules.ts,
-- whose thresholds clients read from FleetSummary.thresholds) when kiosks are read, no
-- longer by a generated column holding a second copy of the thresholds.
ALTER TABLE kiosks DROP COLUMN alerting;

-- Down Migration
ALTER TABLE kiosks
  ADD COLUMN alerting boolean GENERATED ALWAYS AS (
    state IS NOT NULL AND (
      jsonb_array_length(COALESCE(state->'errors', '[]'::jsonb)) > 0
      OR state->>'printerStatus' = 'FAULT' OR state->>'scannerStatus' = 'FAULT'
      OR (state->>'paperLevelPercent')::float8 < 10)
  ) STORED;

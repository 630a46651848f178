-- Up Migration
-- A rollout's target in each wave's plan, written to rollout_targets only when the wave starts
-- (services/fleet/src/rollouts/store.ts): creating a rollout of 100,000 kiosks writes a few
-- arrays, not 100,000 rows. rollout_waves.kiosks is the wave's size as planned, materialised how
-- many of its kiosks (in the plan's order) have their rollout_targets row.
ALTER TABLE rollout_waves
  ADD COLUMN kiosks integer NOT NULL DEFAULT 0,
  ADD COLUMN materialised integer NOT NULL DEFAULT 0;
-- Rollouts created before this migration have every row written.
UPDATE rollout_waves w SET kiosks = c.n, materialised = c.n
FROM (SELECT rollout_id, wave, count(*)::int AS n FROM rollout_targets GROUP BY 1, 2) c
WHERE c.rollout_id = w.rollout_id AND c.wave = w.wave;

-- Each wave's kiosks in the rollout's hash order, with what their rows will hold. Parallel
-- arrays; NULL: the rollout's own value (its window hours, its release) or, for from_versions,
-- the version the kiosk runs when its row is written.
CREATE TABLE rollout_wave_plans (
  rollout_id     uuid NOT NULL,
  wave           integer NOT NULL,
  kiosk_ids      text[] NOT NULL,
  timezones      text[] NOT NULL,
  window_starts  smallint[],
  window_ends    smallint[],
  release_ids    text[],
  from_versions  text[],
  PRIMARY KEY (rollout_id, wave),
  FOREIGN KEY (rollout_id, wave) REFERENCES rollout_waves
);

-- Down Migration
DROP TABLE rollout_wave_plans;
ALTER TABLE rollout_waves DROP COLUMN materialised, DROP COLUMN kiosks;

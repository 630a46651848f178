-- Up Migration
-- A wave plan's arrays are stored out of line but not compressed: compressing 100,000 kiosk ids
-- and time zones (pglz) took about a third of creating a rollout of 100,000 kiosks, and each
-- read (a gate's control cohort, a rollout's counts) would decompress them again. ~3 MB a
-- rollout of 100,000 kiosks.
ALTER TABLE rollout_wave_plans
  ALTER COLUMN kiosk_ids SET STORAGE EXTERNAL,
  ALTER COLUMN timezones SET STORAGE EXTERNAL,
  ALTER COLUMN window_starts SET STORAGE EXTERNAL,
  ALTER COLUMN window_ends SET STORAGE EXTERNAL,
  ALTER COLUMN release_ids SET STORAGE EXTERNAL,
  ALTER COLUMN from_versions SET STORAGE EXTERNAL;

-- Down Migration
ALTER TABLE rollout_wave_plans
  ALTER COLUMN kiosk_ids SET STORAGE EXTENDED,
  ALTER COLUMN timezones SET STORAGE EXTENDED,
  ALTER COLUMN window_starts SET STORAGE EXTENDED,
  ALTER COLUMN window_ends SET STORAGE EXTENDED,
  ALTER COLUMN release_ids SET STORAGE EXTENDED,
  ALTER COLUMN from_versions SET STORAGE EXTENDED;

-- Up Migration
-- A kiosk's UpdateStatus counts for the rollout that sent it the release (releases/updates.ts
-- looks its (kiosk, release) up here), not for the rollout_id the kiosk names.
CREATE INDEX rollout_targets_kiosk_release ON rollout_targets (kiosk_id, release_id, sent_at DESC) WHERE sent_at IS NOT NULL;

-- Down Migration
DROP INDEX rollout_targets_kiosk_release;

-- Up Migration
-- A refresh whose answer was lost (the network dropped while it was in flight) is retried with
-- the token it spent. Within REFRESH_REUSE_GRACE the retry is answered again: the token that
-- answer carried (never used) is superseded by a new one. replaced_by links a spent token to the
-- token that replaced it; superseded_at marks a token replaced before it was ever used, so
-- presenting it later is taken for theft like any spent token.
ALTER TABLE refresh_tokens ADD COLUMN replaced_by uuid;
ALTER TABLE refresh_tokens ADD COLUMN superseded_at timestamptz;

-- Down Migration
ALTER TABLE refresh_tokens DROP COLUMN superseded_at;
ALTER TABLE refresh_tokens DROP COLUMN replaced_by;

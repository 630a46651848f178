-- Up Migration
-- A session's absolute lifetime counts from its login: every refresh token of a family
-- carries when the family began (existing families: their first token).
ALTER TABLE refresh_tokens ADD COLUMN session_started_at timestamptz;
UPDATE refresh_tokens r SET session_started_at = f.started
  FROM (SELECT family_id, min(issued_at) AS started FROM refresh_tokens GROUP BY family_id) f
  WHERE r.family_id = f.family_id;
ALTER TABLE refresh_tokens ALTER COLUMN session_started_at SET NOT NULL;

-- Revoking a kiosk voids the enrollment codes it had not used yet.
ALTER TABLE enrollment_codes ADD COLUMN voided_at timestamptz;
CREATE INDEX enrollment_codes_kiosk_unused ON enrollment_codes (kiosk_id) WHERE used_at IS NULL AND voided_at IS NULL;

-- Down Migration
DROP INDEX enrollment_codes_kiosk_unused;
ALTER TABLE enrollment_codes DROP COLUMN voided_at;
ALTER TABLE refresh_tokens DROP COLUMN session_started_at;

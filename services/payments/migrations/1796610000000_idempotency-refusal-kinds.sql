-- Up Migration
-- Stored refusals name their domain kind (runtime errors.ts), not a gRPC code number:
-- {"code": 5, …} becomes {"kind": "notFound", …}. ResourceExhausted ("exhausted") is a
-- stored refusal now too (it was not stored here before, so no row carries it).
UPDATE idempotency_keys
SET error = (error - 'code') || jsonb_build_object('kind', CASE (error ->> 'code')::int
  WHEN 3 THEN 'invalid'
  WHEN 5 THEN 'notFound'
  WHEN 6 THEN 'alreadyExists'
  WHEN 7 THEN 'permissionDenied'
  WHEN 8 THEN 'exhausted'
  WHEN 9 THEN 'failedPrecondition'
  WHEN 11 THEN 'outOfRange'
END)
WHERE error ? 'code';
-- Any other number was never stored; if one were, the key would answer it forever: forget it.
DELETE FROM idempotency_keys WHERE error IS NOT NULL AND NOT (error ? 'kind' AND error ->> 'kind' IS NOT NULL);

-- Down Migration
UPDATE idempotency_keys
SET error = (error - 'kind') || jsonb_build_object('code', CASE error ->> 'kind'
  WHEN 'invalid' THEN 3
  WHEN 'notFound' THEN 5
  WHEN 'alreadyExists' THEN 6
  WHEN 'permissionDenied' THEN 7
  WHEN 'exhausted' THEN 8
  WHEN 'failedPrecondition' THEN 9
  WHEN 'outOfRange' THEN 11
END)
WHERE error ? 'kind';

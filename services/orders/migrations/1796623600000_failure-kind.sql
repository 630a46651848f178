-- Up Migration
-- The refusal CreateOrder answered is kept as its domain kind (runtime errors.ts), not as a
-- gRPC code number: failure_rpc_code (int) becomes failure_kind (text).
ALTER TABLE orders ADD COLUMN failure_kind text
  CHECK (failure_kind IN ('invalid', 'notFound', 'alreadyExists', 'failedPrecondition', 'exhausted', 'permissionDenied', 'outOfRange'));
UPDATE orders SET failure_kind = CASE failure_rpc_code
  WHEN 3 THEN 'invalid'
  WHEN 5 THEN 'notFound'
  WHEN 6 THEN 'alreadyExists'
  WHEN 7 THEN 'permissionDenied'
  WHEN 8 THEN 'exhausted'
  WHEN 9 THEN 'failedPrecondition'
  WHEN 11 THEN 'outOfRange'
END
WHERE failure_rpc_code IS NOT NULL;
ALTER TABLE orders DROP COLUMN failure_rpc_code;

-- Down Migration
ALTER TABLE orders ADD COLUMN failure_rpc_code int;
UPDATE orders SET failure_rpc_code = CASE failure_kind
  WHEN 'invalid' THEN 3
  WHEN 'notFound' THEN 5
  WHEN 'alreadyExists' THEN 6
  WHEN 'permissionDenied' THEN 7
  WHEN 'exhausted' THEN 8
  WHEN 'failedPrecondition' THEN 9
  WHEN 'outOfRange' THEN 11
END
WHERE failure_kind IS NOT NULL;
ALTER TABLE orders DROP COLUMN failure_kind;

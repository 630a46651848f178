-- Up Migration
-- The service's idempotency records (packages/runtime/src/idempotency.ts): for each caller
-- (scope = principalScope) and key, what was asked (hash of the method and the message
-- without its key) and what was answered: the response, or a stored refusal
-- ({"kind", "message", "violations", "info"}; never a gRPC code). Kept for the service's
-- IDEMPOTENCY_KEY_TTL. Added to a service by migrate(…, { idempotencyKeys: true }).
CREATE TABLE IF NOT EXISTS idempotency_keys (
  scope        text NOT NULL,
  key          text NOT NULL,
  method       text NOT NULL,
  request_hash bytea NOT NULL,
  response     bytea,
  error        jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);

-- Down Migration
-- Nothing: a service that made the table in its own migrations (payments) drops it there.

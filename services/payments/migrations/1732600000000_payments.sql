-- Up Migration
-- Payment intents, refunds, the work payments owes the provider, the provider's events
-- seen, idempotency keys and the double-entry ledger.

CREATE TABLE payment_intents (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Listing order (newest first) and the page cursor.
  seq                 bigserial UNIQUE,
  kiosk_id            text NOT NULL,
  order_id            text NOT NULL,
  amount_minor        bigint NOT NULL CHECK (amount_minor > 0),
  currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  state               text NOT NULL CHECK (state IN ('requires_payment', 'processing', 'succeeded', 'failed', 'canceled', 'partially_refunded', 'refunded')),
  refunded_minor      bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
  description         text NOT NULL DEFAULT '',
  payment_method      text NOT NULL DEFAULT '',
  failure_code        text NOT NULL DEFAULT '',
  failure_message     text NOT NULL DEFAULT '',
  cancellation_reason text NOT NULL DEFAULT '',
  provider_charge_id  text UNIQUE,
  -- When it entered PROCESSING: the confirmation timeout counts from here.
  processing_since    timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
-- One live intent per order: a retry with a fresh idempotency key cannot charge twice.
CREATE UNIQUE INDEX payment_intents_live_order ON payment_intents (kiosk_id, order_id) WHERE state NOT IN ('failed', 'canceled');
CREATE INDEX payment_intents_processing ON payment_intents (processing_since) WHERE state = 'processing';
CREATE INDEX payment_intents_kiosk ON payment_intents (kiosk_id, seq);
CREATE INDEX payment_intents_order ON payment_intents (order_id);

CREATE TABLE refunds (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  intent_id          uuid NOT NULL REFERENCES payment_intents (id),
  amount_minor       bigint NOT NULL CHECK (amount_minor > 0),
  currency           text NOT NULL,
  reason             text NOT NULL,
  state              text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
  -- Made by payments for a capture confirmed after the intent had failed.
  automatic          boolean NOT NULL DEFAULT false,
  requested_by       text NOT NULL,
  failure_code       text NOT NULL DEFAULT '',
  provider_refund_id text UNIQUE,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_intent ON refunds (intent_id, created_at);

-- Calls payments owes the provider (submit a charge, cancel it, submit a refund), made by
-- the provider worker with retries. Each carries its own provider idempotency key, so a
-- retried call is one charge / one refund at the provider.
CREATE TABLE provider_jobs (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind            text NOT NULL CHECK (kind IN ('charge', 'cancel_charge', 'refund')),
  intent_id       uuid NOT NULL REFERENCES payment_intents (id),
  refund_id       uuid REFERENCES refunds (id),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text NOT NULL DEFAULT '',
  done_at         timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX provider_jobs_due ON provider_jobs (next_attempt_at) WHERE done_at IS NULL;

-- Every provider webhook event applied, by the provider's event id: a duplicate or a
-- replay changes nothing twice.
CREATE TABLE provider_events (
  event_id    text PRIMARY KEY,
  type        text NOT NULL,
  outcome     text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);

-- (scope = the caller, key) → what was asked (hash) and what was answered.
CREATE TABLE idempotency_keys (
  scope        text NOT NULL,
  key          text NOT NULL,
  method       text NOT NULL,
  request_hash bytea NOT NULL,
  response     bytea,
  error        jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- The ledger. Debits are positive, credits negative; every transaction's entries sum to
-- zero per currency, checked by PostgreSQL at commit; entries are never changed.
CREATE TABLE ledger_transactions (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind       text NOT NULL CHECK (kind IN ('capture', 'refund', 'late_capture', 'late_capture_refund')),
  intent_id  uuid NOT NULL REFERENCES payment_intents (id),
  refund_id  uuid REFERENCES refunds (id),
  created_at timestamptz NOT NULL DEFAULT now()
);
-- A capture is posted once per intent, a refund once per refund.
CREATE UNIQUE INDEX ledger_transactions_once ON ledger_transactions (kind, intent_id, refund_id) NULLS NOT DISTINCT;

CREATE TABLE ledger_entries (
  id             bigserial PRIMARY KEY,
  transaction_id uuid NOT NULL REFERENCES ledger_transactions (id),
  account        text NOT NULL,
  currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount_minor   bigint NOT NULL CHECK (amount_minor <> 0),
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);
CREATE INDEX ledger_entries_account ON ledger_entries (account, id);

CREATE FUNCTION ledger_transaction_balances() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM ledger_entries WHERE transaction_id = NEW.transaction_id GROUP BY currency HAVING sum(amount_minor) <> 0) THEN
    RAISE EXCEPTION 'ledger transaction % does not balance', NEW.transaction_id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_entries_balance AFTER INSERT ON ledger_entries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balances();

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the ledger is append-only';
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- Down Migration
DROP TABLE ledger_entries;
DROP TABLE ledger_transactions;
DROP FUNCTION ledger_append_only();
DROP FUNCTION ledger_transaction_balances();
DROP TABLE idempotency_keys;
DROP TABLE provider_events;
DROP TABLE provider_jobs;
DROP TABLE refunds;
DROP TABLE payment_intents;

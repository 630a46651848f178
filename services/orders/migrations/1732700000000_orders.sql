-- Up Migration
-- One row per sale attempt. (kiosk_id, idempotency_key) is the kiosk's idempotency
-- record: a retry finds its order here and gets the same answer.
CREATE TABLE orders (
  id                 uuid PRIMARY KEY,
  kiosk_id           text NOT NULL,
  idempotency_key    text NOT NULL,
  request_hash       bytea NOT NULL,
  state              text NOT NULL CHECK (state IN ('created', 'pending_payment', 'completed', 'failed', 'partially_refunded', 'refunded')),
  currency           text NOT NULL DEFAULT '',
  total_minor        bigint NOT NULL DEFAULT 0,
  refunded_minor     bigint NOT NULL DEFAULT 0,
  payment_intent_id  text NOT NULL DEFAULT '',
  failure_code       text NOT NULL DEFAULT '',
  failure_message    text NOT NULL DEFAULT '',
  -- The refusal CreateOrder answered (code), so a retry answers it again.
  failure_rpc_code   int,
  -- The kiosk's device credential, kept only while the worker may still act for the
  -- kiosk (commit, release, refund a late payment); wiped once that is settled.
  kiosk_credential   text,
  receipt            bytea,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  completed_at       timestamptz,
  UNIQUE (kiosk_id, idempotency_key)
);
CREATE INDEX orders_by_time ON orders (created_at DESC, id DESC);
CREATE INDEX orders_by_kiosk ON orders (kiosk_id, created_at DESC, id DESC);
CREATE INDEX orders_completed ON orders (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX orders_credential_kept ON orders (updated_at) WHERE kiosk_credential IS NOT NULL;

CREATE TABLE order_lines (
  order_id               uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  line_number            int NOT NULL,
  sku                    text NOT NULL DEFAULT '',
  quantity               bigint NOT NULL CHECK (quantity > 0),
  event_id               text NOT NULL DEFAULT '',
  seat_id                text NOT NULL DEFAULT '',
  tier_id                text NOT NULL DEFAULT '',
  unit_price_minor       bigint NOT NULL,
  tax_rate_basis_points  int NOT NULL DEFAULT 0,
  refunded_quantity      bigint NOT NULL DEFAULT 0 CHECK (refunded_quantity BETWEEN 0 AND quantity),
  PRIMARY KEY (order_id, line_number)
);

CREATE TABLE tickets (
  id          uuid PRIMARY KEY,
  order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  event_id    text NOT NULL,
  seat_id     text NOT NULL,
  qr_payload  text NOT NULL,
  void        boolean NOT NULL DEFAULT false,
  issued_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (order_id, event_id, seat_id)
);

CREATE SEQUENCE receipt_numbers;

-- Operators' refunds, keyed by (who asked, their idempotency key).
CREATE TABLE refunds (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  scope            text NOT NULL,
  idempotency_key  text NOT NULL,
  request_hash     bytea NOT NULL,
  order_id         uuid NOT NULL REFERENCES orders (id),
  amount_minor     bigint NOT NULL,
  -- [{"line": n, "quantity": q}]
  lines            jsonb NOT NULL,
  reason           text NOT NULL,
  state            text NOT NULL CHECK (state IN ('requested', 'succeeded')),
  requested_by     text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (scope, idempotency_key)
);

-- Events the completion worker has applied (stream, sequence), written with the effect.
CREATE TABLE inbox (
  stream      text NOT NULL,
  seq         bigint NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream, seq)
);

-- Events that must follow a change (see packages/runtime/src/outbox.ts).
CREATE TABLE outbox (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq          bigserial,
  subject      text NOT NULL,
  payload      bytea NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;

-- Down Migration
DROP TABLE outbox;
DROP TABLE inbox;
DROP TABLE refunds;
DROP SEQUENCE receipt_numbers;
DROP TABLE tickets;
DROP TABLE order_lines;
DROP TABLE orders;

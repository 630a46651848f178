-- Up Migration
-- customers' own schema: loyalty members, their consents and points ledger, orders members were
-- attached to, the completed sales customers learned from orders' events, back-in-stock
-- requests, reviews, calls for help, and the outbox (stream CUSTOMERS).

-- A member's personal data is email and phone (both optional, normalised) and the identifiers a
-- kiosk scans; erasure sets them NULL and erased_at, keeping the row (the ledger refers to it).
CREATE TABLE members (
  member_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  card_number        text UNIQUE,
  qr_token           text UNIQUE,
  email              text,
  phone              text,
  points_balance     bigint NOT NULL DEFAULT 0 CHECK (points_balance >= 0),
  enrolled_kiosk_id  text NOT NULL DEFAULT '',
  created_at         timestamptz NOT NULL DEFAULT now(),
  last_activity_at   timestamptz NOT NULL DEFAULT now(),
  erased_at          timestamptz
);
CREATE INDEX members_email ON members (email) WHERE email IS NOT NULL;
CREATE INDEX members_phone ON members (phone) WHERE phone IS NOT NULL;
CREATE INDEX members_activity ON members (last_activity_at) WHERE erased_at IS NULL;

CREATE TABLE consents (
  consent_id   bigserial PRIMARY KEY,
  member_id    uuid NOT NULL REFERENCES members (member_id),
  purpose      text NOT NULL CHECK (purpose IN ('loyalty', 'marketing_email', 'marketing_sms')),
  granted      boolean NOT NULL,
  recorded_by  text NOT NULL,
  recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_member ON consents (member_id, purpose, recorded_at DESC);

-- Orders a kiosk attached a member to (before or after checkout).
CREATE TABLE member_orders (
  order_id     uuid PRIMARY KEY,
  member_id    uuid NOT NULL REFERENCES members (member_id),
  kiosk_id     text NOT NULL,
  attached_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX member_orders_member ON member_orders (member_id, attached_at DESC);

-- Completed orders from orders' events (orders.order.<id>.completed). Those without a member are
-- kept only SALE_MATCH_WINDOW (an attachment may come after the completion) and for reviews.
CREATE TABLE sales (
  order_id      uuid PRIMARY KEY,
  kiosk_id      text NOT NULL,
  total_minor   bigint NOT NULL,
  currency      text NOT NULL,
  lines         jsonb NOT NULL,
  completed_at  timestamptz NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sales_received ON sales (received_at);

-- Points earned and redeemed; never updated or deleted (erasure keeps it). One earning per order.
CREATE TABLE points_ledger (
  entry_id       bigserial PRIMARY KEY,
  member_id      uuid NOT NULL REFERENCES members (member_id),
  kind           text NOT NULL CHECK (kind IN ('earn', 'redeem')),
  points         bigint NOT NULL,
  order_id       uuid,
  kiosk_id       text NOT NULL,
  balance_after  bigint NOT NULL CHECK (balance_after >= 0),
  created_at     timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'earn' AND points > 0) OR (kind = 'redeem' AND points < 0))
);
CREATE UNIQUE INDEX points_ledger_earn_once ON points_ledger (order_id) WHERE kind = 'earn';
CREATE INDEX points_ledger_member ON points_ledger (member_id, entry_id);

-- A buyer's contact for a sold-out product at a kiosk; forgotten (NULL) once notified or expired.
CREATE TABLE back_in_stock_requests (
  request_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kiosk_id     text NOT NULL,
  sku          text NOT NULL,
  email        text,
  phone        text,
  state        text NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'notified', 'expired')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  notified_at  timestamptz
);
CREATE INDEX back_in_stock_waiting ON back_in_stock_requests (kiosk_id, sku) WHERE state = 'waiting';
CREATE INDEX back_in_stock_created ON back_in_stock_requests (created_at DESC);

CREATE TABLE reviews (
  review_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  order_id      uuid NOT NULL,
  kiosk_id      text NOT NULL,
  sku           text NOT NULL,
  rating        int NOT NULL CHECK (rating BETWEEN 1 AND 5),
  text          text NOT NULL DEFAULT '',
  state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  moderated_at  timestamptz,
  moderated_by  text NOT NULL DEFAULT '',
  UNIQUE (order_id, sku)
);
CREATE INDEX reviews_sku ON reviews (sku, created_at DESC);
CREATE INDEX reviews_created ON reviews (created_at DESC);

CREATE TABLE help_requests (
  help_request_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kiosk_id         text NOT NULL,
  caller           text NOT NULL CHECK (caller IN ('buyer', 'technician')),
  message          text NOT NULL DEFAULT '',
  requested_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX help_requests_kiosk ON help_requests (kiosk_id, requested_at DESC);

CREATE TABLE outbox (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq           bigserial,
  subject       text NOT NULL,
  payload       bytea NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;

-- Down Migration
DROP TABLE outbox, help_requests, reviews, back_in_stock_requests, points_ledger, sales, member_orders, consents, members;

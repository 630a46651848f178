-- Up Migration
-- pg_trgm (similarity for typos in search) is a trusted extension: the database owner
-- may create it. It lives in public, which is on every catalog session's search path.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE products (
  sku                    text PRIMARY KEY,
  name                   text NOT NULL,
  description            text NOT NULL DEFAULT '',
  category               text NOT NULL,
  price_minor            bigint NOT NULL CHECK (price_minor >= 0),
  currency               char(3) NOT NULL,
  tax_rate_basis_points  integer NOT NULL CHECK (tax_rate_basis_points BETWEEN 0 AND 10000),
  image_urls             text[] NOT NULL DEFAULT '{}',
  active                 boolean NOT NULL DEFAULT true,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  -- Full text: name weighs most, then category, then description (English stemming).
  search                 tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', name), 'A') ||
    setweight(to_tsvector('english', category), 'B') ||
    setweight(to_tsvector('english', description), 'C')
  ) STORED,
  -- What trigram similarity (typos) is measured against.
  search_text            text GENERATED ALWAYS AS (lower(name || ' ' || category)) STORED
);
CREATE INDEX products_search ON products USING gin (search);
CREATE INDEX products_search_trgm ON products USING gin (search_text public.gin_trgm_ops);
CREATE INDEX products_category ON products (lower(category), sku);

-- One row per kiosk and SKU it stocks. available = on_hand - reserved never goes
-- below zero: reservations take units with a conditional UPDATE, and the CHECK is the
-- last line of defence.
CREATE TABLE stock (
  kiosk_id             text NOT NULL,
  sku                  text NOT NULL REFERENCES products (sku),
  on_hand              bigint NOT NULL DEFAULT 0,
  reserved             bigint NOT NULL DEFAULT 0,
  low_stock_threshold  bigint NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kiosk_id, sku),
  CHECK (reserved >= 0 AND reserved <= on_hand)
);
CREATE INDEX stock_low ON stock (kiosk_id, sku) WHERE on_hand <= low_stock_threshold;

CREATE TABLE restocks (
  restock_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq            bigserial,
  kiosk_id       text NOT NULL,
  sku            text NOT NULL,
  quantity       bigint NOT NULL CHECK (quantity > 0),
  reason         text NOT NULL,
  restocked_by   text NOT NULL,
  on_hand_after  bigint NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (kiosk_id, sku) REFERENCES stock (kiosk_id, sku)
);
CREATE INDEX restocks_by_kiosk ON restocks (kiosk_id, seq DESC);

CREATE TABLE events (
  event_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name         text NOT NULL,
  venue        text NOT NULL,
  description  text NOT NULL DEFAULT '',
  start_time   timestamptz NOT NULL,
  active       boolean NOT NULL DEFAULT true,
  -- The seat map as created (sections, rows, seat numbers, tiers), for GetEvent.
  seat_map     jsonb NOT NULL,
  seat_count   integer NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_start ON events (start_time, event_id);

CREATE TABLE price_tiers (
  event_id     uuid NOT NULL REFERENCES events (event_id),
  tier_id      text NOT NULL,
  name         text NOT NULL,
  price_minor  bigint NOT NULL CHECK (price_minor >= 0),
  currency     char(3) NOT NULL,
  PRIMARY KEY (event_id, tier_id)
);

-- One row per seat. reservation_id names the reservation holding or having bought it:
-- the fencing token a commit or an expiry checks, so a reservation whose hold lapsed
-- and was taken by another can neither sell nor free the seat.
CREATE TABLE seats (
  event_id         uuid NOT NULL REFERENCES events (event_id),
  seat_id          text NOT NULL,
  section_id       text NOT NULL,
  row_id           text NOT NULL,
  number           text NOT NULL,
  tier_id          text NOT NULL,
  position         integer NOT NULL,
  state            text NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'held', 'sold')),
  reservation_id   uuid,
  hold_expires_at  timestamptz,
  PRIMARY KEY (event_id, seat_id),
  FOREIGN KEY (event_id, tier_id) REFERENCES price_tiers (event_id, tier_id),
  CHECK ((state = 'available') = (reservation_id IS NULL)),
  CHECK ((state = 'held') = (hold_expires_at IS NOT NULL))
);
CREATE INDEX seats_by_position ON seats (event_id, position);

CREATE TABLE reservations (
  reservation_id  uuid PRIMARY KEY,
  kiosk_id        text NOT NULL,
  state           text NOT NULL CHECK (state IN ('held', 'committed', 'released', 'expired')),
  -- sha256 of the requested items and seats: a retry with other contents is refused.
  request_hash    text NOT NULL,
  total_minor     bigint NOT NULL,
  currency        text NOT NULL,
  expires_at      timestamptz NOT NULL,
  created_by      text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_due ON reservations (expires_at) WHERE state = 'held';
CREATE INDEX reservations_held_by_kiosk ON reservations (kiosk_id) WHERE state = 'held';

CREATE TABLE reservation_items (
  reservation_id         uuid NOT NULL REFERENCES reservations (reservation_id),
  sku                    text NOT NULL,
  quantity               bigint NOT NULL CHECK (quantity > 0),
  unit_price_minor       bigint NOT NULL,
  currency               char(3) NOT NULL,
  tax_rate_basis_points  integer NOT NULL,
  PRIMARY KEY (reservation_id, sku)
);

CREATE TABLE reservation_seats (
  reservation_id  uuid NOT NULL REFERENCES reservations (reservation_id),
  event_id        uuid NOT NULL,
  seat_id         text NOT NULL,
  tier_id         text NOT NULL,
  price_minor     bigint NOT NULL,
  currency        char(3) NOT NULL,
  PRIMARY KEY (reservation_id, event_id, seat_id)
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
DROP TABLE reservation_seats;
DROP TABLE reservation_items;
DROP TABLE reservations;
DROP TABLE seats;
DROP TABLE price_tiers;
DROP TABLE events;
DROP TABLE restocks;
DROP TABLE stock;
DROP TABLE products;

-- Up Migration
-- Leases (docs/offline.md): units and seats granted to one kiosk to sell without asking,
-- offline included. Leased units count in stock.reserved and leased seats are 'held'
-- with reservation_id = lease_id (the same fencing token as a reservation's), so no
-- other sale can take them; hold_until (expires_at plus the sync window) is the seats'
-- hold_expires_at. Sales synced through orders move them to sold (lease_sales, once per
-- sale); the unsold rest goes back when the lease is returned, revoked or expires.
CREATE TABLE leases (
  lease_id      uuid PRIMARY KEY,
  kiosk_id      text NOT NULL,
  state         text NOT NULL CHECK (state IN ('active', 'returned', 'revoked', 'expired')),
  source        text NOT NULL CHECK (source IN ('kiosk', 'operator', 'forecast')),
  -- sha256 of the requested items and seats: a retry with other contents is refused.
  request_hash  text NOT NULL,
  expires_at    timestamptz NOT NULL,
  hold_until    timestamptz NOT NULL,
  created_by    text NOT NULL,
  end_reason    text NOT NULL DEFAULT '',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (hold_until >= expires_at)
);
CREATE INDEX leases_by_kiosk ON leases (kiosk_id, created_at DESC, lease_id DESC);
CREATE INDEX leases_by_time ON leases (created_at DESC, lease_id DESC);
CREATE INDEX leases_due ON leases (hold_until) WHERE state = 'active';

CREATE TABLE lease_items (
  lease_id               uuid NOT NULL REFERENCES leases (lease_id),
  sku                    text NOT NULL,
  quantity               bigint NOT NULL CHECK (quantity > 0),
  sold                   bigint NOT NULL DEFAULT 0,
  unit_price_minor       bigint NOT NULL,
  currency               char(3) NOT NULL,
  tax_rate_basis_points  integer NOT NULL,
  PRIMARY KEY (lease_id, sku),
  CHECK (sold BETWEEN 0 AND quantity)
);

CREATE TABLE lease_seats (
  lease_id     uuid NOT NULL REFERENCES leases (lease_id),
  event_id     uuid NOT NULL,
  seat_id      text NOT NULL,
  tier_id      text NOT NULL,
  price_minor  bigint NOT NULL,
  currency     char(3) NOT NULL,
  sold         boolean NOT NULL DEFAULT false,
  PRIMARY KEY (lease_id, event_id, seat_id)
);

-- One row per sale committed against a lease (orders' order id), with what it took, so
-- a retried CommitLeaseSale answers the same and moves nothing twice.
CREATE TABLE lease_sales (
  sale_id     uuid PRIMARY KEY,
  lease_id    uuid NOT NULL REFERENCES leases (lease_id),
  kiosk_id    text NOT NULL,
  sold_at     timestamptz NOT NULL,
  taken       jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lease_sales_by_lease ON lease_sales (lease_id);

-- Down Migration
DROP TABLE lease_sales;
DROP TABLE lease_seats;
DROP TABLE lease_items;
DROP TABLE leases;

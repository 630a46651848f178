-- Up Migration
-- catalog's stock levels as ai last read them (InventoryService.ListStock, as ai).
CREATE TABLE stock_levels (
  kiosk_id    text NOT NULL,
  sku         text NOT NULL,
  on_hand     bigint NOT NULL,
  available   bigint NOT NULL,
  -- catalog's update_time of the level.
  stock_time  timestamptz,
  fetched_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kiosk_id, sku)
);

-- Which kiosk × product is above the stock-out alert threshold (published once per crossing).
CREATE TABLE stockout_alerts (
  kiosk_id     text NOT NULL,
  sku          text NOT NULL,
  firing       boolean NOT NULL,
  probability  double precision NOT NULL,
  changed_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kiosk_id, sku)
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
DROP TABLE stockout_alerts;
DROP TABLE stock_levels;

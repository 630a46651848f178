-- Up Migration
-- Imported sales history (HistoryService.ImportHistory). What each import said about a
-- kiosk × SKU × UTC day, kept apart from sales_daily so that a re-import replaces its own
-- part (sales_daily.quantity = what orders recorded + what the latest import said).
CREATE TABLE history_imports (
  import_id      uuid PRIMARY KEY,
  source         text NOT NULL,
  format         text NOT NULL,
  lines          bigint NOT NULL,
  sale_rows      bigint NOT NULL,
  stockout_rows  bigint NOT NULL,
  days           bigint NOT NULL,
  days_replaced  bigint NOT NULL,
  first_day      date,
  last_day       date,
  imported_by    text NOT NULL,
  imported_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE imported_days (
  kiosk_id          text NOT NULL,
  sku               text NOT NULL,
  day               date NOT NULL,
  quantity          bigint NOT NULL CHECK (quantity >= 0),
  unit_price_minor  bigint NOT NULL CHECK (unit_price_minor > 0),
  stockout          boolean NOT NULL,
  import_id         uuid NOT NULL REFERENCES history_imports,
  PRIMARY KEY (kiosk_id, sku, day)
);

-- Order baskets (completed orders' product SKUs), for "bought together" recommendations.
CREATE TABLE baskets (
  order_id      text PRIMARY KEY,
  kiosk_id      text NOT NULL,
  skus          text[] NOT NULL,
  completed_at  timestamptz NOT NULL,
  source        text NOT NULL
);
CREATE INDEX baskets_kiosk ON baskets (kiosk_id, completed_at);

-- Counts kept with each basket, in the same transaction: baskets per kiosk, baskets holding
-- each SKU, baskets holding each pair (both orders: sku → other). kiosk_id '' is the fleet
-- (kiosk ids are never empty).
CREATE TABLE basket_totals (
  kiosk_id  text PRIMARY KEY,
  baskets   bigint NOT NULL
);
CREATE TABLE basket_items (
  kiosk_id  text NOT NULL,
  sku       text NOT NULL,
  baskets   bigint NOT NULL,
  PRIMARY KEY (kiosk_id, sku)
);
CREATE TABLE basket_pairs (
  kiosk_id  text NOT NULL,
  sku       text NOT NULL,
  other     text NOT NULL,
  baskets   bigint NOT NULL,
  PRIMARY KEY (kiosk_id, sku, other)
);

-- Down Migration
DROP TABLE basket_pairs;
DROP TABLE basket_items;
DROP TABLE basket_totals;
DROP TABLE baskets;
DROP TABLE imported_days;
DROP TABLE history_imports;

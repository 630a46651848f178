-- Up Migration
-- Commerce facts the fleet query language can filter on (sales_1h, sales_24h,
-- revenue_24h): completed sales from stream ORDERS, kept two days (services/fleet/src/sales.ts).
CREATE TABLE kiosk_sales (
  order_id      text PRIMARY KEY,
  kiosk_id      text NOT NULL,
  completed_at  timestamptz NOT NULL,
  total_minor   bigint NOT NULL,
  currency      text NOT NULL DEFAULT ''
);
CREATE INDEX kiosk_sales_kiosk ON kiosk_sales (kiosk_id, completed_at);
CREATE INDEX kiosk_sales_completed ON kiosk_sales (completed_at);

-- Down Migration
DROP TABLE kiosk_sales;

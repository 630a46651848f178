-- Up Migration
-- Back-in-stock requests at nearby kiosks (issue 22): a request may also be met by a restock
-- at a kiosk within nearby_km of the one it was made at, or of its group. Kiosks' groups and
-- locations come from fleet's registry events (stream FLEET) into kiosk_places, customers'
-- own copy; notified_kiosk_id is where the request was met.
ALTER TABLE back_in_stock_requests
  ADD COLUMN nearby_km double precision NOT NULL DEFAULT 0 CHECK (nearby_km >= 0 AND nearby_km <= 50),
  ADD COLUMN same_group boolean NOT NULL DEFAULT false,
  ADD COLUMN notified_kiosk_id text;
CREATE INDEX back_in_stock_scoped ON back_in_stock_requests (sku) WHERE state = 'waiting' AND (nearby_km > 0 OR same_group);

CREATE TABLE kiosk_places (
  kiosk_id    text PRIMARY KEY,
  group_id    text NOT NULL DEFAULT '',
  latitude    double precision,
  longitude   double precision,
  address     text NOT NULL DEFAULT '',
  deleted     boolean NOT NULL DEFAULT false,
  changed_at  timestamptz NOT NULL
);

-- Down Migration
DROP TABLE kiosk_places;
DROP INDEX back_in_stock_scoped;
ALTER TABLE back_in_stock_requests DROP COLUMN nearby_km, DROP COLUMN same_group, DROP COLUMN notified_kiosk_id;

-- Up Migration
-- Rule kind stockout_predicted: ai's stock-out predictions (stream AI, ai.stockout.<kiosk>.predicted
-- | .cleared), optionally for one product (rules.sku); its for-duration may be zero (fire at once).
ALTER TABLE rules DROP CONSTRAINT rules_kind_check;
ALTER TABLE rules ADD CONSTRAINT rules_kind_check CHECK (kind IN ('kiosk_offline', 'low_paper', 'printer_fault', 'stockout_predicted'));
ALTER TABLE rules DROP CONSTRAINT rules_for_ms_check;
ALTER TABLE rules ADD CONSTRAINT rules_for_ms_check CHECK (for_ms > 0 OR (kind = 'stockout_predicted' AND for_ms = 0));
ALTER TABLE rules ADD COLUMN sku text NOT NULL DEFAULT '';

-- ai's current prediction per kiosk × product; event_time is the newest applied event's time,
-- so an older event changes nothing.
CREATE TABLE stockouts (
  kiosk_id    text NOT NULL,
  sku         text NOT NULL,
  predicted   boolean NOT NULL,
  probability double precision NOT NULL,
  -- What an alert opened from it says.
  summary     text NOT NULL DEFAULT '',
  event_time  timestamptz NOT NULL,
  PRIMARY KEY (kiosk_id, sku)
);

-- An alert is per rule, kiosk and product ('' for the kinds about the kiosk itself).
ALTER TABLE alerts ADD COLUMN sku text NOT NULL DEFAULT '';
DROP INDEX alerts_open;
CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, kiosk_id, sku) WHERE state IN ('pending', 'firing', 'acknowledged');

-- Down Migration
DELETE FROM alert_changes WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind = 'stockout_predicted');
DELETE FROM alerts WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind = 'stockout_predicted');
DELETE FROM rule_versions WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind = 'stockout_predicted');
DELETE FROM rules WHERE kind = 'stockout_predicted';
DROP INDEX alerts_open;
CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, kiosk_id) WHERE state IN ('pending', 'firing', 'acknowledged');
ALTER TABLE alerts DROP COLUMN sku;
DROP TABLE stockouts;
ALTER TABLE rules DROP COLUMN sku;
ALTER TABLE rules DROP CONSTRAINT rules_for_ms_check;
ALTER TABLE rules ADD CONSTRAINT rules_for_ms_check CHECK (for_ms > 0);
ALTER TABLE rules DROP CONSTRAINT rules_kind_check;
ALTER TABLE rules ADD CONSTRAINT rules_kind_check CHECK (kind IN ('kiosk_offline', 'low_paper', 'printer_fault'));

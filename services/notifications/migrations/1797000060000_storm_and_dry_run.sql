-- Up Migration
-- A label change updates the kiosk's pending alerts (evaluate.ts): found by kiosk, not by
-- scanning every alert (a storm leaves 10,000 open).
CREATE INDEX alerts_kiosk_open ON alerts (kiosk_id) WHERE state IN ('pending', 'firing', 'acknowledged');
-- The grouping step joins waiting changes to their alerts' rows by id.
CREATE INDEX alert_changes_alert ON alert_changes (alert_id);

-- The last hour of the events notifications evaluated, compact, for DryRunRule (which alerts a
-- rule would have fired over the last hour). One row per connection change, per telemetry
-- sample that changed the paper level (whole percent) or the printer's fault state, and per
-- stock-out prediction or clearance. The sweeper deletes rows older than an hour.
CREATE TABLE recent_events (
  id             bigserial PRIMARY KEY,
  event_time     timestamptz NOT NULL,
  kiosk_id       text NOT NULL,
  kind           text NOT NULL CHECK (kind IN ('connected', 'disconnected', 'telemetry', 'stockout_predicted', 'stockout_cleared')),
  -- disconnected: link's reason; stock-outs: the product.
  detail         text NOT NULL DEFAULT '',
  paper_percent  double precision,
  printer_fault  boolean,
  -- stockout_predicted: the alert summary it would make.
  summary        text NOT NULL DEFAULT ''
);
CREATE INDEX recent_events_time ON recent_events (event_time);

-- Down Migration
DROP TABLE recent_events;
DROP INDEX alert_changes_alert;
DROP INDEX alerts_kiosk_open;

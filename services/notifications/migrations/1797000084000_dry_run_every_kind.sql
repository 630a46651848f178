-- Up Migration
-- Dry runs of every rule kind: recent_events also keeps, compactly, what the newer kinds are judged
-- from — a telemetry sample that changed whether the kiosk is ALERTING or reports errors ('health':
-- alerting, detail = the errors' summary or ''), catalog's low / replenished stock ('stock_low',
-- 'stock_replenished': detail = the product), orders created and closed ('order_created',
-- 'order_closed': detail = the order), ai's silent failures ('silent_detected', 'silent_cleared')
-- and a service's condition changing ('service_down', 'service_up': kiosk_id '', detail = the
-- service). payment_failure_rate replays payment_outcomes, which is kept 7 days anyway.
ALTER TABLE recent_events DROP CONSTRAINT recent_events_kind_check;
ALTER TABLE recent_events ADD CONSTRAINT recent_events_kind_check CHECK (kind IN ('connected', 'disconnected', 'telemetry', 'stockout_predicted', 'stockout_cleared',
  'health', 'stock_low', 'stock_replenished', 'order_created', 'order_closed', 'silent_detected', 'silent_cleared', 'service_down', 'service_up'));
ALTER TABLE recent_events ADD COLUMN alerting boolean;
-- Each service's condition as last judged (service-health.ts), so only its changes are kept above.
CREATE TABLE service_conditions (
  service  text PRIMARY KEY,
  down     boolean NOT NULL,
  since    timestamptz NOT NULL
);
-- The dry run of payment_failure_rate reads the decided payments by time.
CREATE INDEX payment_outcomes_time ON payment_outcomes (decided_at);

-- Down Migration
DROP INDEX payment_outcomes_time;
DROP TABLE service_conditions;
DELETE FROM recent_events WHERE kind IN ('health', 'stock_low', 'stock_replenished', 'order_created', 'order_closed', 'silent_detected', 'silent_cleared', 'service_down', 'service_up');
ALTER TABLE recent_events DROP COLUMN alerting;
ALTER TABLE recent_events DROP CONSTRAINT recent_events_kind_check;
ALTER TABLE recent_events ADD CONSTRAINT recent_events_kind_check CHECK (kind IN ('connected', 'disconnected', 'telemetry', 'stockout_predicted', 'stockout_cleared'));

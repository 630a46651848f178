-- Up Migration
-- customers' events (stream CUSTOMERS, issue 22): rule kind help_requested (a kiosk's call for
-- help, firing at once: no for-duration), kept for dry runs in recent_events, and buyers'
-- back-in-stock messages as deliveries without a rule (status 'back_in_stock'; the request's id
-- in order_id's place is not needed: the contact is masked once the delivery is done).
ALTER TABLE rules DROP CONSTRAINT rules_kind_check;
ALTER TABLE rules ADD CONSTRAINT rules_kind_check CHECK (kind IN ('kiosk_offline', 'low_paper', 'printer_fault', 'stockout_predicted',
  'alerting_status', 'telemetry_errors', 'low_stock', 'payment_failure_rate', 'orders_stuck', 'silent_failure', 'service_not_serving', 'help_requested'));
ALTER TABLE rules DROP CONSTRAINT rules_for_ms_check;
ALTER TABLE rules ADD CONSTRAINT rules_for_ms_check CHECK (for_ms > 0 OR (kind IN ('stockout_predicted', 'low_stock', 'payment_failure_rate', 'silent_failure', 'help_requested') AND for_ms = 0));
ALTER TABLE recent_events DROP CONSTRAINT recent_events_kind_check;
ALTER TABLE recent_events ADD CONSTRAINT recent_events_kind_check CHECK (kind IN ('connected', 'disconnected', 'telemetry', 'stockout_predicted', 'stockout_cleared',
  'health', 'stock_low', 'stock_replenished', 'order_created', 'order_closed', 'silent_detected', 'silent_cleared', 'service_down', 'service_up', 'help_requested'));
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('firing', 'resolved', 'receipt', 'back_in_stock'));

-- Down Migration
DELETE FROM deliveries WHERE status = 'back_in_stock';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('firing', 'resolved', 'receipt'));
DELETE FROM recent_events WHERE kind = 'help_requested';
ALTER TABLE recent_events DROP CONSTRAINT recent_events_kind_check;
ALTER TABLE recent_events ADD CONSTRAINT recent_events_kind_check CHECK (kind IN ('connected', 'disconnected', 'telemetry', 'stockout_predicted', 'stockout_cleared',
  'health', 'stock_low', 'stock_replenished', 'order_created', 'order_closed', 'silent_detected', 'silent_cleared', 'service_down', 'service_up'));
DELETE FROM alert_changes WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind = 'help_requested');
DELETE FROM alerts WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind = 'help_requested');
DELETE FROM rule_versions WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind = 'help_requested');
DELETE FROM rules WHERE kind = 'help_requested';
ALTER TABLE rules DROP CONSTRAINT rules_for_ms_check;
ALTER TABLE rules ADD CONSTRAINT rules_for_ms_check CHECK (for_ms > 0 OR (kind IN ('stockout_predicted', 'low_stock', 'payment_failure_rate', 'silent_failure') AND for_ms = 0));
ALTER TABLE rules DROP CONSTRAINT rules_kind_check;
ALTER TABLE rules ADD CONSTRAINT rules_kind_check CHECK (kind IN ('kiosk_offline', 'low_paper', 'printer_fault', 'stockout_predicted',
  'alerting_status', 'telemetry_errors', 'low_stock', 'payment_failure_rate', 'orders_stuck', 'silent_failure', 'service_not_serving'));

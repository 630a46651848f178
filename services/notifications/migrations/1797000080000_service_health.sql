-- Up Migration
-- Rule kind service_not_serving (issue 15): the runtime's health announcements (stream OPS,
-- ops.health.<service>, one ServiceHealthEvent per change and per heartbeat of each process).
-- A rule's service filter is kept in rules.sku ('' every service) and an alert's service in
-- alerts.sku (kiosk_id ''): the second key of an alert, as the product is for the stock kinds.
ALTER TABLE rules DROP CONSTRAINT rules_kind_check;
ALTER TABLE rules ADD CONSTRAINT rules_kind_check CHECK (kind IN ('kiosk_offline', 'low_paper', 'printer_fault', 'stockout_predicted',
  'alerting_status', 'telemetry_errors', 'low_stock', 'payment_failure_rate', 'orders_stuck', 'silent_failure', 'service_not_serving'));

-- Each service process announcing itself: serving, not_serving (a probe fails: failed_probes),
-- draining (shut down gracefully) or missing (no heartbeat within its ttl: expires_at passed).
-- last_seen is the newest applied event's time, so an older event changes nothing; since is when
-- it stopped serving (NULL while serving). A missing or draining process is forgotten once a
-- newer process of its service serves (its restart or replacement); a draining one also once
-- any other process of the service serves.
CREATE TABLE service_instances (
  service        text NOT NULL,
  instance       text NOT NULL,
  state          text NOT NULL CHECK (state IN ('serving', 'not_serving', 'draining', 'missing')),
  failed_probes  text NOT NULL DEFAULT '',
  started_at     timestamptz NOT NULL,
  last_seen      timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  since          timestamptz,
  PRIMARY KEY (service, instance)
);

-- Down Migration
DROP TABLE service_instances;
DELETE FROM alert_changes WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind = 'service_not_serving');
DELETE FROM alerts WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind = 'service_not_serving');
DELETE FROM rule_versions WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind = 'service_not_serving');
DELETE FROM rules WHERE kind = 'service_not_serving';
ALTER TABLE rules DROP CONSTRAINT rules_kind_check;
ALTER TABLE rules ADD CONSTRAINT rules_kind_check CHECK (kind IN ('kiosk_offline', 'low_paper', 'printer_fault', 'stockout_predicted',
  'alerting_status', 'telemetry_errors', 'low_stock', 'payment_failure_rate', 'orders_stuck', 'silent_failure'));

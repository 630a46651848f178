-- Up Migration
-- Group interval (GROUP_INTERVAL, as Alertmanager's group_interval): when each group of alert
-- changes (rule + kiosk group + status) was last notified, so new changes joining it wait until
-- GROUP_INTERVAL after that instead of going out every GROUP_WAIT. Repeats and escalations are
-- not held by it. Rows older than GROUP_INTERVAL mean nothing any more and are deleted.
CREATE TABLE notification_groups (
  rule_id      uuid NOT NULL,
  group_id     text NOT NULL,
  status       text NOT NULL CHECK (status IN ('firing', 'resolved')),
  notified_at  timestamptz NOT NULL,
  PRIMARY KEY (rule_id, group_id, status)
);

-- Down Migration
DROP TABLE notification_groups;

-- Up Migration
-- New rule kinds (issue 15): alerting_status and telemetry_errors (link's telemetry), low_stock
-- (catalog's stock events), payment_failure_rate (payments' events), orders_stuck (orders' events),
-- silent_failure (ai's silent-failure events). low_stock, payment_failure_rate and silent_failure may
-- fire at once (for_ms 0); payment_failure_rate keeps its
-- window in window_ms and its minimum number of decided payments in min_count.
ALTER TABLE rules DROP CONSTRAINT rules_kind_check;
ALTER TABLE rules ADD CONSTRAINT rules_kind_check CHECK (kind IN ('kiosk_offline', 'low_paper', 'printer_fault', 'stockout_predicted',
  'alerting_status', 'telemetry_errors', 'low_stock', 'payment_failure_rate', 'orders_stuck', 'silent_failure'));
ALTER TABLE rules DROP CONSTRAINT rules_for_ms_check;
ALTER TABLE rules ADD CONSTRAINT rules_for_ms_check CHECK (for_ms > 0 OR (kind IN ('stockout_predicted', 'low_stock', 'payment_failure_rate', 'silent_failure') AND for_ms = 0));
ALTER TABLE rules ADD COLUMN window_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE rules ADD COLUMN min_count integer NOT NULL DEFAULT 0;

-- What alerting_status and telemetry_errors rules judge of each kiosk's latest telemetry sample
-- (link.kiosk.<id>.telemetry, their own durable consumer); sample_time is the newest applied
-- sample's time, so an older batch changes nothing.
CREATE TABLE kiosk_health (
  kiosk_id     text PRIMARY KEY,
  alerting     boolean NOT NULL,
  errors       text[] NOT NULL DEFAULT '{}',
  summary      text NOT NULL,
  sample_time  timestamptz NOT NULL
);

-- catalog's low-stock state per kiosk × product (catalog.stock.<kiosk>.low | .replenished);
-- event_time is the newest applied event's time, so an older event changes nothing.
CREATE TABLE stock_levels (
  kiosk_id    text NOT NULL,
  sku         text NOT NULL,
  low         boolean NOT NULL,
  on_hand     bigint NOT NULL,
  threshold   bigint NOT NULL,
  event_time  timestamptz NOT NULL,
  PRIMARY KEY (kiosk_id, sku)
);

-- ai's silent-failure state per kiosk (ai.silent_failure.<kiosk>.detected | .cleared); event_time as
-- for stock_levels.
CREATE TABLE silent_failures (
  kiosk_id    text PRIMARY KEY,
  detected    boolean NOT NULL,
  event_time  timestamptz NOT NULL
);

-- Decided payments (payments.intent.<id>.succeeded | failed), for failure rates over a window;
-- older than the longest window (7 days) they are deleted.
CREATE TABLE payment_outcomes (
  payment_intent_id  text PRIMARY KEY,
  kiosk_id           text NOT NULL,
  failed             boolean NOT NULL,
  decided_at         timestamptz NOT NULL
);
CREATE INDEX payment_outcomes_kiosk ON payment_outcomes (kiosk_id, decided_at);

-- Orders created and not yet completed or failed (orders.order.<id>.created → .completed | .failed).
CREATE TABLE open_orders (
  order_id    text PRIMARY KEY,
  kiosk_id    text NOT NULL,
  created_at  timestamptz NOT NULL
);
CREATE INDEX open_orders_kiosk ON open_orders (kiosk_id, created_at);

-- A buyer's receipt request: the address typed at the kiosk, kept only until the receipt is
-- handed to the delivery worker (order completed), the order fails, or expires_at passes.
CREATE TABLE receipt_requests (
  order_id    text PRIMARY KEY,
  kiosk_id    text NOT NULL,
  email       text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);
CREATE INDEX receipt_requests_expiry ON receipt_requests (expires_at);

-- Deliveries on the new channels, and buyers' receipts (no rule; status 'receipt', order_id).
ALTER TABLE deliveries ALTER COLUMN rule_id DROP NOT NULL;
ALTER TABLE deliveries ADD COLUMN order_id text;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_channel_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_channel_check CHECK (channel IN ('email', 'webhook', 'sms', 'web_push'));
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('firing', 'resolved', 'receipt'));

-- Admin-web browsers that turned Web Push on: one row per push endpoint, owned by the user who saved it.
CREATE TABLE push_subscriptions (
  endpoint    text PRIMARY KEY,
  user_id     text NOT NULL,
  p256dh      text NOT NULL,
  auth        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);

-- Down Migration
DROP TABLE push_subscriptions;
DELETE FROM deliveries WHERE channel IN ('sms', 'web_push') OR status = 'receipt';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('firing', 'resolved'));
ALTER TABLE deliveries DROP CONSTRAINT deliveries_channel_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_channel_check CHECK (channel IN ('email', 'webhook'));
ALTER TABLE deliveries DROP COLUMN order_id;
ALTER TABLE deliveries ALTER COLUMN rule_id SET NOT NULL;
DROP TABLE receipt_requests;
DROP TABLE open_orders;
DROP TABLE payment_outcomes;
DROP TABLE silent_failures;
DROP TABLE stock_levels;
DROP TABLE kiosk_health;
DELETE FROM alert_changes WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind IN ('alerting_status', 'telemetry_errors', 'low_stock', 'payment_failure_rate', 'orders_stuck', 'silent_failure'));
DELETE FROM alerts WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind IN ('alerting_status', 'telemetry_errors', 'low_stock', 'payment_failure_rate', 'orders_stuck', 'silent_failure'));
DELETE FROM rule_versions WHERE rule_id IN (SELECT rule_id FROM rules WHERE kind IN ('alerting_status', 'telemetry_errors', 'low_stock', 'payment_failure_rate', 'orders_stuck', 'silent_failure'));
DELETE FROM rules WHERE kind IN ('alerting_status', 'telemetry_errors', 'low_stock', 'payment_failure_rate', 'orders_stuck', 'silent_failure');
ALTER TABLE rules DROP COLUMN min_count;
ALTER TABLE rules DROP COLUMN window_ms;
ALTER TABLE rules DROP CONSTRAINT rules_for_ms_check;
ALTER TABLE rules ADD CONSTRAINT rules_for_ms_check CHECK (for_ms > 0 OR (kind = 'stockout_predicted' AND for_ms = 0));
ALTER TABLE rules DROP CONSTRAINT rules_kind_check;
ALTER TABLE rules ADD CONSTRAINT rules_kind_check CHECK (kind IN ('kiosk_offline', 'low_paper', 'printer_fault', 'stockout_predicted'));

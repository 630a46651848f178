-- Up Migration
-- Alert rules, versioned: the row holds the current version; every version is kept in rule_versions.
CREATE TABLE rules (
  rule_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  version      bigint NOT NULL DEFAULT 1,
  name         text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('kiosk_offline', 'low_paper', 'printer_fault')),
  for_ms       bigint NOT NULL CHECK (for_ms > 0),
  threshold    double precision,
  group_ids    text[] NOT NULL DEFAULT '{}',
  tags         text[] NOT NULL DEFAULT '{}',
  -- The whole RuleDefinition (protobuf binary), as the client gave it, validated.
  definition   bytea NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  deleted_at   timestamptz
);
CREATE INDEX rules_live ON rules (kind) WHERE deleted_at IS NULL;

CREATE TABLE rule_versions (
  rule_id     uuid NOT NULL REFERENCES rules (rule_id),
  version     bigint NOT NULL,
  definition  bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (rule_id, version)
);

-- What notifications knows of each kiosk, from link's events only.
CREATE TABLE kiosks (
  kiosk_id            text PRIMARY KEY,
  group_id            text NOT NULL DEFAULT '',
  tags                text[] NOT NULL DEFAULT '{}',
  connected           boolean,
  connection_time     timestamptz,
  paper_percent       double precision,
  printer_fault       boolean,
  sample_time         timestamptz
);

-- An alert per rule and kiosk while its condition holds: pending (waiting out the
-- rule's for-duration), firing, acknowledged, resolved. Pending ones that clear are deleted.
CREATE TABLE alerts (
  alert_id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  rule_id          uuid NOT NULL REFERENCES rules (rule_id),
  rule_version     bigint NOT NULL,
  kiosk_id         text NOT NULL,
  group_id         text NOT NULL DEFAULT '',
  state            text NOT NULL CHECK (state IN ('pending', 'firing', 'acknowledged', 'resolved')),
  summary          text NOT NULL,
  active_since     timestamptz NOT NULL,
  fire_at          timestamptz NOT NULL,
  fired_at         timestamptz,
  acknowledged_at  timestamptz,
  acknowledged_by  text NOT NULL DEFAULT '',
  resolved_at      timestamptz,
  resolve_reason   text NOT NULL DEFAULT ''
);
-- Deduplication: one open alert per rule and labels.
CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, kiosk_id) WHERE state IN ('pending', 'firing', 'acknowledged');
CREATE INDEX alerts_due ON alerts (fire_at) WHERE state = 'pending';
CREATE INDEX alerts_list ON alerts (coalesce(fired_at, active_since) DESC, alert_id) WHERE state <> 'pending';

-- Alert changes waiting to be grouped into a notification (rule + group + status).
CREATE TABLE alert_changes (
  id          bigserial PRIMARY KEY,
  alert_id    uuid NOT NULL REFERENCES alerts (alert_id),
  rule_id     uuid NOT NULL,
  group_id    text NOT NULL,
  status      text NOT NULL CHECK (status IN ('firing', 'resolved')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  notification_id uuid
);
CREATE INDEX alert_changes_waiting ON alert_changes (rule_id, group_id, status, created_at) WHERE notification_id IS NULL;

-- One notification (a group of alert changes) to one target: the audit log of attempts.
CREATE TABLE deliveries (
  delivery_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  notification_id  uuid NOT NULL,
  rule_id          uuid NOT NULL,
  group_id         text NOT NULL,
  channel          text NOT NULL CHECK (channel IN ('email', 'webhook')),
  target           text NOT NULL,
  secret_name      text NOT NULL DEFAULT '',
  status           text NOT NULL CHECK (status IN ('firing', 'resolved')),
  alert_count      integer NOT NULL,
  subject          text NOT NULL,
  body             jsonb NOT NULL,
  state            text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead_lettered')),
  attempts         integer NOT NULL DEFAULT 0,
  last_result      text NOT NULL DEFAULT '',
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  created_at       timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_list ON deliveries (created_at DESC, delivery_id);

-- Events that must follow a change (see packages/runtime/src/outbox.ts).
CREATE TABLE outbox (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq           bigserial,
  subject       text NOT NULL,
  payload       bytea NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;

-- Down Migration
DROP TABLE outbox;
DROP TABLE deliveries;
DROP TABLE alert_changes;
DROP TABLE alerts;
DROP TABLE kiosks;
DROP TABLE rule_versions;
DROP TABLE rules;

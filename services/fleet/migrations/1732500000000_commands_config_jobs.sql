-- Up Migration
-- Commands, desired/reported configuration, bulk jobs, telemetry history, audit.

-- Which link stream fleet believes is the kiosk's current one (from link's
-- connected events); commands and config are addressed to it.
ALTER TABLE kiosks
  ADD COLUMN session_id text,
  -- Desired configuration: the newest version of the kiosk's or its group's document.
  ADD COLUMN config_version bigint NOT NULL DEFAULT 0,
  ADD COLUMN config_pushed_version bigint NOT NULL DEFAULT 0,
  ADD COLUMN config_pushed_at timestamptz,
  -- What the kiosk said it applied.
  ADD COLUMN reported_config_version bigint NOT NULL DEFAULT 0,
  ADD COLUMN reported_config_error text NOT NULL DEFAULT '',
  ADD COLUMN reported_config_at timestamptz,
  -- The last version the kiosk could not apply (not pushed again until a newer one).
  ADD COLUMN reported_config_failed_version bigint NOT NULL DEFAULT 0,
  -- Online with a fault or a reading past a threshold (see KIOSK_STATUS_ALERTING).
  ADD COLUMN alerting boolean GENERATED ALWAYS AS (
    state IS NOT NULL AND (
      jsonb_array_length(COALESCE(state->'errors', '[]'::jsonb)) > 0
      OR state->>'printerStatus' = 'FAULT' OR state->>'scannerStatus' = 'FAULT'
      OR (state->>'paperLevelPercent')::float8 < 10)
  ) STORED;
CREATE INDEX kiosks_connected ON kiosks (kiosk_id) WHERE connected AND deleted_at IS NULL;

-- One fleet-wide sequence: versions only grow, whichever layer changed.
CREATE SEQUENCE config_version_seq;

CREATE TABLE kiosk_config (
  kiosk_id    text PRIMARY KEY REFERENCES kiosks,
  config      jsonb NOT NULL,
  version     bigint NOT NULL,
  updated_by  text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_config (
  group_id    text PRIMARY KEY,
  config      jsonb NOT NULL,
  version     bigint NOT NULL,
  updated_by  text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
  job_id           uuid PRIMARY KEY,
  description      text NOT NULL DEFAULT '',
  -- adminkiosk.fleet.v1.CommandAction, binary.
  action           bytea NOT NULL,
  action_kind      text NOT NULL,
  target           jsonb NOT NULL,
  rate_per_minute  integer NOT NULL CHECK (rate_per_minute > 0),
  max_failures     integer CHECK (max_failures >= 0),
  command_ttl_ms   bigint NOT NULL,
  state            text NOT NULL CHECK (state IN ('running', 'paused', 'completed', 'aborted', 'canceled')),
  total            integer NOT NULL,
  dispatched       integer NOT NULL DEFAULT 0,
  -- Token bucket for the rollout rate: kiosks that may get their command now.
  allowance        double precision NOT NULL DEFAULT 1,
  allowance_at     timestamptz NOT NULL DEFAULT now(),
  created_by       text NOT NULL,
  idempotency_key  text,
  request_hash     text,
  end_reason       text NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (created_by, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_active ON jobs (job_id) WHERE state = 'running';
CREATE INDEX jobs_created ON jobs (created_at DESC, job_id);

-- The kiosks a job targets, resolved once when it is created, in rollout order.
CREATE TABLE job_targets (
  job_id    uuid NOT NULL REFERENCES jobs,
  position  integer NOT NULL,
  kiosk_id  text NOT NULL,
  PRIMARY KEY (job_id, position)
);

CREATE TABLE commands (
  command_id       uuid PRIMARY KEY,
  -- Order of sending per kiosk.
  seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  kiosk_id         text NOT NULL REFERENCES kiosks,
  -- adminkiosk.fleet.v1.CommandAction, binary.
  action           bytea NOT NULL,
  action_kind      text NOT NULL,
  state            text NOT NULL CHECK (state IN ('queued', 'sent', 'acked', 'succeeded', 'failed', 'expired', 'canceled')),
  issued_by        text NOT NULL,
  job_id           uuid REFERENCES jobs,
  idempotency_key  text,
  request_hash     text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  expire_at        timestamptz NOT NULL,
  sent_at          timestamptz,
  acked_at         timestamptz,
  finished_at      timestamptz,
  attempts         integer NOT NULL DEFAULT 0,
  outcome          text NOT NULL DEFAULT '',
  error_message    text NOT NULL DEFAULT '',
  result           jsonb
);
CREATE UNIQUE INDEX commands_idempotency ON commands (issued_by, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX commands_pending ON commands (kiosk_id, seq) WHERE state IN ('queued', 'sent', 'acked');
CREATE INDEX commands_kiosk ON commands (kiosk_id, created_at DESC, command_id);
CREATE INDEX commands_created ON commands (created_at DESC, command_id);
CREATE INDEX commands_job ON commands (job_id, state) WHERE job_id IS NOT NULL;
CREATE INDEX commands_unfinished ON commands (expire_at) WHERE state IN ('queued', 'sent', 'acked');

-- Every sample kiosks sent, one partition per UTC day (created ahead by fleet,
-- dropped after TELEMETRY_RETENTION_DAYS). The key makes a resent batch land once.
CREATE TABLE telemetry_samples (
  kiosk_id             text NOT NULL,
  sampled_at           timestamptz NOT NULL,
  sample_id            text NOT NULL,
  received_at          timestamptz NOT NULL,
  cpu_percent          real NOT NULL,
  temperature_celsius  real NOT NULL,
  paper_level_percent  real NOT NULL,
  cash_level_minor     bigint NOT NULL,
  printer              smallint NOT NULL,
  scanner              smallint NOT NULL,
  errors               text[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (kiosk_id, sampled_at, sample_id)
) PARTITION BY RANGE (sampled_at);

CREATE TABLE audit_events (
  event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  type        text NOT NULL,
  actor       text NOT NULL,
  subject     text NOT NULL,
  ip          text NOT NULL DEFAULT '',
  request_id  text NOT NULL DEFAULT '',
  details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_subject ON audit_events (subject, event_id DESC);
CREATE INDEX audit_events_type ON audit_events (type, event_id DESC);

-- Down Migration
DROP TABLE audit_events;
DROP TABLE telemetry_samples;
DROP TABLE commands;
DROP TABLE job_targets;
DROP TABLE jobs;
DROP TABLE group_config;
DROP TABLE kiosk_config;
DROP SEQUENCE config_version_seq;
DROP INDEX kiosks_connected;
ALTER TABLE kiosks DROP COLUMN session_id, DROP COLUMN config_version, DROP COLUMN config_pushed_version,
  DROP COLUMN config_pushed_at, DROP COLUMN reported_config_version, DROP COLUMN reported_config_error,
  DROP COLUMN reported_config_at, DROP COLUMN reported_config_failed_version, DROP COLUMN alerting;

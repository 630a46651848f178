-- Up Migration
-- Rollouts of a release to kiosks in waves with health gates (services/fleet/src/rollouts).
CREATE TABLE rollouts (
  rollout_id         uuid PRIMARY KEY,
  release_id         text NOT NULL,
  -- 'APP' or 'FIRMWARE', and the version the release installs ('' for a rollback: per kiosk).
  kind               text NOT NULL,
  version            text NOT NULL,
  target             jsonb NOT NULL,
  -- [{percent, bakeMs}], cumulative percents, the last 100.
  waves              jsonb NOT NULL,
  max_concurrent     integer NOT NULL CHECK (max_concurrent > 0),
  window_policy      text NOT NULL CHECK (window_policy IN ('auto', 'explicit', 'any')),
  window_start_hour  integer NOT NULL DEFAULT 0,
  window_end_hour    integer NOT NULL DEFAULT 0,
  window_note        text NOT NULL DEFAULT '',
  gate               jsonb NOT NULL,
  auto_rollback      boolean NOT NULL DEFAULT false,
  state              text NOT NULL CHECK (state IN ('running', 'paused', 'completed', 'canceled', 'rolled_back')),
  current_wave       integer NOT NULL DEFAULT 0,
  total              integer NOT NULL DEFAULT 0,
  stop_reason        text NOT NULL DEFAULT '',
  rollback_rollout_id uuid,
  rollback_of        uuid,
  description        text NOT NULL DEFAULT '',
  created_by         text NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  finished_at        timestamptz
);
CREATE INDEX rollouts_active ON rollouts (created_at) WHERE state = 'running';
CREATE INDEX rollouts_created ON rollouts (created_at DESC, rollout_id);

-- Each wave's progress and its gate's verdict.
CREATE TABLE rollout_waves (
  rollout_id       uuid NOT NULL REFERENCES rollouts,
  wave             integer NOT NULL,
  state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'installing', 'baking', 'gate_passed', 'gate_failed')),
  started_at       timestamptz,
  bake_started_at  timestamptz,
  gate_at          timestamptz,
  metrics          jsonb NOT NULL DEFAULT '[]',
  updated_kiosks   integer NOT NULL DEFAULT 0,
  control_kiosks   integer NOT NULL DEFAULT 0,
  PRIMARY KEY (rollout_id, wave)
);

-- The kiosks a rollout targets, frozen when it is created, each in its wave (a hash of
-- kiosk and rollout ids decides the order), with its own maintenance window (local hours).
CREATE TABLE rollout_targets (
  rollout_id    uuid NOT NULL REFERENCES rollouts,
  kiosk_id      text NOT NULL,
  wave          integer NOT NULL,
  -- pending (not sent) -> sent -> installed | failed | reverted | rejected; skipped (deleted,
  -- canceled, nothing to roll back to).
  state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'installed', 'failed', 'reverted', 'rejected', 'skipped')),
  -- The release this kiosk gets (a rollback's differs per kiosk: each one's previous version).
  release_id    text NOT NULL,
  from_version  text NOT NULL DEFAULT '',
  window_start  smallint NOT NULL,
  window_end    smallint NOT NULL,
  timezone      text NOT NULL,
  command_id    uuid,
  sent_at       timestamptz,
  finished_at   timestamptz,
  error         text NOT NULL DEFAULT '',
  PRIMARY KEY (rollout_id, kiosk_id)
);
CREATE INDEX rollout_targets_wave ON rollout_targets (rollout_id, wave, state);
CREATE INDEX rollout_targets_open ON rollout_targets (rollout_id, kiosk_id) WHERE state = 'sent';

-- Failed orders from stream ORDERS (beside kiosk_sales' completed ones), for the business
-- gates' payment failure rate and checkout conversion; kept two days like kiosk_sales.
CREATE TABLE kiosk_order_failures (
  order_id      text PRIMARY KEY,
  kiosk_id      text NOT NULL,
  failed_at     timestamptz NOT NULL,
  failure_code  text NOT NULL DEFAULT ''
);
CREATE INDEX kiosk_order_failures_kiosk ON kiosk_order_failures (kiosk_id, failed_at);
CREATE INDEX kiosk_order_failures_failed ON kiosk_order_failures (failed_at);

-- Down Migration
DROP TABLE kiosk_order_failures;
DROP TABLE rollout_targets;
DROP TABLE rollout_waves;
DROP TABLE rollouts;

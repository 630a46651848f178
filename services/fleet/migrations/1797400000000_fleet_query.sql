-- Up Migration
-- The fleet query language (issue 20, services/fleet/src/query): indexes for the filters
-- operators use most, version ordering, saved views and bulk actions.

-- "2.10.1" sorts after "2.9": each dot-separated part's leading digits as a number
-- (a part without digits counts 0). IMMUTABLE so it can sit in an index.
CREATE FUNCTION fleet_version_key(v text) RETURNS int[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT COALESCE(array_agg(COALESCE(NULLIF(left(substring(part FROM '^[0-9]*'), 9), '')::int, 0) ORDER BY n), '{}')
  FROM unnest(string_to_array(v, '.')) WITH ORDINALITY AS t(part, n)
$$;

CREATE INDEX kiosks_app_version ON kiosks (app_version) WHERE deleted_at IS NULL;
CREATE INDEX kiosks_firmware_version ON kiosks (firmware_version) WHERE deleted_at IS NULL;
CREATE INDEX kiosks_location ON kiosks (latitude, longitude) WHERE deleted_at IS NULL AND latitude IS NOT NULL;
CREATE INDEX kiosks_last_seen ON kiosks (last_seen_at) WHERE deleted_at IS NULL;
CREATE INDEX kiosks_paper ON kiosks (((state->>'paperLevelPercent')::float8)) WHERE deleted_at IS NULL;

CREATE TABLE saved_views (
  view_id     uuid PRIMARY KEY,
  owner       text NOT NULL,
  name        text NOT NULL,
  query       text NOT NULL,
  shared      boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (owner, name)
);
CREATE INDEX saved_views_shared ON saved_views (name) WHERE shared;

CREATE TABLE bulk_actions (
  bulk_action_id  uuid PRIMARY KEY,
  query           text NOT NULL,
  -- adminkiosk.fleet.v1.BulkChange, binary.
  change          bytea NOT NULL,
  change_kind     text NOT NULL,
  description     text NOT NULL DEFAULT '',
  rate_per_minute integer NOT NULL DEFAULT 600,
  state           text NOT NULL CHECK (state IN ('planned', 'awaiting_approval', 'done', 'rejected', 'expired')),
  dangerous       boolean NOT NULL,
  danger_reason   text NOT NULL DEFAULT '',
  kiosk_count     integer NOT NULL,
  sample          jsonb NOT NULL DEFAULT '[]',
  summary         text NOT NULL DEFAULT '',
  requested_by    text NOT NULL,
  approved_by     text NOT NULL DEFAULT '',
  rejected_by     text NOT NULL DEFAULT '',
  touched         integer NOT NULL DEFAULT 0,
  skipped         integer NOT NULL DEFAULT 0,
  job_id          uuid,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expire_at       timestamptz NOT NULL,
  run_at          timestamptz
);
CREATE INDEX bulk_actions_created ON bulk_actions (created_at DESC, bulk_action_id);
CREATE INDEX bulk_actions_waiting ON bulk_actions (created_at DESC) WHERE state = 'awaiting_approval';

-- The kiosks a bulk action's dry run matched: what its run touches, nothing else.
CREATE TABLE bulk_action_targets (
  bulk_action_id  uuid NOT NULL REFERENCES bulk_actions ON DELETE CASCADE,
  kiosk_id        text NOT NULL,
  PRIMARY KEY (bulk_action_id, kiosk_id)
);

-- Down Migration
DROP TABLE bulk_action_targets;
DROP TABLE bulk_actions;
DROP TABLE saved_views;
DROP INDEX kiosks_paper;
DROP INDEX kiosks_last_seen;
DROP INDEX kiosks_location;
DROP INDEX kiosks_firmware_version;
DROP INDEX kiosks_app_version;
DROP FUNCTION fleet_version_key(text);

-- Up Migration
-- Software releases (issue 17): uploaded artifacts (content-addressed, the bytes live in
-- the artifact store), releases with their signed manifests, and each kiosk's install of a
-- release as it reported it (link's UpdateStatus). services/fleet/src/releases/.
CREATE TABLE artifacts (
  sha256       text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
  uploaded_by  text NOT NULL,
  uploaded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE releases (
  release_id          text PRIMARY KEY,
  kind                text NOT NULL CHECK (kind IN ('app', 'firmware')),
  version             text NOT NULL,
  min_version         text NOT NULL DEFAULT '',
  notes               text NOT NULL DEFAULT '',
  hardware_models     text[] NOT NULL DEFAULT '{}',
  artifact_sha256     text NOT NULL REFERENCES artifacts (sha256),
  size_bytes          bigint NOT NULL,
  manifest            bytea NOT NULL,
  manifest_signature  bytea NOT NULL,
  key_id              text NOT NULL,
  created_by          text NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  UNIQUE (kind, version)
);
CREATE INDEX releases_newest ON releases (created_at DESC, release_id DESC);

-- One row per kiosk and release: the last status the kiosk reported for it (by the kiosk's
-- own time, so a late redelivery does not move it back).
CREATE TABLE kiosk_updates (
  kiosk_id      text NOT NULL,
  release_id    text NOT NULL REFERENCES releases (release_id),
  rollout_id    text NOT NULL DEFAULT '',
  state         text NOT NULL CHECK (state IN ('downloading', 'verifying', 'installing', 'installed', 'failed', 'rejected', 'reverted')),
  version       text NOT NULL DEFAULT '',
  from_version  text NOT NULL DEFAULT '',
  error         text NOT NULL DEFAULT '',
  bytes_done    bigint NOT NULL DEFAULT 0,
  bytes_total   bigint NOT NULL DEFAULT 0,
  reported_at   timestamptz NOT NULL,
  reverted_at   timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kiosk_id, release_id)
);
CREATE INDEX kiosk_updates_release ON kiosk_updates (release_id, kiosk_id);
CREATE INDEX kiosk_updates_rollout ON kiosk_updates (rollout_id, state) WHERE rollout_id <> '';

-- Down Migration
DROP TABLE kiosk_updates;
DROP TABLE releases;
DROP TABLE artifacts;

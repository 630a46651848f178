-- Up Migration
CREATE TABLE kiosks (
  kiosk_id          text PRIMARY KEY,
  name              text NOT NULL,
  latitude          double precision,
  longitude         double precision,
  address           text NOT NULL DEFAULT '',
  timezone          text NOT NULL DEFAULT 'UTC',
  tags              text[] NOT NULL DEFAULT '{}',
  group_id          text NOT NULL DEFAULT '',
  hardware_model    text NOT NULL DEFAULT '',
  firmware_version  text NOT NULL DEFAULT '',
  app_version       text NOT NULL DEFAULT '',
  last_seen_at      timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  -- Soft delete: the row stays for history (orders, telemetry refer to it).
  deleted_at        timestamptz,
  CHECK ((latitude IS NULL) = (longitude IS NULL))
);
CREATE INDEX kiosks_tags ON kiosks USING gin (tags) WHERE deleted_at IS NULL;
CREATE INDEX kiosks_group ON kiosks (group_id, kiosk_id) WHERE deleted_at IS NULL;

-- Down Migration
DROP TABLE kiosks;

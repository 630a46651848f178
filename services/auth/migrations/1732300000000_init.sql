-- Up Migration
CREATE TABLE users (
  user_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email         text NOT NULL UNIQUE,
  display_name  text NOT NULL,
  role          text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  password_hash text NOT NULL,
  disabled      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Private keys are stored encrypted (AES-256-GCM under AUTH_KEY_ENCRYPTION_KEY).
-- A key is "next" (published, not yet signing), then active, then retired (published
-- until its last token expires). Publishing the next key ahead of use means every
-- verifier's cached JWKS already holds it when it starts signing.
CREATE TABLE signing_keys (
  kid              text PRIMARY KEY,
  algorithm        text NOT NULL,
  public_jwk       jsonb NOT NULL,
  private_jwk_enc  bytea NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  activated_at     timestamptz,
  retired_at       timestamptz,
  unpublish_at     timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE activated_at IS NOT NULL AND retired_at IS NULL;
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys ((true)) WHERE activated_at IS NULL;

-- A family is one login session; every refresh token it spawns shares it.
CREATE TABLE refresh_tokens (
  token_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  family_id    uuid NOT NULL,
  user_id      uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  token_hash   bytea NOT NULL UNIQUE,
  issued_at    timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  used_at      timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

CREATE TABLE enrollment_codes (
  code_hash   bytea PRIMARY KEY,
  kiosk_id    text NOT NULL,
  created_by  uuid REFERENCES users (user_id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz
);

CREATE TABLE devices (
  device_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kiosk_id           text NOT NULL,
  enrolled_at        timestamptz NOT NULL DEFAULT now(),
  credential_expires timestamptz NOT NULL,
  revoked_at         timestamptz,
  firmware_version   text NOT NULL DEFAULT '',
  hardware_model     text NOT NULL DEFAULT ''
);
CREATE INDEX devices_kiosk ON devices (kiosk_id);

CREATE TABLE audit_events (
  event_id    bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  type        text NOT NULL,
  actor       text NOT NULL DEFAULT '',
  subject     text NOT NULL DEFAULT '',
  ip          text NOT NULL DEFAULT '',
  request_id  text NOT NULL DEFAULT '',
  details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_type ON audit_events (type, event_id);

-- Down Migration
DROP TABLE audit_events;
DROP TABLE devices;
DROP TABLE enrollment_codes;
DROP TABLE refresh_tokens;
DROP TABLE signing_keys;
DROP TABLE users;

-- Up Migration
-- Single sign-on (OpenID Connect; src/sso.ts). A person created at their first sign-in
-- through a provider records where they come from; such an account has no local password
-- (password_hash is '' and never matches).
ALTER TABLE users ADD COLUMN sso_provider text, ADD COLUMN sso_subject text;
ALTER TABLE users ADD CONSTRAINT users_sso_identity_whole CHECK ((sso_provider IS NULL) = (sso_subject IS NULL));
CREATE UNIQUE INDEX users_sso_identity ON users (sso_provider, sso_subject) WHERE sso_provider IS NOT NULL;

-- A sign-in begun at a provider and not yet completed: state (hashed), nonce and PKCE
-- verifier, spent once (deleted) by CompleteSsoLogin, refused after expires_at. In cookie
-- mode it is bound to the browser that began it (the hash of an HttpOnly cookie's value).
CREATE TABLE sso_logins (
  state_hash    bytea PRIMARY KEY,
  provider      text NOT NULL,
  nonce         text NOT NULL,
  code_verifier text NOT NULL,
  binding_hash  bytea,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL
);
CREATE INDEX sso_logins_expiry ON sso_logins (expires_at);

-- What a session begun at a provider keeps of it, to ask again at refresh whether the
-- person is still enabled there and in the same groups, to end it at the provider
-- (RP-initiated logout) and to end it when the provider says so (back-channel logout).
-- The provider's tokens are sealed with AUTH_KEY_ENCRYPTION_KEY.
CREATE TABLE sso_sessions (
  family_id          uuid PRIMARY KEY,
  user_id            uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  provider           text NOT NULL,
  subject            text NOT NULL,
  provider_sid       text,
  id_token_enc       bytea NOT NULL,
  refresh_token_enc  bytea,
  access_token_enc   bytea,
  checked_at         timestamptz NOT NULL DEFAULT now(),
  created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sso_sessions_subject ON sso_sessions (provider, subject);
CREATE INDEX sso_sessions_sid ON sso_sessions (provider, provider_sid) WHERE provider_sid IS NOT NULL;

-- Down Migration
DROP TABLE sso_sessions;
DROP TABLE sso_logins;
DROP INDEX users_sso_identity;
ALTER TABLE users DROP CONSTRAINT users_sso_identity_whole, DROP COLUMN sso_subject, DROP COLUMN sso_provider;

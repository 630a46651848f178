-- Up Migration
-- Events that must follow a change (see packages/runtime/src/outbox.ts): the kiosk
-- registry's created/updated/deleted events (stream FLEET, fleet.kiosk.>), written in the
-- change's transaction and published by the outbox relay.
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

-- Up Migration
-- The runtime's durable consumers (packages/runtime/src/consumer.ts), in the schema of each
-- service that runs one. Added to a service by migrate(…, { consumerTables: true }).

-- Messages already applied, written in the same transaction as their effect: a redelivery
-- (or the same Nats-Msg-Id published again) changes nothing twice. msg_key is
-- 'id:<Nats-Msg-Id>', or 'seq:<stream sequence>' for a message without one.
CREATE TABLE consumer_inbox (
  stream      text NOT NULL,
  msg_key     text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream, msg_key)
);
CREATE INDEX consumer_inbox_applied ON consumer_inbox (stream, applied_at);

-- Messages a consumer gave up on (terminated at JetStream): listed and replayed through
-- adminkiosk.ops.v1.DeadLetterService. Kept until someone deletes them.
CREATE TABLE dead_letters (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  consumer         text NOT NULL,
  stream           text NOT NULL,
  stream_seq       bigint NOT NULL,
  subject          text NOT NULL,
  msg_id           text NOT NULL DEFAULT '',
  headers          jsonb NOT NULL DEFAULT '{}',
  data             bytea NOT NULL,
  reason           text NOT NULL,
  error            text NOT NULL,
  first_failed_at  timestamptz NOT NULL,
  last_failed_at   timestamptz NOT NULL,
  deliveries       integer NOT NULL,
  replayed_at      timestamptz,
  UNIQUE (consumer, stream, stream_seq)
);
CREATE INDEX dead_letters_recent ON dead_letters (last_failed_at DESC, id DESC);

-- Down Migration
DROP TABLE dead_letters;
DROP TABLE consumer_inbox;

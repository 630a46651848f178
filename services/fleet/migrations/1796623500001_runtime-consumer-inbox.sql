-- Up Migration
-- link's events are now applied by the runtime's durable consumer, whose inbox is
-- consumer_inbox (keyed by Nats-Msg-Id, or stream sequence without one; created by
-- migrate(…, { consumerTables: true })). The old inbox (stream, seq) is no longer read.
-- A message applied under it but not yet acked is applied once more after the upgrade,
-- which changes nothing: link's events apply by their timestamps, samples by their key.
DROP TABLE inbox;

-- Down Migration
CREATE TABLE inbox (stream text NOT NULL, seq bigint NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (stream, seq));

-- Up Migration
-- The completion worker now runs on the runtime's durable consumers, whose inbox is
-- consumer_inbox (keyed by Nats-Msg-Id, the outbox row id payments and catalog publish
-- with; created by migrate(…, { consumerTables: true })). The old inbox (stream, seq) is
-- no longer read. An event applied under it but not yet acked is handled once more after
-- the upgrade, which changes nothing: the worker acts only on orders still open, and its
-- calls to catalog and payments are idempotent.
DROP TABLE inbox;

-- Down Migration
CREATE TABLE inbox (stream text NOT NULL, seq bigint NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (stream, seq));

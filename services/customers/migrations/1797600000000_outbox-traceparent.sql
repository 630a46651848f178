-- Up Migration
-- Tracing (issue 19, packages/runtime/src/tracing.ts): the W3C traceparent of the
-- transaction that wrote an outbox row, so its publish and its consumers join that trace.
-- Written and read only while tracing is on; NULL otherwise.
ALTER TABLE outbox ADD COLUMN traceparent text;

-- Down Migration
ALTER TABLE outbox DROP COLUMN traceparent;

-- Up Migration
-- Tracing (issue 19): the W3C traceparent of the request that queued a provider job (a
-- charge, its void, a refund), so the provider call and its webhook join that request's
-- trace whichever worker makes it, and later. NULL while tracing is off.
ALTER TABLE provider_jobs ADD COLUMN traceparent text;

-- Down Migration
ALTER TABLE provider_jobs DROP COLUMN traceparent;

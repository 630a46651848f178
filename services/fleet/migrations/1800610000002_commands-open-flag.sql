-- Up Migration
-- A command's row is written three times after its INSERT: sent, acked (often with its result),
-- finished. Each of those changed `state`, which the partial indexes' predicates and
-- commands_job's key named, so none was a HOT update: every write added an entry to each of
-- the table's indexes. The indexes now name `open` (queued, sent or acked; a stored column,
-- recomputed on every update) instead of `state`: sent and acked leave `open` as it was, so
-- PostgreSQL can update the row in place (HOT, no index entry) when its page has room, which
-- the fillfactor leaves; only a command's finish (open becomes false) writes index entries, and
-- only in the indexes without the predicate. Queries that want the open commands' indexes say
-- `open` (services/fleet/src/dispatch.ts); a job's commands are counted by state from the rows.
ALTER TABLE commands ADD COLUMN open boolean GENERATED ALWAYS AS (state IN ('queued', 'sent', 'acked')) STORED;
ALTER TABLE commands SET (fillfactor = 50);
DROP INDEX commands_pending;
CREATE INDEX commands_pending ON commands (kiosk_id, seq) WHERE open;
DROP INDEX commands_unfinished;
CREATE INDEX commands_unfinished ON commands (expire_at) WHERE open;
DROP INDEX commands_job;
CREATE INDEX commands_job ON commands (job_id) WHERE job_id IS NOT NULL;

-- Down Migration
DROP INDEX commands_job;
CREATE INDEX commands_job ON commands (job_id, state) WHERE job_id IS NOT NULL;
DROP INDEX commands_unfinished;
CREATE INDEX commands_unfinished ON commands (expire_at) WHERE state IN ('queued', 'sent', 'acked');
DROP INDEX commands_pending;
CREATE INDEX commands_pending ON commands (kiosk_id, seq) WHERE state IN ('queued', 'sent', 'acked');
ALTER TABLE commands RESET (fillfactor);
ALTER TABLE commands DROP COLUMN open;

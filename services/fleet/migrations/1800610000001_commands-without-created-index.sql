-- Up Migration
-- No query reads commands by created_at alone (ListCommands pages by seq, which has its own
-- unique index; the sweep reads open commands through the partial indexes). A command's row
-- is written three times (queued, sent, acked/succeeded) and none of those updates is HOT
-- (state is in the partial indexes), so every index costs three entries per command: at a
-- broadcast to 100,000 kiosks, 300,000 entries for an index nothing uses.
DROP INDEX IF EXISTS commands_created;

-- Down Migration
CREATE INDEX commands_created ON commands (created_at DESC, command_id);

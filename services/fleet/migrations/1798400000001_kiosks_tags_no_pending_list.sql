-- Up Migration
-- The tag index with a small GIN pending list (64 kB instead of 4 MB). Entries added since
-- the last flush sit unsorted in the list: every tag = x scan reads all of them, and the
-- planner, counting them, priced the index so high that the fleet query's broad filters
-- (tag = airport and …) chose the paper index and read half the table instead of a fifth
-- (bench/RESULTS.md, issue 20). Writes still go through the list (a kiosk row's update adds
-- its tags again unless it is a HOT update); it is merged into the index every 64 kB.
ALTER INDEX kiosks_tags SET (gin_pending_list_limit = 64);
-- Entries already pending go into the index now.
SELECT gin_clean_pending_list('kiosks_tags'::regclass);

-- Down Migration
ALTER INDEX kiosks_tags RESET (gin_pending_list_limit);

-- Up Migration
-- Baskets older than AI_BASKET_RETENTION_DAYS are pruned (oldest first) with their counts.
CREATE INDEX baskets_completed ON baskets (completed_at);

-- Down Migration
DROP INDEX baskets_completed;

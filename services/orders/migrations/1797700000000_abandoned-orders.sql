-- Up Migration
-- The abandoned-order sweeper (src/abandoned.ts) looks for orders still 'created' long
-- after their last change; few are, so a partial index keeps that look cheap.
CREATE INDEX orders_created_since ON orders (updated_at) WHERE state = 'created';

-- Down Migration
DROP INDEX orders_created_since;

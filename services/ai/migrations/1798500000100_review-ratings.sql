-- Up Migration
-- Approved ratings weigh in recommendations (issue 22): customers' moderation decisions
-- (customers.review.<id>.moderated on stream CUSTOMERS), the newest per review. Only approved
-- rows count (recommend.ts's rating factor); a rejected or re-moderated review's row says so.
CREATE TABLE review_ratings (
  review_id     uuid PRIMARY KEY,
  kiosk_id      text NOT NULL,
  sku           text NOT NULL,
  rating        int NOT NULL CHECK (rating BETWEEN 1 AND 5),
  approved      boolean NOT NULL,
  moderated_at  timestamptz NOT NULL
);
CREATE INDEX review_ratings_approved ON review_ratings (sku, kiosk_id) WHERE approved;

-- Down Migration
DROP TABLE review_ratings;

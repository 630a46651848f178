-- Up Migration
-- What each import said about a day's UTC hours (NULL: the file gave some sale by date
-- alone), so a re-import replaces its own part of sales_daily.hourly as of quantity.
ALTER TABLE imported_days ADD COLUMN hourly integer[] CHECK (hourly IS NULL OR cardinality(hourly) = 24);

-- Down Migration
ALTER TABLE imported_days DROP COLUMN hourly;

-- Up Migration
-- Units sold per UTC hour of the day (24 numbers summing to quantity), for the hour-of-day
-- profiles of hourly forecasts. Filled by completed orders (their completion hour) and the
-- generator; NULL where the hours are not known (e.g. history imported by day): such rows
-- count for the daily model only, and their kiosks borrow the fleet's hour profile.
ALTER TABLE sales_daily ADD COLUMN hourly integer[] CHECK (hourly IS NULL OR cardinality(hourly) = 24);

-- Down Migration
ALTER TABLE sales_daily DROP COLUMN hourly;

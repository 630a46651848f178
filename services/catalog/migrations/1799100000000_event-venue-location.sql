-- Up Migration
-- Where an event's venue is (optional, both or neither): fleet's rollouts keep installs away
-- from kiosks near a ticketed event during its hours (docs/rollouts.md).
ALTER TABLE events ADD COLUMN venue_latitude double precision, ADD COLUMN venue_longitude double precision,
  ADD CONSTRAINT events_venue_location CHECK ((venue_latitude IS NULL) = (venue_longitude IS NULL)
    AND (venue_latitude IS NULL OR (venue_latitude BETWEEN -90 AND 90 AND venue_longitude BETWEEN -180 AND 180)));
-- Kiosks leasing an event's seats (ListEvents' lease_kiosk_ids).
CREATE INDEX lease_seats_event ON lease_seats (event_id, lease_id);

-- Down Migration
DROP INDEX lease_seats_event;
ALTER TABLE events DROP CONSTRAINT events_venue_location, DROP COLUMN venue_latitude, DROP COLUMN venue_longitude;

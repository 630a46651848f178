-- Up Migration
-- Kiosks' labels (group, tags) now come from fleet's registry events (stream FLEET,
-- fleet.kiosk.<id>.created|updated|deleted, the runtime's durable consumer): labels_time
-- is the newest applied event's time, so an older event changes nothing.
ALTER TABLE kiosks ADD COLUMN labels_time timestamptz;
ALTER TABLE kiosks ADD COLUMN deleted boolean NOT NULL DEFAULT false;
-- An alert carries the kiosk's tags as well as its group.
ALTER TABLE alerts ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

-- Down Migration
ALTER TABLE alerts DROP COLUMN tags;
ALTER TABLE kiosks DROP COLUMN deleted;
ALTER TABLE kiosks DROP COLUMN labels_time;

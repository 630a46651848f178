-- Up Migration
-- docs/offline.md. A lease revoked while it held unsold seats keeps them held for itself
-- (seats.reservation_id = lease_id, hold_expires_at = hold_until) because its kiosk may
-- still sell them offline: quarantined until the kiosk returns it after syncing or
-- hold_until passes (the lease sweeper then frees them). Forecast-sized items say how
-- their quantity was chosen.
ALTER TABLE leases ADD COLUMN seats_quarantined boolean NOT NULL DEFAULT false;
CREATE INDEX leases_quarantine_due ON leases (hold_until) WHERE seats_quarantined;
ALTER TABLE lease_items ADD COLUMN sizing text NOT NULL DEFAULT '';

-- Down Migration
ALTER TABLE lease_items DROP COLUMN sizing;
DROP INDEX leases_quarantine_due;
ALTER TABLE leases DROP COLUMN seats_quarantined;

-- Up Migration
-- docs/offline.md. A sale orders can never apply (SyncOfflineSales with reject_invalid) is
-- recorded as a FAILED order and a 'rejected' conflict so the kiosk's queue moves on; its
-- lease id may not even be a UUID (NULL then). A sale synced after its lease was revoked is
-- recorded as sold with a 'lease_ended' conflict the operator may accept. `sold` says
-- whether the conflict's sale is recorded as sold.
ALTER TABLE offline_sales ALTER COLUMN lease_id DROP NOT NULL;
ALTER TABLE offline_conflicts DROP CONSTRAINT offline_conflicts_kind_check;
ALTER TABLE offline_conflicts ADD CONSTRAINT offline_conflicts_kind_check CHECK (kind IN ('lease_ended', 'payment_declined', 'not_in_lease', 'rejected'));
ALTER TABLE offline_conflicts DROP CONSTRAINT offline_conflicts_resolution_check;
ALTER TABLE offline_conflicts ADD CONSTRAINT offline_conflicts_resolution_check CHECK (resolution IN ('refunded', 'written_off', 'accepted'));
ALTER TABLE offline_conflicts ADD COLUMN sold boolean NOT NULL DEFAULT false;
UPDATE offline_conflicts SET sold = true WHERE kind = 'payment_declined';

-- Down Migration
ALTER TABLE offline_conflicts DROP COLUMN sold;
ALTER TABLE offline_conflicts DROP CONSTRAINT offline_conflicts_resolution_check;
ALTER TABLE offline_conflicts ADD CONSTRAINT offline_conflicts_resolution_check CHECK (resolution IN ('refunded', 'written_off'));
ALTER TABLE offline_conflicts DROP CONSTRAINT offline_conflicts_kind_check;
ALTER TABLE offline_conflicts ADD CONSTRAINT offline_conflicts_kind_check CHECK (kind IN ('lease_ended', 'payment_declined', 'not_in_lease'));
ALTER TABLE offline_sales ALTER COLUMN lease_id SET NOT NULL;

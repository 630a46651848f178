-- Up Migration
-- A revocation calls auth once per kiosk, outside any one transaction: its action is
-- 'running' meanwhile, and each kiosk is marked applied as it is done, so a run cut short
-- (auth unreachable) carries on where it stopped and touches no kiosk twice.
ALTER TABLE bulk_actions DROP CONSTRAINT bulk_actions_state_check;
ALTER TABLE bulk_actions ADD CONSTRAINT bulk_actions_state_check CHECK (state IN ('planned', 'awaiting_approval', 'running', 'done', 'rejected', 'expired'));
ALTER TABLE bulk_action_targets ADD COLUMN applied boolean NOT NULL DEFAULT false;

-- Down Migration
ALTER TABLE bulk_action_targets DROP COLUMN applied;
UPDATE bulk_actions SET state = 'done' WHERE state = 'running';
ALTER TABLE bulk_actions DROP CONSTRAINT bulk_actions_state_check;
ALTER TABLE bulk_actions ADD CONSTRAINT bulk_actions_state_check CHECK (state IN ('planned', 'awaiting_approval', 'done', 'rejected', 'expired'));

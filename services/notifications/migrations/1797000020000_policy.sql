-- Up Migration
-- The alert policy (policy.ts, routing.ts): silences, inhibit rules, subscriptions, on-call tiers,
-- and what the sweeper needs of each alert to apply them, repeat and escalate it (a rule's
-- repeat_interval and escalation are in its definition).

-- Silences: matchers ([{label, op: = != =~ !~, value}], all must hold) over alert labels, active
-- from starts_at until ends_at (ExpireSilence sets ends_at to now).
CREATE TABLE silences (
  silence_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  matchers    jsonb NOT NULL,
  starts_at   timestamptz NOT NULL,
  ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
  created_by  text NOT NULL,
  comment     text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expired_by  text NOT NULL DEFAULT ''
);
CREATE INDEX silences_ends ON silences (ends_at DESC, silence_id);

-- Inhibit rules: an open alert matching source_matchers mutes alerts matching target_matchers
-- whose `equal` labels have the same values.
CREATE TABLE inhibit_rules (
  inhibit_rule_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  source_matchers  jsonb NOT NULL,
  target_matchers  jsonb NOT NULL,
  equal            text[] NOT NULL DEFAULT '{}',
  comment          text NOT NULL DEFAULT '',
  created_by       text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);

-- Each person's subscription (the validated Subscription message, protobuf binary).
CREATE TABLE subscriptions (
  user_id     text PRIMARY KEY,
  definition  bytea NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- On-call tiers by level (the validated OnCallTier message, protobuf binary).
CREATE TABLE on_call_tiers (
  level       integer PRIMARY KEY CHECK (level BETWEEN 1 AND 10),
  definition  bytea NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Per alert: withheld (its firing notification held back by a silence or an inhibition; sent
-- once neither holds while it still fires; checked_at: when that was last judged, the oldest are
-- judged again first), the inhibiting alert when last judged, when a firing
-- notification last named it (repeats count from there), the on-call tier last paged and when
-- the next is due.
ALTER TABLE alerts ADD COLUMN withheld boolean NOT NULL DEFAULT false;
ALTER TABLE alerts ADD COLUMN checked_at timestamptz;
ALTER TABLE alerts ADD COLUMN inhibited_by uuid;
ALTER TABLE alerts ADD COLUMN notified_at timestamptz;
ALTER TABLE alerts ADD COLUMN escalation_tier integer NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN escalate_at timestamptz;
CREATE INDEX alerts_withheld ON alerts (checked_at NULLS FIRST) WHERE withheld AND state = 'firing';
CREATE INDEX alerts_repeat ON alerts (notified_at) WHERE state = 'firing' AND notified_at IS NOT NULL;
CREATE INDEX alerts_escalate ON alerts (escalate_at) WHERE state = 'firing' AND escalate_at IS NOT NULL;

-- A change waiting to be notified: a repeat, or an escalation to on-call tier `tier` (0: neither).
ALTER TABLE alert_changes ADD COLUMN repeat boolean NOT NULL DEFAULT false;
ALTER TABLE alert_changes ADD COLUMN tier integer NOT NULL DEFAULT 0;

-- Deliveries: whom each is for ('rule', 'user:<id>', 'tier:<n>'); a person's quiet hours keep
-- a delivery from being sent, recorded as suppressed with the reason in last_result.
ALTER TABLE deliveries ADD COLUMN recipient text NOT NULL DEFAULT 'rule';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check CHECK (state IN ('pending', 'delivered', 'dead_lettered', 'suppressed'));

-- Down Migration
DELETE FROM deliveries WHERE state = 'suppressed';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check CHECK (state IN ('pending', 'delivered', 'dead_lettered'));
ALTER TABLE deliveries DROP COLUMN recipient;
DELETE FROM alert_changes WHERE repeat OR tier > 0;
ALTER TABLE alert_changes DROP COLUMN tier;
ALTER TABLE alert_changes DROP COLUMN repeat;
DROP INDEX alerts_escalate;
DROP INDEX alerts_repeat;
DROP INDEX alerts_withheld;
ALTER TABLE alerts DROP COLUMN escalate_at;
ALTER TABLE alerts DROP COLUMN escalation_tier;
ALTER TABLE alerts DROP COLUMN notified_at;
ALTER TABLE alerts DROP COLUMN inhibited_by;
ALTER TABLE alerts DROP COLUMN checked_at;
ALTER TABLE alerts DROP COLUMN withheld;
DROP TABLE on_call_tiers;
DROP TABLE subscriptions;
DROP TABLE inhibit_rules;
DROP TABLE silences;

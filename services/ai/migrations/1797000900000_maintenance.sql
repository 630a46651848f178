-- Up Migration
-- Each kiosk's telemetry as ai keeps it (link's events on stream LINK, durable consumer
-- AI_LINK_EVENTS_CONSUMER): a bounded state (maintenance.ts: the current paper roll's and the
-- temperature's 15-minute buckets of the last day, EW rates and baselines), the last risk
-- evaluated from it and what is due (published as ai.maintenance.<kiosk>.due/.cleared).
CREATE TABLE kiosk_telemetry (
  kiosk_id        text PRIMARY KEY,
  state           jsonb NOT NULL,
  last_sample_at  timestamptz,
  connected       boolean NOT NULL DEFAULT false,
  -- The start of the current online and healthy stretch; NULL when not online and healthy.
  healthy_since   timestamptz,
  risk            jsonb,
  due             text[] NOT NULL DEFAULT '{}',
  -- When paper runs out (last sample + the predicted hours); NULL when not expected.
  paper_out_at    timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kiosk_telemetry_urgency ON kiosk_telemetry ((cardinality(due)) DESC, paper_out_at, kiosk_id);

-- The last silent-failure assessment of each kiosk (silent.ts); `detected` while
-- ai.silent_failure.<kiosk>.detected stands.
CREATE TABLE silent_failures (
  kiosk_id       text PRIMARY KEY,
  detected       boolean NOT NULL,
  probability    double precision NOT NULL,
  observed       bigint NOT NULL,
  expected       double precision NOT NULL,
  window_start   timestamptz NOT NULL,
  window_end     timestamptz NOT NULL,
  detected_at    timestamptz,
  assessed_at    timestamptz NOT NULL,
  model_version  bigint NOT NULL
);
CREATE INDEX silent_failures_detected ON silent_failures (probability) WHERE detected;

-- Scheduled runs (schedule.ts): one row per job and due time, claimed by exactly one replica.
CREATE TABLE scheduled_runs (
  job          text NOT NULL,
  due_at       timestamptz NOT NULL,
  claimed_by   text NOT NULL,
  claimed_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  outcome      text,
  PRIMARY KEY (job, due_at)
);

-- Down Migration
DROP TABLE scheduled_runs;
DROP TABLE silent_failures;
DROP TABLE kiosk_telemetry;

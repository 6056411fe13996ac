-- Realized performance without joining the whole log on every request: per version,
-- cohort period and cohort, how many customers' last prediction in the cohort had each
-- probability, decision and label (0 none, 1 stayed, 2 churned, by the default 90-day
-- horizon). A fold adds the predictions and outcomes logged since the last one (`folded`
-- 0) by recomputing only the cohorts they touch; `performance_cohorts` keeps each cohort's
-- first and last prediction, so that a request's edge cohorts can be told whole or cut.

ALTER TABLE predictions ADD COLUMN folded SMALLINT NOT NULL DEFAULT 0;
CREATE INDEX predictions_unfolded ON predictions (id) WHERE folded = 0;
-- Folded 2: superseded, a prediction no later fold needs (an earlier one of its customer,
-- model, version and alias that day, and not the first a running split took). A fold reads
-- a customer's folded predictions through this index, so a customer scored again and again
-- costs it a few rows a day, not every row since the month began.
CREATE INDEX predictions_folded ON predictions (customer_id, scored_at) WHERE folded = 1;
ALTER TABLE outcomes ADD COLUMN folded SMALLINT NOT NULL DEFAULT 0;
CREATE INDEX outcomes_unfolded ON outcomes (customer_id) WHERE folded = 0;

CREATE TABLE performance_sums (
    name          TEXT NOT NULL,
    version       BIGINT NOT NULL,
    period        BIGINT NOT NULL,
    cohort_start  BIGINT NOT NULL,
    probability   DOUBLE PRECISION NOT NULL,
    will_churn    BIGINT NOT NULL,
    label         BIGINT NOT NULL,
    customers     BIGINT NOT NULL,
    PRIMARY KEY (name, version, period, cohort_start, probability, will_churn, label)
);

CREATE TABLE performance_cohorts (
    name             TEXT NOT NULL,
    version          BIGINT NOT NULL,
    period           BIGINT NOT NULL,
    cohort_start     BIGINT NOT NULL,
    first_scored_at  BIGINT NOT NULL,
    last_scored_at   BIGINT NOT NULL,
    PRIMARY KEY (name, version, period, cohort_start)
);

-- ExperimentReport's sums: per running traffic split (its alias and start) and arm, how
-- many customers' first prediction through the split had each probability and label.
CREATE TABLE experiment_sums (
    name         TEXT NOT NULL,
    alias        TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    version      BIGINT NOT NULL,
    probability  DOUBLE PRECISION NOT NULL,
    label        BIGINT NOT NULL,
    customers    BIGINT NOT NULL,
    PRIMARY KEY (name, alias, started_at, version, probability, label)
);

-- One row: its update is the lock folds take, and `kept_from` is the retention's cut-off
-- (cohorts starting before it lost predictions the sums still count).
CREATE TABLE performance_fold (
    id         BIGINT PRIMARY KEY,
    folded_at  BIGINT NOT NULL,
    kept_from  BIGINT NOT NULL
);
INSERT INTO performance_fold (id, folded_at, kept_from) VALUES (1, 0, -9223372036854775808);

-- The prediction log (every answer with a customer id, written off the request path in
-- batches and deleted after --prediction-log-days) and the outcomes that label it.

CREATE TABLE predictions (
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    customer_id  TEXT NOT NULL,
    probability  REAL NOT NULL,
    will_churn   INTEGER NOT NULL,
    scored_at    INTEGER NOT NULL
);
-- A version's predictions by customer then time: the order the cohort join reads them in.
CREATE INDEX predictions_by_version ON predictions (name, version, customer_id, scored_at);
-- Whether an outcome labels anything.
CREATE INDEX predictions_by_customer ON predictions (customer_id, scored_at);
-- Retention deletes the oldest.
CREATE INDEX predictions_by_time ON predictions (scored_at);

CREATE TABLE outcomes (
    customer_id  TEXT NOT NULL,
    observed_at  INTEGER NOT NULL,
    churned      INTEGER NOT NULL,
    recorded_at  INTEGER NOT NULL,
    PRIMARY KEY (customer_id, observed_at, churned)
);

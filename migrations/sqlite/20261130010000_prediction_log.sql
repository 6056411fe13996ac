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
-- The one index, kept to one so that logging stays cheap: by customer then time, the order
-- the cohort join reads a version's predictions in (other versions' rows are skipped), and
-- how an outcome finds the predictions it labels. Retention deletes scan the table.
CREATE INDEX predictions_by_customer ON predictions (customer_id, scored_at);

CREATE TABLE outcomes (
    customer_id  TEXT NOT NULL,
    observed_at  INTEGER NOT NULL,
    churned      INTEGER NOT NULL,
    recorded_at  INTEGER NOT NULL,
    PRIMARY KEY (customer_id, observed_at, churned)
);

-- The prediction log (every answer with a customer id, written off the request path in
-- batches and deleted after --prediction-log-days) and the outcomes that label it.

-- Customer ids sort by their bytes ("C"), as on SQLite: the join merges two streams
-- ordered by them.
CREATE TABLE predictions (
    name         TEXT NOT NULL,
    version      BIGINT NOT NULL,
    customer_id  TEXT COLLATE "C" NOT NULL,
    probability  DOUBLE PRECISION NOT NULL,
    will_churn   BIGINT NOT NULL,
    scored_at    BIGINT NOT NULL
);
-- The one index, kept to one so that logging stays cheap: by customer then time, the order
-- the cohort join reads a version's predictions in (other versions' rows are skipped), and
-- how an outcome finds the predictions it labels. Retention deletes scan the table.
CREATE INDEX predictions_by_customer ON predictions (customer_id, scored_at);

CREATE TABLE outcomes (
    customer_id  TEXT COLLATE "C" NOT NULL,
    observed_at  BIGINT NOT NULL,
    churned      BIGINT NOT NULL,
    recorded_at  BIGINT NOT NULL,
    PRIMARY KEY (customer_id, observed_at, churned)
);

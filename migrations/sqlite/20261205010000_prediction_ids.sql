-- Every logged prediction gets an id, unique across replicas, for the Parquet export's
-- `prediction_id`. SQLite cannot add a primary key to a table, so the table is rebuilt
-- with one, keeping every row, its columns and its index.

CREATE TABLE predictions_with_ids (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    alias        TEXT NOT NULL DEFAULT '',
    customer_id  TEXT NOT NULL,
    probability  REAL NOT NULL,
    will_churn   INTEGER NOT NULL,
    scored_at    INTEGER NOT NULL
);
INSERT INTO predictions_with_ids (name, version, alias, customer_id, probability, will_churn, scored_at)
    SELECT name, version, alias, customer_id, probability, will_churn, scored_at FROM predictions
    ORDER BY scored_at;
DROP TABLE predictions;
ALTER TABLE predictions_with_ids RENAME TO predictions;
CREATE INDEX predictions_by_customer ON predictions (customer_id, scored_at);

-- Traffic splits: an alias answered by several versions at once, each customer always by
-- the same one (by a hash of the salt and the customer id). One row per experiment: a
-- weight change keeps the row, new arms or a new salt end it and start another, and
-- SetAlias or DeleteAlias on the alias end it. Ended rows stay, so their reports can be
-- read. `arms` is the JSON list [{"version": V, "weight": W}, ...] in the caller's order.

CREATE TABLE traffic_splits (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL,
    alias       TEXT NOT NULL,
    salt        TEXT NOT NULL,
    arms        TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT
);
-- At most one running split per alias.
CREATE UNIQUE INDEX traffic_splits_running ON traffic_splits (name, alias) WHERE ended_at IS NULL;

-- The alias a prediction came through; empty when the request named a version.
ALTER TABLE predictions ADD COLUMN alias TEXT NOT NULL DEFAULT '';

-- Shadow scoring: traffic served by an alias is also scored, off the request path, by
-- another version of the same model; optionally each pair of scores is kept so that it
-- can be evaluated once outcomes are known.

CREATE TABLE shadows (
    name            TEXT NOT NULL,
    alias           TEXT NOT NULL,
    shadow_version  INTEGER NOT NULL,
    record          INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, shadow_version) REFERENCES model_versions(name, version)
);

CREATE TABLE shadow_scores (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL,
    alias           TEXT NOT NULL,
    served_version  INTEGER NOT NULL,
    shadow_version  INTEGER NOT NULL,
    customer_id     TEXT NOT NULL,
    served_score    REAL NOT NULL,
    shadow_score    REAL NOT NULL,
    created_at      INTEGER NOT NULL
);

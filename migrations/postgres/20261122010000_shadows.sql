-- Shadow scoring: traffic served by an alias is also scored, off the request path, by
-- another version of the same model; optionally each pair of scores is kept so that it
-- can be evaluated once outcomes are known.

CREATE TABLE shadows (
    name            TEXT NOT NULL,
    alias           TEXT NOT NULL,
    shadow_version  BIGINT NOT NULL,
    record          BIGINT NOT NULL DEFAULT 0 CHECK (record IN (0, 1)),
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, shadow_version) REFERENCES model_versions(name, version)
);

CREATE TABLE shadow_scores (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT NOT NULL,
    alias           TEXT NOT NULL,
    served_version  BIGINT NOT NULL,
    shadow_version  BIGINT NOT NULL,
    customer_id     TEXT NOT NULL,
    served_score    DOUBLE PRECISION NOT NULL,
    shadow_score    DOUBLE PRECISION NOT NULL,
    created_at      BIGINT NOT NULL
);

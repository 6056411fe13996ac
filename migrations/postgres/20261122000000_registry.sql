-- The model registry on PostgreSQL: the same tables and columns as the SQLite schema
-- (migrations/sqlite), so that one set of statements serves both. Times are Unix
-- milliseconds (UTC) in 64-bit integers; thresholds and scores are double precision;
-- flags are 0/1 integers as in SQLite.

CREATE TABLE models (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE model_versions (
    name              TEXT NOT NULL REFERENCES models(name),
    version           BIGINT NOT NULL CHECK (version >= 1),
    sha256            TEXT NOT NULL,
    size_bytes        BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    description       TEXT NOT NULL,
    tags              TEXT NOT NULL,      -- JSON object of strings
    feature_names     TEXT NOT NULL,      -- JSON array: dense column names given at registration
    features          TEXT NOT NULL,      -- JSON array of {name, kind, allowed_values}
    class_labels      TEXT NOT NULL,      -- JSON array
    positive_class    TEXT NOT NULL,
    threshold         DOUBLE PRECISION NOT NULL,
    risk_band_cuts    TEXT NOT NULL,      -- JSON array of two numbers
    reference_dataset TEXT NOT NULL,
    producer          TEXT NOT NULL,
    archived          BIGINT NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
    PRIMARY KEY (name, version)
);

CREATE TABLE aliases (
    name        TEXT NOT NULL,
    alias       TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
);

CREATE TABLE datasets (
    name            TEXT PRIMARY KEY NOT NULL,
    label_column    TEXT NOT NULL,
    positive_label  TEXT NOT NULL,
    description     TEXT NOT NULL,
    rows            BIGINT NOT NULL,
    positives       BIGINT NOT NULL,
    columns         TEXT NOT NULL,        -- JSON array of the header's column names
    sha256          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE evaluations (
    evaluation_id   TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    version         BIGINT NOT NULL,
    dataset         TEXT NOT NULL,
    dataset_sha256  TEXT NOT NULL,
    threshold       DOUBLE PRECISION NOT NULL,
    metrics         TEXT NOT NULL,        -- JSON
    created_at      BIGINT NOT NULL,
    -- SQLite's implicit insertion order, which listings break ties with.
    rowid           BIGINT GENERATED ALWAYS AS IDENTITY,
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
);

CREATE TABLE audit_log (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    name    TEXT NOT NULL,
    detail  TEXT NOT NULL                 -- JSON
);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_is_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

-- TRUNCATE skips row triggers; it is refused too.
CREATE TRIGGER audit_log_is_not_truncated
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- The model registry: models, their versions, aliases, datasets, evaluations, and an
-- append-only audit log of every change. Times are Unix milliseconds (UTC).

CREATE TABLE models (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE model_versions (
    name              TEXT NOT NULL REFERENCES models(name),
    version           INTEGER NOT NULL CHECK (version >= 1),
    sha256            TEXT NOT NULL,
    size_bytes        INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    description       TEXT NOT NULL,
    tags              TEXT NOT NULL,      -- JSON object of strings
    feature_names     TEXT NOT NULL,      -- JSON array: dense column names given at registration
    features          TEXT NOT NULL,      -- JSON array of {name, kind, allowed_values}
    class_labels      TEXT NOT NULL,      -- JSON array
    positive_class    TEXT NOT NULL,
    threshold         REAL NOT NULL,
    risk_band_cuts    TEXT NOT NULL,      -- JSON array of two numbers
    reference_dataset TEXT NOT NULL,
    producer          TEXT NOT NULL,
    archived          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)
);

CREATE TABLE aliases (
    name        TEXT NOT NULL,
    alias       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
);

CREATE TABLE datasets (
    name            TEXT PRIMARY KEY NOT NULL,
    label_column    TEXT NOT NULL,
    positive_label  TEXT NOT NULL,
    description     TEXT NOT NULL,
    rows            INTEGER NOT NULL,
    positives       INTEGER NOT NULL,
    columns         TEXT NOT NULL,        -- JSON array of the header's column names
    sha256          TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE evaluations (
    evaluation_id   TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    dataset         TEXT NOT NULL,
    dataset_sha256  TEXT NOT NULL,
    threshold       REAL NOT NULL,
    metrics         TEXT NOT NULL,        -- JSON
    created_at      INTEGER NOT NULL,
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    name    TEXT NOT NULL,
    detail  TEXT NOT NULL                 -- JSON
);

CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

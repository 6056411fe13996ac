-- Drift exact across replicas. Each version's bins are fixed from its reference dataset
-- (`bins`, JSON, computed the same way by whichever replica first needs them and kept
-- with the reference they came from). Every replica counts the rows it scores into those
-- bins, per minute, and writes its running counts for each minute to `drift_counts`; a
-- report sums the rows of any range over all replicas. `counts` is the JSON list of every
-- bin's count, features in the model's order then the served probability; `bins_sha256`
-- says which bins they were counted in.

CREATE TABLE drift_bins (
    name               TEXT NOT NULL,
    version            INTEGER NOT NULL,
    reference_dataset  TEXT NOT NULL,
    reference_sha256   TEXT NOT NULL,
    bins               TEXT NOT NULL,
    bins_sha256        TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE drift_counts (
    name          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    bucket_start  INTEGER NOT NULL,
    replica       TEXT NOT NULL,
    bins_sha256   TEXT NOT NULL,
    rows          INTEGER NOT NULL,
    counts        TEXT NOT NULL,
    PRIMARY KEY (name, version, bucket_start, replica)
);
CREATE INDEX drift_counts_by_time ON drift_counts (bucket_start);

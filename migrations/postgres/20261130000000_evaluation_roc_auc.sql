-- Each evaluation's ROC AUC in a column of its own, so that a listing of a model's versions
-- reads it without the metrics JSON, which also holds the curves (up to 2,000 points).
ALTER TABLE evaluations ADD COLUMN roc_auc DOUBLE PRECISION NOT NULL DEFAULT 0;
UPDATE evaluations SET roc_auc = (metrics::json ->> 'roc_auc')::double precision;

"""Monitoring from Python against a server of its own: predictions served through
`score`, outcomes recorded with `record_outcomes`, and `realized_performance` counting and
ranking them as pandas does on the same rows (ROC AUC by the Mann-Whitney statistic)."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from churnserve_client import ChurnserveError, Client

from conftest import start_server

MODEL = "telco-churn"


def mann_whitney_auc(scores: pd.Series, churned: pd.Series) -> float:
    ranks = scores.rank(method="average")
    positives, negatives = int(churned.sum()), int((~churned).sum())
    return (ranks[churned].sum() - positives * (positives + 1) / 2) / (positives * negatives)


def test_outcomes_recorded_from_python_label_the_served_predictions(tmp_path, holdout):
    process, server = start_server(tmp_path / "data")
    try:
        with Client(server.address) as client:
            scores = client.score(holdout.drop(columns=["churn"]), model=MODEL, version=1)
            churned = (holdout.churn == "Yes").to_numpy()
            outcomes = pd.DataFrame({
                "customer_id": holdout.customer_id,
                "churned": holdout.churn,  # "Yes"/"No", as the CSV has it
                "observed_at": pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=1),
            })
            # The prediction log is written in the background: wait until it holds them all.
            deadline = time.monotonic() + 30
            while client.realized_performance(MODEL, version=1, cohort="day")["scored"].sum() < len(holdout):
                assert time.monotonic() < deadline, "the predictions never reached the log"
                time.sleep(0.2)
            assert client.record_outcomes(outcomes, batch_rows=500) == (len(holdout), len(holdout))
            assert client.record_outcomes(outcomes.to_dict("records")) == (len(holdout), len(holdout))

            cohorts = client.realized_performance(MODEL, version=1, cohort="month")
            assert cohorts.attrs["served_by"]["version"] == 1
            assert cohorts["labelled"].sum() == len(holdout)
            assert cohorts["churned"].sum() == int(churned.sum())
            [cohort] = cohorts.itertuples()  # one month's cohort (unless the test straddles one)
            expected = mann_whitney_auc(scores.churn_probability, pd.Series(churned))
            assert cohort.roc_auc == pytest.approx(expected, abs=1e-9)
            assert 0.0 < cohort.estimated_roc_auc < 1.0 and cohort.empc > 0

            with pytest.raises(ValueError, match="observed_at"):
                client.record_outcomes([{"customer_id": "C1", "churned": True}])
            with pytest.raises(ChurnserveError) as refused:
                client.record_outcomes([{"customer_id": "", "churned": True, "observed_at": "2026-01-01"}])
            assert refused.value.code.name == "INVALID_ARGUMENT" and "customer_id" in refused.value.message
            with pytest.raises(ValueError, match="cohort"):
                client.realized_performance(MODEL, cohort="year")
    finally:
        process.terminate()
        process.wait(timeout=30)

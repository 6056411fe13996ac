"""Monitoring from Python against a server of its own: predictions served through
`score`, outcomes recorded with `record_outcomes`, and `realized_performance` counting and
ranking them as pandas does on the same rows (ROC AUC by the Mann-Whitney statistic), and
`drift_report` counting served rows in the version's bins as numpy does."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from churnserve_client import ChurnserveError, Client

from conftest import REPO, start_server

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


def test_drift_report_counts_the_served_rows_as_numpy_does(tmp_path):
    """The bins and counts of `models/fixtures/drift.json`, computed by numpy from the
    contract's text, for the same customers scored through `score`."""
    fixture = json.loads((REPO / "models/fixtures/drift.json").read_text())
    customers = [
        {"customer_id": c["customer_id"],
         **{name: (None if v is None else v.get("text", v.get("number"))) for name, v in c["features"].items()}}
        for c in fixture["customers"]
    ]
    process, server = start_server(tmp_path / "data")
    try:
        with Client(server.address) as client:
            client.score(customers, model=MODEL, version=1)
            report = client.drift_report(MODEL, version=1)
            assert report.attrs["served_by"]["version"] == 1
            assert report.attrs["rows"] == fixture["rows"]
            expected = [*fixture["features"], fixture["prediction"]]
            rows = [*report.to_dict("records"), report.attrs["prediction"]]
            assert [r["feature"] for r in rows] == [e["feature"] for e in expected]
            for ours, theirs in zip(rows, expected):
                assert ours["serving_count"] == theirs["serving_counts"], ours["feature"]
                assert ours["reference_fraction"] == pytest.approx(theirs["reference_fractions"], abs=1e-12)
                assert ours["psi"] == pytest.approx(theirs["psi"], abs=1e-9), ours["feature"]
            assert report.sort_values("psi").feature.iloc[-1] == "contract"

            before = client.drift_report(MODEL, version=1, since="2001-01-01", until="2001-01-02")
            assert before.attrs["rows"] == 0 and before.psi.isna().all()
            with pytest.raises(ChurnserveError) as refused:
                client.drift_report(MODEL, version=1, since="2026-02-01", until="2026-01-01")
            assert refused.value.code.name == "INVALID_ARGUMENT" and "until" in refused.value.message
    finally:
        process.terminate()
        process.wait(timeout=30)

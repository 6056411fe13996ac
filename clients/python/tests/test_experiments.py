"""Experiments from Python against a real server: a split started with `start_experiment`
answers each customer by the arm the contract's hash gives (computed here with hashlib),
`score` names each row's version, and `experiment_report` counts each arm's customers and
outcomes as pandas does on the same rows, with the comparison's z-test written out from
its textbook formula."""

from __future__ import annotations

import hashlib
import math
import time

import pandas as pd
import pytest

from churnserve_client import ChurnserveError, Client
from churnserve_client._proto.churn.v1 import monitoring_pb2, monitoring_pb2_grpc

MODEL = "telco-churn"
ALIAS = "experiment"


def contract_arm(salt: str, customer_id: str, weights: list[int]) -> int:
    h = int.from_bytes(hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()[:8], "big")
    b = (h * sum(weights)) >> 64
    running = 0
    for index, weight in enumerate(weights):
        running += weight
        if running > b:
            return index
    raise AssertionError("weights all zero")


def test_a_split_answers_by_arm_and_its_report_counts_each_arms_outcomes(server, holdout):
    customers = holdout.head(300)
    with Client(server.address) as client:
        split = client.start_experiment(MODEL, {1: 70, 2: 30}, alias=ALIAS, salt="python-test")
        assert [(a.version, a.weight) for a in split.arms] == [(1, 70), (2, 30)]
        assert client.traffic_split(MODEL, ALIAS).salt == "python-test"

        scores = client.score(customers.drop(columns=["churn"]), model=MODEL, alias=ALIAS)
        expected = [[1, 2][contract_arm("python-test", c, [70, 30])] for c in customers.customer_id]
        assert scores["version"].tolist() == expected
        assert (scores["error"] == "").all()

        observed = time.time() + 3600
        stub = monitoring_pb2_grpc.MonitoringServiceStub(client._channel)
        outcomes = [
            monitoring_pb2.Outcome(customer_id=c, churned=(label == "Yes"), observed_at={"seconds": int(observed)})
            for c, label in zip(customers.customer_id, customers.churn)
        ]
        stub.RecordOutcomes(monitoring_pb2.RecordOutcomesRequest(outcomes=outcomes))

        deadline = time.monotonic() + 15
        while True:
            report = client.experiment_report(MODEL, alias=ALIAS)
            if report["customers"].sum() == len(customers) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert report["version"].tolist() == [1, 2]
        assert report.attrs["split"]["salt"] == "python-test"

        tally = pd.DataFrame({"version": expected, "churned": (customers.churn == "Yes").to_numpy()})
        counts = tally.groupby("version")["churned"].agg(["count", "sum"])
        assert report["customers"].tolist() == counts["count"].tolist()
        assert report["labelled"].tolist() == counts["count"].tolist()
        assert report["churned"].tolist() == counts["sum"].tolist()
        rates = (counts["sum"] / counts["count"]).tolist()
        assert report["churn_rate"].tolist() == pytest.approx(rates, abs=1e-12)
        assert math.isnan(report["churn_rate_p_value"][0])

        # The pooled two-proportion z-test, from its textbook formula.
        (x1, x2), (n1, n2) = counts["sum"].tolist(), counts["count"].tolist()
        pooled = (x1 + x2) / (n1 + n2)
        z = (x2 / n2 - x1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        assert report["churn_rate_p_value"][1] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), abs=1e-12)
        assert report["churn_rate_difference"][1] == pytest.approx(x2 / n2 - x1 / n1, abs=1e-12)
        assert 0.5 < report["roc_auc"][0] <= 1.0
        assert report["labelled_needed"][1] > 0

        # set_alias ends the split; the report stays readable.
        client.set_alias(MODEL, ALIAS, 1)
        with pytest.raises(ChurnserveError) as ended:
            client.traffic_split(MODEL, ALIAS)
        assert ended.value.code.name == "NOT_FOUND"
        after = client.experiment_report(MODEL, alias=ALIAS)
        assert after.attrs["split"]["ended_at"] is not None
        assert after["customers"].tolist() == report["customers"].tolist()

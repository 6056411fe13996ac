"""What the console must show, read from the gRPC API of a running server.

    python tests/console/api_facts.py HOST:PORT facts.json

First compares the bundled model's two versions on the bundled hold-out dataset (so each
has a stored evaluation with curves), shadows `production` with version 2 and scores the
hold-out customers (so the monitoring page has drift and agreement to show), then writes,
as JSON: the models and their aliases, every version, every evaluation (metrics and curve
lengths), the DeLong p-value and the shadow's comparisons. It also splits the alias
`experiment` between both versions, scores the hold-out customers through it and records
their outcomes, and writes the experiment's report. The browser test (console.test.mjs)
checks the pages against this file.
"""

import json
import pathlib
import sys
import time

import pandas as pd
from churnserve_client import Client, _frames

import grpc
from churnserve_client._proto.churn.v1 import (
    common_pb2,
    monitoring_pb2,
    monitoring_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    scoring_pb2,
    scoring_pb2_grpc,
)

MODEL = "telco-churn"
DATASET = "telco-holdout"
HOLDOUT = pathlib.Path(__file__).resolve().parents[2] / "models" / "data" / "test.csv"
# The campaign the browser test types into the compare page's form.
CAMPAIGN = {"clv": 500.0, "incentive_cost": 50.0, "contact_cost": 5.0, "acceptance_alpha": 10.0, "acceptance_beta": 5.0}


def profits(compared: scoring_pb2.CompareResponse) -> dict:
    """Each version's campaign profit as Compare priced it, by version number."""
    return {
        str(e.served_by.version): {
            "empc": e.metrics.profit.empc,
            "empc_fraction": e.metrics.profit.empc_fraction,
            "mpc": e.metrics.profit.mpc,
            "points": len(e.metrics.profit.profit_curve),
        }
        for e in (compared.champion, compared.challenger)
    }


EXPERIMENT = "experiment"


def run_experiment(channel, customers: pd.DataFrame, schema) -> dict:
    """Splits alias `experiment` 50/50 between the versions, scores every hold-out customer
    through it, records their outcomes, and returns the report as the page must show it."""
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    scoring = scoring_pb2_grpc.ScoringServiceStub(channel)
    monitoring = monitoring_pb2_grpc.MonitoringServiceStub(channel)
    registry.SetTrafficSplit(registry_pb2.SetTrafficSplitRequest(
        name=MODEL, alias=EXPERIMENT, salt="console",
        arms=[common_pb2.TrafficArm(version=1, weight=50), common_pb2.TrafficArm(version=2, weight=50)],
    ))
    scoring.ScoreBatch(scoring_pb2.ScoreBatchRequest(
        model=common_pb2.ModelRef(name=MODEL, alias=EXPERIMENT),
        columns=_frames.columns(customers, schema.features),
    ))
    observed = int(time.time()) + 3600
    monitoring.RecordOutcomes(monitoring_pb2.RecordOutcomesRequest(outcomes=[
        monitoring_pb2.Outcome(customer_id=c, churned=(label == "Yes"), observed_at={"seconds": observed})
        for c, label in zip(customers.customer_id, customers.churn)
    ]))
    request = monitoring_pb2.ExperimentReportRequest(name=MODEL, alias=EXPERIMENT)
    for _ in range(100):
        report = monitoring.ExperimentReport(request)
        if sum(a.customers for a in report.arms) == len(customers):
            break
        time.sleep(0.2)
    return {
        "alias": EXPERIMENT,
        "arms": [{
            "version": a.served_by.version, "weight": a.weight, "customers": a.customers, "labelled": a.labelled,
            "churned": a.churned, "churn_rate": a.churn_rate, "roc_points": len(a.realized.roc_curve),
        } for a in report.arms],
        "comparisons": [{
            "version": c.version, "churn_rate_p_value": c.churn_rate_p_value, "roc_auc_p_value": c.roc_auc_p_value,
            "labelled_needed": c.labelled_needed,
        } for c in report.comparisons],
    }


def main() -> None:
    address, out = sys.argv[1], sys.argv[2]
    channel = grpc.insecure_channel(address)
    scoring = scoring_pb2_grpc.ScoringServiceStub(channel)
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    compared = scoring.Compare(scoring_pb2.CompareRequest(
        champion=common_pb2.ModelRef(name=MODEL, version=1),
        challenger=common_pb2.ModelRef(name=MODEL, version=2),
        dataset=DATASET,
    ))
    priced = scoring.Compare(scoring_pb2.CompareRequest(
        champion=common_pb2.ModelRef(name=MODEL, version=1),
        challenger=common_pb2.ModelRef(name=MODEL, version=2),
        dataset=DATASET,
        profit=scoring_pb2.ProfitParameters(**CAMPAIGN),
    ))
    # The campaigned comparison is stored last: the earlier one stays each version's
    # evaluation with the default campaign.
    registry.SetShadow(registry_pb2.SetShadowRequest(name=MODEL, alias="production", version=2))
    customers = pd.read_csv(HOLDOUT).rename(columns={"customerid": "customer_id"})
    schema = Client(address).model_version(MODEL, alias="production")
    # By the alias, as backend services call it, so that its shadow scores them too. The
    # first scores ask for the version's drift bins, computed in the background.
    for rows in (customers.head(100), customers):
        scored = scoring.ScoreBatch(scoring_pb2.ScoreBatchRequest(
            model=common_pb2.ModelRef(name=MODEL, alias="production"),
            columns=_frames.columns(rows, schema.features),
        ))
        assert all(r.HasField("prediction") for r in scored.results), "every hold-out customer is scored"
        time.sleep(1)
    experiment = run_experiment(channel, customers, schema)
    models = registry.ListModels(registry_pb2.ListModelsRequest()).models
    facts = {
        "model": MODEL,
        "dataset": DATASET,
        "models": [{"name": m.name, "latest_version": m.latest_version, "aliases": dict(m.aliases)} for m in models],
        "versions": [],
        "evaluations": [],
        "p_value": compared.roc_auc_difference.p_value,
        "paired_rows": compared.paired_rows,
        "profits": profits(compared),
        "campaign": CAMPAIGN,
        "campaign_profits": profits(priced),
        "campaign_empc_difference": priced.empc_difference,
        "experiment": experiment,
    }
    for version in registry.ListModelVersions(registry_pb2.ListModelVersionsRequest(name=MODEL, include_archived=True)).versions:
        facts["versions"].append({
            "version": version.version,
            "aliases": list(version.aliases),
            "threshold": version.threshold,
            "features": [f.name for f in version.features],
        })
    for evaluation in registry.ListEvaluations(registry_pb2.ListEvaluationsRequest(name=MODEL)).evaluations:
        metrics = evaluation.metrics
        facts["evaluations"].append({
            "evaluation_id": evaluation.evaluation_id,
            "version": evaluation.served_by.version,
            "dataset": evaluation.dataset,
            "threshold": evaluation.threshold,
            "rows": metrics.rows,
            "roc_auc": metrics.roc_auc,
            "pr_auc": metrics.pr_auc,
            "empc": metrics.profit.empc if metrics.HasField("profit") else None,
            "roc_points": len(metrics.roc_curve),
            "pr_points": len(metrics.pr_curve),
            "lift_points": len(metrics.lift),
            "calibration_points": sum(1 for b in metrics.calibration if b.count > 0),
        })
    with open(out, "w") as file:
        json.dump(facts, file, indent=2)
    print(f"{len(facts['versions'])} versions, {len(facts['evaluations'])} evaluations, p-value {facts['p_value']:.4f}")


if __name__ == "__main__":
    main()

"""churnserve_client against a real server: scores equal to a ScoreBatch built by hand from
the CSV, bad rows answered with their error, bounded memory while streaming, TLS with a test
CA, retries against a server that sheds load, and the registry helpers."""

from __future__ import annotations

import csv
import json
import math
import re
import threading
import urllib.request

import grpc
import pandas as pd
import pytest

from churnserve_client import ChurnserveError, Client
from churnserve_client._proto.churn.v1 import common_pb2, scoring_pb2, scoring_pb2_grpc

from conftest import REPO, start_server

MODEL = "telco-churn"


def hand_built_score_batch(address: str, version: int) -> list[scoring_pb2.RowResult]:
    """The hold-out customers through ScoreBatch, each value typed by hand from the CSV
    text: numbers for the numeric columns (blank: missing), text for the others."""
    numeric = {"seniorcitizen", "tenure", "monthlycharges", "totalcharges"}
    with open(REPO / "models/data/test.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    customers = []
    for row in rows:
        customer = common_pb2.Customer(customer_id=row.pop("customerid"))
        row.pop("churn")
        for name, text in row.items():
            if name in numeric:
                if text.strip():
                    customer.features[name].number = float(text)
                else:
                    customer.features[name].CopyFrom(common_pb2.FeatureValue())
            else:
                customer.features[name].text = text
        customers.append(customer)
    with grpc.insecure_channel(address) as channel:
        stub = scoring_pb2_grpc.ScoringServiceStub(channel)
        response = stub.ScoreBatch(
            scoring_pb2.ScoreBatchRequest(model=common_pb2.ModelRef(name=MODEL, version=version), customers=customers)
        )
    return list(response.results)


@pytest.mark.parametrize("version", [1, 2])
def test_score_of_the_holdout_customers_equals_score_batch(server, holdout, version):
    scored = Client(server.address).score(holdout, model=MODEL, version=version)
    expected = hand_built_score_batch(server.address, version)
    assert len(scored) == len(holdout) == len(expected) == 2113
    assert list(scored.customer_id) == list(holdout.customer_id)
    assert (scored.error == "").all(), scored.error[scored.error != ""].head()
    assert (scored.version == version).all() and (scored.model == MODEL).all()
    bands = {common_pb2.LOW: "LOW", common_pb2.MEDIUM: "MEDIUM", common_pb2.HIGH: "HIGH"}
    for row, result in zip(scored.itertuples(), expected, strict=True):
        assert row.churn_probability == result.prediction.churn_probability
        assert row.will_churn == result.prediction.will_churn
        assert row.risk_band == bands[result.prediction.risk_band]
    print(f"version {version}: {len(scored)} hold-out customers, identical to ScoreBatch")


def test_a_bad_row_comes_back_with_its_error_and_the_others_are_scored(server, holdout):
    customers = holdout.head(5).to_dict("records")
    customers[2]["tenure"] = "eleven"
    del customers[3]["contract"]
    scored = Client(server.address).score(customers)
    assert list(scored.customer_id) == [c["customer_id"] for c in customers]
    assert "`tenure`" in scored.error[2] and "eleven" in scored.error[2], scored.error[2]
    assert "`contract`" in scored.error[3] and "no value" in scored.error[3], scored.error[3]
    assert math.isnan(scored.churn_probability[2]) and math.isnan(scored.churn_probability[3])
    good = scored.drop(index=[2, 3])
    assert (good.error == "").all() and good.churn_probability.between(0, 1).all()
    alone = Client(server.address).score(holdout.head(5))
    assert list(good.churn_probability) == list(alone.churn_probability.drop(index=[2, 3]))


def test_a_refused_call_names_the_code_and_the_reason(server, holdout):
    with pytest.raises(ChurnserveError) as refused:
        Client(server.address).score(holdout.head(1), model="no-such-model")
    assert refused.value.code == grpc.StatusCode.NOT_FOUND and "no-such-model" in refused.value.message


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))


def test_streaming_200000_rows_keeps_the_client_memory_bounded(server, holdout):
    rows, batch = 200_000, 5_000
    features = holdout.drop(columns=["churn"])

    def batches():
        for start in range(0, rows, batch):
            frame = features.sample(n=batch, replace=True, random_state=start).reset_index(drop=True)
            frame["customer_id"] = [f"gen-{start + i}" for i in range(batch)]
            yield frame

    client = Client(server.address)
    first = next(batches())
    reference = client.score(first)
    before, peak, seen = rss_kib(), 0, 0
    for index, result in enumerate(client.score_stream(batches())):
        assert list(result.customer_id) == [f"gen-{seen + i}" for i in range(len(result))]
        assert (result.error == "").all()
        if index == 0:
            assert list(result.churn_probability) == list(reference.churn_probability)
        seen += len(result)
        peak = max(peak, rss_kib())
    assert seen == rows
    growth_mib = (peak - before) / 1024
    print(f"streamed {rows} rows: client RSS {before / 1024:.0f} MiB before, peak {peak / 1024:.0f} MiB (+{growth_mib:.0f} MiB)")
    # The whole input as a DataFrame alone would be ~100 MiB and its protobuf messages far more.
    assert growth_mib < 60, f"RSS grew {growth_mib:.0f} MiB while streaming"


def test_arrow_record_batches_stream_like_dataframes(server, holdout):
    pa = pytest.importorskip("pyarrow")
    features = holdout.head(300)
    table = pa.Table.from_pandas(features, preserve_index=False)
    results = list(Client(server.address).score_stream(table.to_batches(max_chunksize=100)))
    assert [len(r) for r in results] == [100, 100, 100]
    streamed = pd.concat(results, ignore_index=True)
    direct = Client(server.address).score(features)
    assert list(streamed.churn_probability) == list(direct.churn_probability)


def test_tls_with_a_test_ca_and_client_certificates(tmp_path, pki, holdout):
    process, running = start_server(
        tmp_path / "data",
        "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
        "--tls-client-ca", str(pki / "ca.pem"),
    )
    try:
        trusted = Client(f"https://{running.address}", ca_cert=pki / "ca.pem",
                         client_cert=pki / "client.pem", client_key=pki / "client.key", retries=0)
        scored = trusted.score(holdout.head(20))
        assert (scored.error == "").all() and len(scored) == 20
        without_certificate = Client(f"https://{running.address}", ca_cert=pki / "ca.pem", retries=0, timeout=10)
        with pytest.raises(ChurnserveError) as refused:
            without_certificate.score(holdout.head(1))
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
        untrusting = Client(f"https://{running.address}", client_cert=pki / "client.pem",
                            client_key=pki / "client.key", retries=0, timeout=10)
        with pytest.raises(ChurnserveError) as unverified:
            untrusting.score(holdout.head(1))
        assert unverified.value.code == grpc.StatusCode.UNAVAILABLE
        print("TLS: the test CA's server certificate verified, a client certificate required and accepted")
    finally:
        process.terminate()
        process.wait(timeout=30)


def shed_count(http_address: str) -> float:
    text = urllib.request.urlopen(f"http://{http_address}/metrics").read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("grpc_server_handled_total") and 'grpc_code="RESOURCE_EXHAUSTED"' in line)


def test_retries_carry_calls_through_a_server_that_sheds_load(tmp_path, holdout):
    process, running = start_server(tmp_path / "data", "--max-concurrent-requests", "1", "--max-queued-requests", "0")
    try:
        def hammer(retries: int, outcomes: list) -> None:
            client = Client(running.address, retries=retries, backoff=0.01)
            try:
                scored = client.score(holdout.head(400), batch_rows=20)
                outcomes.append(int((scored.error == "").sum()))
            except ChurnserveError as error:
                outcomes.append(error.code)

        def run(retries: int) -> list:
            outcomes: list = []
            threads = [threading.Thread(target=hammer, args=(retries, outcomes)) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return outcomes

        without = run(0)
        shed_without = shed_count(running.http_address)
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in without, f"the server never shed: {without}"
        with_retries = run(12)
        shed_with = shed_count(running.http_address) - shed_without
        assert with_retries == [400] * 6, with_retries
        assert shed_with > 0, "no call was shed while retrying, so nothing proved the retries"
        print(f"without retries: {without}; with retries every client scored 400 rows while the server shed {shed_with:.0f} calls")
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_evaluate_prices_a_campaign_and_score_targets_it(server, holdout):
    client = Client(server.address)
    fixture = json.loads((REPO / "models/fixtures/profit.json").read_text())
    case = next(c for c in fixture["cases"] if c["name"] == "telco-logreg hold-out / valuable customers, costly offer")
    evaluated = client.evaluate(dataset="telco-holdout", model="telco-churn", version=1,
                                profit=fixture["campaigns"][case["campaign"]])
    for field in ("empc", "empc_fraction", "mpc", "mpc_fraction"):
        assert abs(getattr(evaluated.metrics.profit, field) - case["expected"][field]) <= 1e-9, field
    customers = holdout.drop(columns=["churn"])
    scored = client.score(customers, model="telco-churn", version=1, target="profit")
    assert scored.contact.sum() == math.floor(case["expected"]["mpc_fraction"] * len(customers) + 0.5)
    assert scored[scored.contact].churn_probability.min() > scored[~scored.contact].churn_probability.max()
    budgeted = client.score(customers, model="telco-churn", version=1, target="profit", budget=50,
                            value_column="monthlycharges")
    expected_profit = budgeted.churn_probability * customers.monthlycharges.astype(float)
    top = expected_profit.sort_values(ascending=False, kind="stable").index[:50]
    assert budgeted.contact.sum() == 50 and set(budgeted.index[budgeted.contact]) == set(top)
    with pytest.raises(ValueError, match="no evaluation with a campaign profit"):
        client.score(customers.head(5), model="telco-churn", version=2, target="profit")


def test_register_alias_evaluate_and_explain(tmp_path, holdout):
    process, running = start_server(tmp_path / "data")
    try:
        client = Client(running.address)
        onnx = REPO / "models/telco-logreg.onnx"
        dataset = client.upload_dataset("holdout", REPO / "models/data/test.csv", label_column="churn", positive_label="Yes")
        assert dataset.rows == 2113
        registered = client.register("py-client", onnx, description="from pytest", tags={"team": "ml"},
                                     aliases=["staging"], reference_dataset="holdout")
        assert registered.version == 1 and list(registered.aliases) == ["staging"]
        moved = client.set_alias("py-client", "production", 1)
        assert "production" in moved.aliases
        assert client.model_version("py-client", alias="production").sha256 == registered.sha256
        labelled = holdout.head(500).drop(columns=["customer_id"])
        evaluated = client.evaluate(labelled, label="churn", model="py-client")
        assert evaluated.metrics.rows == 500 and evaluated.served_by.version == 1
        positives = int((labelled.churn == "Yes").sum())
        assert evaluated.metrics.positives == positives and 0.5 < evaluated.metrics.roc_auc <= 1
        whole = client.evaluate(dataset="holdout", model="py-client")
        assert whole.metrics.rows == 2113 and whole.metrics.positives == dataset.positives
        customer = holdout.drop(columns=["churn", "customer_id"]).iloc[0].to_dict()
        explanation = client.explain(customer, model="py-client")
        total = explanation.base_value + sum(a.contribution for a in explanation.attributions)
        assert abs(total - explanation.output_value) < 1e-9
        probability = client.score([customer], model="py-client").churn_probability[0]
        assert abs(explanation.output_value - math.log(probability / (1 - probability))) < 1e-6
        client.delete_alias("py-client", "staging")
        assert list(client.model_version("py-client", version=1).aliases) == ["production"]
        assert "py-client" in {m.name for m in client.list_models()}
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_tokens_are_sent_as_bearer_credentials(tmp_path, holdout):
    process, running = start_server(tmp_path / "data", "--read-token", "reader", "--write-token", "writer")
    try:
        with pytest.raises(ChurnserveError) as anonymous:
            Client(running.address, retries=0).score(holdout.head(1))
        assert anonymous.value.code == grpc.StatusCode.UNAUTHENTICATED
        scored = Client(running.address, token="reader").score(holdout.head(3))
        assert (scored.error == "").all()
        with pytest.raises(ChurnserveError) as reader_writes:
            Client(running.address, token="reader", retries=0).set_alias(MODEL, "staging", 2)
        assert reader_writes.value.code == grpc.StatusCode.PERMISSION_DENIED
        moved = Client(running.address, token="writer").set_alias(MODEL, "staging", 2)
        assert "staging" in moved.aliases
    finally:
        process.terminate()
        process.wait(timeout=30)

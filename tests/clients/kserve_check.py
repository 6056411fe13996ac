"""Stock KServe V2 / Triton clients against a running churnserve: tritonclient.grpc lists
the models, reads their metadata and gets, through ModelInfer, the probabilities Python
onnxruntime computes for the fixture customers (the same numbers the Rust tests require
of Score); tritonclient.http, over the V2 REST API of the HTTP port, gets for all 2,113
hold-out customers exactly what ScoreBatch answers, with binary tensors and with pure JSON;
grpcurl lists every service through reflection.

Run: python tests/clients/kserve_check.py HOST:PORT HTTP_HOST:PORT   (scripts/test.sh starts a server)
"""

import csv
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import tritonclient.grpc as triton
import tritonclient.http as triton_http
from churnserve_client import Client

REPO = pathlib.Path(__file__).resolve().parents[2]
MODEL = "telco-churn"


def fixture(name):
    return json.loads((REPO / f"models/fixtures/{name}.json").read_text())["customers"][:50]


def plain(customer):
    """A fixture customer's features as plain values: numbers, texts, None for missing."""
    return {name: None if v is None else v.get("text", v.get("number")) for name, v in customer["features"].items()}


def holdout():
    """The hold-out customers as plain values, read from the CSV as the models were trained."""
    frame = pd.read_csv(REPO / "models/data/test.csv", dtype=str, keep_default_na=False)
    numeric = ["seniorcitizen", "tenure", "monthlycharges", "totalcharges"]
    customers = []
    for row in frame.drop(columns=["customerid", "churn"]).to_dict("records"):
        for name in numeric:
            row[name] = float(row[name]) if row[name].strip() else None
        customers.append(row)
    return customers


def attach(module, name, values, datatype, binary):
    infer_input = module.InferInput(name, list(values.shape), datatype)
    if module is triton:
        infer_input.set_data_from_numpy(values)
    else:
        infer_input.set_data_from_numpy(values, binary_data=binary)
    return infer_input


def per_feature_inputs(module, metadata, customers, binary=True):
    inputs = []
    for tensor in metadata["inputs"]:
        column = [c[tensor["name"]] for c in customers]
        if tensor["datatype"] == "BYTES":
            values = np.array([[v.encode()] for v in column], dtype=object)
        else:
            dtype = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}[tensor["datatype"]]
            values = np.array([[np.nan if v is None else v] for v in column], dtype=dtype)
        inputs.append(attach(module, tensor["name"], values, tensor["datatype"], binary))
    return inputs


def category_codes():
    """The dense model's category codes: each text feature's sorted values in the training
    rows, as models/train.py encodes them (its `churnserve.categories` metadata)."""
    def rows(name):
        with open(REPO / f"models/data/{name}.csv", newline="") as file:
            return list(csv.DictReader(file))
    test_ids = {row["customerid"] for row in rows("test")}
    train = [row for row in rows("train") if row["customerid"] not in test_ids]
    text = {name for name, value in fixture("telco-lgbm")[0]["features"].items() if value and "text" in value}
    return {name: sorted({row[name] for row in train}) for name in text}


def dense_inputs(module, metadata, customers, binary=True):
    (tensor,) = metadata["inputs"]
    assert [int(d) for d in tensor["shape"]] == [-1, len(FEATURE_ORDER)], tensor
    codes = category_codes()
    rows = []
    for customer in customers:
        row = []
        for feature in FEATURE_ORDER:
            value = customer[feature]
            if feature in codes:
                row.append(codes[feature].index(value))
            else:
                row.append(np.nan if value is None else value)
        rows.append(row)
    values = np.array(rows, dtype=np.float32)
    return [attach(module, tensor["name"], values, tensor["datatype"], binary)]


def inputs_for(module, metadata, customers, binary=True):
    assert metadata["outputs"][0]["name"] == "churn_probability" and metadata["outputs"][0]["datatype"] == "FP64"
    if len(metadata["inputs"]) == 1:
        return dense_inputs(module, metadata, customers, binary)
    assert sorted(t["name"] for t in metadata["inputs"]) == sorted(customers[0])
    return per_feature_inputs(module, metadata, customers, binary)


def check_infer(client, version, name):
    customers = fixture(name)
    metadata = client.get_model_metadata(MODEL, version, as_json=True)
    inputs = inputs_for(triton, metadata, [plain(c) for c in customers])
    result = client.infer(MODEL, inputs, model_version=version,
                          outputs=[triton.InferRequestedOutput("churn_probability")])
    got = result.as_numpy("churn_probability")
    expected = np.array([c["churn_probability"] for c in customers])
    worst = float(np.max(np.abs(got - expected)))
    # The fixtures hold onnxruntime's probabilities rounded to 9 decimals.
    assert worst <= 5e-10 + 1e-15, f"version {version}: max |ModelInfer - onnxruntime| {worst}"
    print(f"version {version} ({name}): {len(customers)} customers through ModelInfer, "
          f"max |difference| from Python onnxruntime {worst:.1e}")


FEATURE_ORDER = [
    "gender", "seniorcitizen", "partner", "dependents", "tenure", "phoneservice",
    "multiplelines", "internetservice", "onlinesecurity", "onlinebackup", "deviceprotection",
    "techsupport", "streamingtv", "streamingmovies", "contract", "paperlessbilling",
    "paymentmethod", "monthlycharges", "totalcharges",
]


def check_reflection(address):
    grpcurl = shutil.which("grpcurl") or str(pathlib.Path(sys.executable).parent / "grpcurl")
    listed = subprocess.run([grpcurl, "-plaintext", address, "list"], check=True,
                            capture_output=True, text=True).stdout.split()
    for service in ["churn.v1.ScoringService", "churn.v1.RegistryService", "inference.GRPCInferenceService",
                    "grpc.health.v1.Health"]:
        assert service in listed, f"{service} missing from `grpcurl list`: {listed}"
    # grpcurl 1.8 asks the v1alpha reflection service, which lists itself.
    assert any(s.startswith("grpc.reflection.") for s in listed), listed
    print(f"grpcurl list: {' '.join(listed)}")


def check_rest(http_address, address):
    """tritonclient.http over the REST API: readiness, metadata, and every hold-out customer
    scored with binary tensors (the client's default) and with pure JSON, equal to
    ScoreBatch to the last bit."""
    client = triton_http.InferenceServerClient(url=http_address)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL, "1") and client.is_model_ready(MODEL, "2")
    assert not client.is_model_ready("no-such-model")
    assert client.get_server_metadata()["name"] == "churnserve"
    customers = holdout()
    for version in ["1", "2"]:
        metadata = client.get_model_metadata(MODEL, version)
        assert metadata["name"] == MODEL and version in metadata["versions"], metadata
        expected = Client(address).score(customers, model=MODEL, version=int(version))
        assert (expected.error == "").all()
        expected = expected.churn_probability.to_numpy()
        for binary in [True, False]:
            inputs = inputs_for(triton_http, metadata, customers, binary)
            outputs = [triton_http.InferRequestedOutput("churn_probability", binary_data=binary)]
            result = client.infer(MODEL, inputs, model_version=version, outputs=outputs)
            got = result.as_numpy("churn_probability")
            assert got.shape == expected.shape and (got == expected).all(), (
                f"version {version}, binary {binary}: max |REST - ScoreBatch| {np.max(np.abs(got - expected))}")
            print(f"REST infer, version {version}, {'binary tensors' if binary else 'JSON'}: "
                  f"{len(got)} hold-out customers identical to ScoreBatch")
    try:
        client.get_model_metadata("no-such-model")
        raise AssertionError("metadata of an unknown model was answered")
    except triton_http.InferenceServerException as error:
        assert error.status() == "404" and "no-such-model" in error.message(), error


def main(address, http_address):
    client = triton.InferenceServerClient(url=address)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, "2")
    assert not client.is_model_ready("no-such-model")
    index = client.get_model_repository_index()
    listed = {(m.name, m.version) for m in index.models}
    assert {(MODEL, "1"), (MODEL, "2")} <= listed, listed
    server = client.get_server_metadata()
    print(f"server {server.name} {server.version}, repository {sorted(listed)}")
    check_infer(client, "1", "telco-logreg")
    check_infer(client, "2", "telco-lgbm")
    check_rest(http_address, address)
    check_reflection(address)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""Stock KServe V2 / Triton clients against a running churnserve: tritonclient lists the
models, reads their metadata and gets, through ModelInfer, the probabilities Python
onnxruntime computes for the fixture customers (the same numbers the Rust tests require
of Score); grpcurl lists every service through reflection.

Run: python tests/clients/kserve_check.py HOST:PORT   (scripts/test.sh starts a server)
"""

import csv
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import tritonclient.grpc as triton

REPO = pathlib.Path(__file__).resolve().parents[2]
MODEL = "telco-churn"


def fixture(name):
    return json.loads((REPO / f"models/fixtures/{name}.json").read_text())["customers"][:50]


def per_feature_inputs(metadata, customers):
    inputs = []
    for tensor in metadata.inputs:
        column = [c["features"][tensor.name] for c in customers]
        if tensor.datatype == "BYTES":
            values = np.array([[v["text"].encode()] for v in column], dtype=object)
        else:
            dtype = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}[tensor.datatype]
            values = np.array([[np.nan if v is None else v["number"]] for v in column], dtype=dtype)
        infer_input = triton.InferInput(tensor.name, list(values.shape), tensor.datatype)
        infer_input.set_data_from_numpy(values)
        inputs.append(infer_input)
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


def dense_inputs(metadata, customers, order):
    (tensor,) = metadata.inputs
    codes = category_codes()
    rows = []
    for customer in customers:
        row = []
        for feature in order:
            value = customer["features"][feature]
            if feature in codes:
                row.append(codes[feature].index(value["text"]))
            else:
                row.append(np.nan if value is None else value["number"])
        rows.append(row)
    values = np.array(rows, dtype=np.float32)
    infer_input = triton.InferInput(tensor.name, list(values.shape), tensor.datatype)
    infer_input.set_data_from_numpy(values)
    return [infer_input]


def check_infer(client, version, name):
    customers = fixture(name)
    metadata = client.get_model_metadata(MODEL, version)
    assert metadata.outputs[0].name == "churn_probability" and metadata.outputs[0].datatype == "FP64"
    if len(metadata.inputs) == 1:
        order = FEATURE_ORDER
        assert list(metadata.inputs[0].shape) == [-1, len(order)], metadata.inputs[0]
        inputs = dense_inputs(metadata, customers, order)
    else:
        assert sorted(t.name for t in metadata.inputs) == sorted(customers[0]["features"])
        inputs = per_feature_inputs(metadata, customers)
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


def main(address):
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
    check_reflection(address)


if __name__ == "__main__":
    main(sys.argv[1])

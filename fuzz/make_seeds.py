"""Writes the committed seed corpora of the fuzz targets from real inputs:

  seeds/onnx_graph/    every bundled and test ONNX model
  seeds/dataset_csv/   slices of the Telco CSVs, and the malformed shapes uploads meet
  seeds/kserve_infer/  a selector byte (0: logistic regression, 1: LightGBM) and a
                       ModelInferRequest as the KServe test clients send it: typed contents
                       per raw feature, raw little-endian contents, and the dense tensor

Inputs that once crashed a target are kept beside them as `regression-*`. The customer
target needs none: its input is structured and draws feature names and
categories from each model's schema. Run from the repository root with the Python that
has grpcio-tools (.venv-peers: pip install -r benches/peers/requirements.txt):
  python fuzz/make_seeds.py
"""

import csv
import pathlib
import struct
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
SEEDS = ROOT / "fuzz/seeds"
INTEGERS = {"seniorcitizen", "tenure"}
REALS = {"monthlycharges", "totalcharges"}


def write(target, name, data):
    directory = SEEDS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


# Inputs that once crashed a target (`regression-*`, copied from fuzz/artifacts/) stay.
for old in SEEDS.glob("*/*"):
    if not old.name.startswith("regression-"):
        old.unlink()
for model in sorted([*ROOT.glob("models/*.onnx"), *ROOT.glob("tests/models/*.onnx")]):
    write("onnx_graph", model.name, model.read_bytes())

lines = (ROOT / "models/data/test.csv").read_bytes().splitlines(keepends=True)
write("dataset_csv", "telco-20-rows.csv", b"".join(lines[:21]))
write("dataset_csv", "header-only.csv", lines[0])
write("dataset_csv", "ragged.csv", lines[0] + lines[1] + b"a,b\n")
write("dataset_csv", "quoted.csv", b'customerid,churn,note\n1,Yes,"a, ""quoted"" note"\n2,No,\n')
write("dataset_csv", "no-label.csv", b"customerid,tenure\n1,3\n")

with tempfile.TemporaryDirectory() as stubs:
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}", f"--python_out={stubs}",
                    str(ROOT / "proto/inference/grpc_predict_v2.proto")], check=True)
    sys.path.insert(0, stubs)
    from inference import grpc_predict_v2_pb2 as v2

    with open(ROOT / "models/data/test.csv", newline="") as f:
        rows = [row for _, row in zip(range(3), csv.DictReader(f))]
    features = [name for name in rows[0] if name not in ("customerid", "churn")]

    def number(text):
        return float(text) if text.strip() else float("nan")

    typed = v2.ModelInferRequest(model_name="telco-churn")
    raw = v2.ModelInferRequest(model_name="telco-churn")
    for name in features:
        datatype = "INT64" if name in INTEGERS else "FP32" if name in REALS else "BYTES"
        for request in (typed, raw):
            request.inputs.add(name=name, datatype=datatype, shape=[len(rows), 1])
        values = [row[name] for row in rows]
        contents = typed.inputs[-1].contents
        if datatype == "INT64":
            contents.int64_contents.extend(int(v) for v in values)
            raw.raw_input_contents.append(struct.pack(f"<{len(values)}q", *(int(v) for v in values)))
        elif datatype == "FP32":
            contents.fp32_contents.extend(number(v) for v in values)
            raw.raw_input_contents.append(struct.pack(f"<{len(values)}f", *(number(v) for v in values)))
        else:
            contents.bytes_contents.extend(v.encode() for v in values)
            raw.raw_input_contents.append(b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values))
    dense = v2.ModelInferRequest(model_name="telco-churn", model_version="2")
    dense.inputs.add(name="input", datatype="FP32", shape=[1, len(features)])
    dense.inputs[0].contents.fp32_contents.extend([0.0] * len(features))
    write("kserve_infer", "typed-logreg", b"\x00" + typed.SerializeToString())
    write("kserve_infer", "raw-logreg", b"\x00" + raw.SerializeToString())
    write("kserve_infer", "dense-lgbm", b"\x01" + dense.SerializeToString())

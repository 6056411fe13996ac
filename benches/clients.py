"""Client-side figures in one run, against one churnserve process:

1. KServe V2 REST `infer` (JSON, and binary tensors) against gRPC `ModelInfer` on the same
   rows, 1 row and 1,000 rows per call: calls per second of one closed-loop client each
   (keep-alive HTTP/1.1 from the standard library; a grpcio stub with the request built
   once), so the ratio is the protocol's cost, not a client library's.
2. The Python client's rows/s for 100,000 customers (`Client.score` in ScoreBatch calls of
   1,000, and `Client.score_stream` of 10,000-row DataFrames) against `churnctl score-file`
   on the same rows written as CSV.

Run: python benches/clients.py [--server target/release/churnserve] [--churnctl target/release/churnctl]
(needs tests/clients/requirements.txt and clients/python installed).
"""

from __future__ import annotations

import argparse
import http.client
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import grpc
import numpy as np
import pandas as pd
from tritonclient.grpc import service_pb2, service_pb2_grpc

from churnserve_client import Client

REPO = pathlib.Path(__file__).resolve().parents[1]
MODEL, VERSION = "telco-churn", "1"
SECONDS = 3.0


def start(binary: str, data_dir: pathlib.Path) -> tuple[subprocess.Popen, str, str]:
    log = data_dir.parent / "server.log"
    process = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    for _ in range(600):
        text = log.read_text()
        grpc_address = re.search(r"listening on ([0-9.]+:[0-9]+)", text)
        http_address = re.search(r"on http://([0-9.]+:[0-9]+)", text)
        if grpc_address and http_address:
            return process, grpc_address.group(1), http_address.group(1)
        time.sleep(0.05)
    process.kill()
    sys.exit(f"the server did not start:\n{log.read_text()}")


def holdout() -> pd.DataFrame:
    return pd.read_csv(REPO / "models/data/test.csv").rename(columns={"customerid": "customer_id"})


def rows_for(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    return pd.concat([frame] * (count // len(frame) + 1), ignore_index=True).head(count)


def metadata(http_address: str) -> list[dict]:
    connection = http.client.HTTPConnection(http_address)
    connection.request("GET", f"/v2/models/{MODEL}/versions/{VERSION}")
    return json.loads(connection.getresponse().read())["inputs"]


def column(frame: pd.DataFrame, name: str, datatype: str) -> list:
    values = frame[name]
    if datatype == "BYTES":
        return [str(v) for v in values]
    numbers = pd.to_numeric(values, errors="coerce")
    if datatype == "INT64":
        return [int(v) for v in numbers]
    return [None if np.isnan(v) else float(v) for v in numbers]


def rest_bodies(frame: pd.DataFrame, inputs: list[dict]) -> tuple[bytes, bytes, int]:
    """The same rows as a pure JSON body, and as a binary-extension body with its JSON
    header's length."""
    count = len(frame)
    tensors, binary_tensors, blobs = [], [], []
    for spec in inputs:
        data = column(frame, spec["name"], spec["datatype"])
        tensors.append({"name": spec["name"], "datatype": spec["datatype"], "shape": [count, 1], "data": data})
        if spec["datatype"] == "BYTES":
            blob = b"".join(len(t.encode()).to_bytes(4, "little") + t.encode() for t in data)
        elif spec["datatype"] == "INT64":
            blob = np.array(data, dtype="<i8").tobytes()
        else:
            dtype = "<f4" if spec["datatype"] == "FP32" else "<f8"
            blob = np.array([np.nan if v is None else v for v in data], dtype=dtype).tobytes()
        blobs.append(blob)
        binary_tensors.append({"name": spec["name"], "datatype": spec["datatype"], "shape": [count, 1],
                               "parameters": {"binary_data_size": len(blob)}})
    outputs = [{"name": "churn_probability"}]
    plain = json.dumps({"inputs": tensors, "outputs": outputs}).encode()
    header = json.dumps({"inputs": binary_tensors,
                         "outputs": [{"name": "churn_probability", "parameters": {"binary_data": True}}]}).encode()
    return plain, header + b"".join(blobs), len(header)


def grpc_request(frame: pd.DataFrame, inputs: list[dict]) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name=MODEL, model_version=VERSION)
    for spec in inputs:
        tensor = request.inputs.add(name=spec["name"], datatype=spec["datatype"], shape=[len(frame), 1])
        data = column(frame, spec["name"], spec["datatype"])
        if spec["datatype"] == "BYTES":
            tensor.contents.bytes_contents.extend(t.encode() for t in data)
        elif spec["datatype"] == "INT64":
            tensor.contents.int64_contents.extend(data)
        elif spec["datatype"] == "FP32":
            tensor.contents.fp32_contents.extend(float("nan") if v is None else v for v in data)
        else:
            tensor.contents.fp64_contents.extend(float("nan") if v is None else v for v in data)
    request.outputs.add(name="churn_probability")
    return request


def calls_per_second(call) -> float:
    call()  # warm: connections open, the version loaded
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < SECONDS:
        call()
        count += 1
    return count / (time.perf_counter() - started)


def protocols(address: str, http_address: str, frame: pd.DataFrame) -> None:
    inputs = metadata(http_address)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(address))
    connection = http.client.HTTPConnection(http_address)
    path = f"/v2/models/{MODEL}/versions/{VERSION}/infer"

    def rest(body: bytes, header_length: int | None):
        headers = {"Content-Type": "application/json"}
        if header_length is not None:
            headers["Inference-Header-Content-Length"] = str(header_length)
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        assert response.status == 200, answer[:300]

    print(f"{'rows/call':>9}  {'gRPC ModelInfer':>16}  {'REST JSON':>16}  {'REST binary':>16}  REST/gRPC (JSON, binary)")
    for count in [1, 1000]:
        rows = rows_for(frame, count)
        plain, binary, header_length = rest_bodies(rows, inputs)
        request = grpc_request(rows, inputs)
        grpc_rate = calls_per_second(lambda: stub.ModelInfer(request))
        json_rate = calls_per_second(lambda: rest(plain, None))
        binary_rate = calls_per_second(lambda: rest(binary, header_length))
        print(f"{count:>9}  {grpc_rate:>11.0f} /s  {json_rate:>11.0f} /s  {binary_rate:>11.0f} /s  "
              f"{json_rate / grpc_rate:.2f}, {binary_rate / grpc_rate:.2f}")


def python_client(address: str, churnctl: str, frame: pd.DataFrame, scratch: pathlib.Path) -> None:
    rows = rows_for(frame, 100_000)
    rows["customer_id"] = [f"c{i}" for i in range(len(rows))]
    client = Client(address)
    client.score(rows.head(1000))

    started = time.perf_counter()
    scored = client.score(rows)
    score_rate = len(scored) / (time.perf_counter() - started)
    assert (scored.error == "").all()

    started = time.perf_counter()
    streamed = sum(len(part) for part in client.score_stream(rows.iloc[i:i + 10_000] for i in range(0, len(rows), 10_000)))
    stream_rate = streamed / (time.perf_counter() - started)

    csv_path, out_path = scratch / "customers.csv", scratch / "scores.csv"
    rows.to_csv(csv_path, index=False)
    started = time.perf_counter()
    subprocess.run([churnctl, "--server", f"http://{address}", "score-file", str(csv_path), str(out_path), "--quiet"],
                   check=True, capture_output=True)
    churnctl_rate = len(rows) / (time.perf_counter() - started)
    print(f"100,000 rows: Client.score {score_rate:,.0f} rows/s, Client.score_stream {stream_rate:,.0f} rows/s, "
          f"churnctl score-file {churnctl_rate:,.0f} rows/s; Python/churnctl {score_rate / churnctl_rate:.2f} "
          f"(score), {stream_rate / churnctl_rate:.2f} (stream)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", default=str(REPO / "target/release/churnserve"))
    parser.add_argument("--churnctl", default=str(REPO / "target/release/churnctl"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        process, address, http_address = start(args.server, scratch / "data")
        try:
            frame = holdout()
            protocols(address, http_address, frame)
            python_client(address, args.churnctl, frame, scratch)
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()

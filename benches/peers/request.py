"""Builds the one request every peer gets, and checks a peer answers it.

  request.py STUBS_DIR body score|infer|batch OUT   writes the request as an h2load body
                                                    (gRPC framing)
  request.py STUBS_DIR check score|infer HOST:PORT  sends it once, prints the probability

score: churn.v1 Score for the first hold-out customer (churnserve and the grpcio peer).
infer: the same customer as an Open Inference Protocol (KServe V2) ModelInfer for MLServer's
       scikit-learn runtime: one column per raw feature, decoded as a pandas DataFrame.
batch: churn.v1 ScoreBatch with the first 1,000 hold-out customers as columns.
"""

import csv
import struct
import sys

import grpc

sys.path.insert(0, sys.argv[1])
from churn.v1 import common_pb2, scoring_pb2, scoring_pb2_grpc  # noqa: E402
from inference import grpc_predict_v2_pb2 as v2, grpc_predict_v2_pb2_grpc as v2_grpc  # noqa: E402

INTEGERS = {"seniorcitizen", "tenure"}
REALS = {"monthlycharges", "totalcharges"}
BATCH_ROWS = 1000

with open("models/data/test.csv", newline="") as f:
    rows = [row for _, row in zip(range(BATCH_ROWS), csv.DictReader(f))]
features = [name for name in rows[0] if name not in ("customerid", "churn")]


def number(text):
    return float(text) if text.strip() else float("nan")


def score_request(row):
    customer = common_pb2.Customer(customer_id=row["customerid"])
    for name in features:
        if name in INTEGERS or name in REALS:
            customer.features[name].number = number(row[name])
        else:
            customer.features[name].text = row[name]
    return scoring_pb2.ScoreRequest(customer=customer)


def batch_request():
    columns = scoring_pb2.CustomerColumns(customer_ids=[row["customerid"] for row in rows])
    for name in features:
        column = columns.features.add(name=name)
        if name in INTEGERS or name in REALS:
            column.numbers.values.extend(number(row[name]) for row in rows)
        else:
            column.texts.values.extend(row[name] for row in rows)
    return scoring_pb2.ScoreBatchRequest(columns=columns)


def infer_request(row):
    request = v2.ModelInferRequest(model_name="telco-churn", model_version="1")
    request.parameters["content_type"].string_param = "pd"
    for name in features:
        tensor = request.inputs.add(name=name, shape=[1])
        if name in INTEGERS:
            tensor.datatype = "INT64"
            tensor.contents.int64_contents.append(int(row[name]))
        elif name in REALS:
            tensor.datatype = "FP32"
            tensor.contents.fp32_contents.append(number(row[name]))
        else:
            tensor.datatype = "BYTES"
            tensor.parameters["content_type"].string_param = "str"
            tensor.contents.bytes_contents.append(row[name].encode())
    request.outputs.add(name="predict_proba")
    return request


kind = sys.argv[3]
request = {"score": lambda: score_request(rows[0]), "infer": lambda: infer_request(rows[0]),
           "batch": batch_request}[kind]()
if sys.argv[2] == "body":
    message = request.SerializeToString()
    with open(sys.argv[4], "wb") as out:
        out.write(struct.pack(">BI", 0, len(message)) + message)
else:
    with grpc.insecure_channel(sys.argv[4]) as channel:
        if kind == "score":
            answer = scoring_pb2_grpc.ScoringServiceStub(channel).Score(request, timeout=10)
            print(f"{answer.prediction.churn_probability:.6f}")
        else:
            answer = v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
            print(f"{answer.outputs[0].contents.fp64_contents[1]:.6f}")

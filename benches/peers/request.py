"""Builds the one Score request every peer gets, and checks a peer answers it.

  request.py STUBS_DIR body OUT      writes the request as an h2load body (gRPC framing)
  request.py STUBS_DIR check HOST:PORT  calls Score once and prints the probability
"""

import csv
import struct
import sys

import grpc

sys.path.insert(0, sys.argv[1])
from churn.v1 import common_pb2, scoring_pb2, scoring_pb2_grpc  # noqa: E402

NUMBERS = {"seniorcitizen", "tenure", "monthlycharges", "totalcharges"}

with open("models/data/test.csv", newline="") as f:
    row = next(csv.DictReader(f))
customer = common_pb2.Customer(customer_id=row["customerid"])
for name, value in row.items():
    if name in ("customerid", "churn"):
        continue
    if name in NUMBERS:
        customer.features[name].number = float(value)
    else:
        customer.features[name].text = value
request = scoring_pb2.ScoreRequest(customer=customer)

if sys.argv[2] == "body":
    message = request.SerializeToString()
    with open(sys.argv[3], "wb") as out:
        out.write(struct.pack(">BI", 0, len(message)) + message)
else:
    with grpc.insecure_channel(sys.argv[3]) as channel:
        answer = scoring_pb2_grpc.ScoringServiceStub(channel).Score(request, timeout=10)
        print(f"{answer.prediction.churn_probability:.6f}")

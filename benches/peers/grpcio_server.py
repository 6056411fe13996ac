"""The churn.v1 Score RPC as a Python user would write it: grpcio + onnxruntime.

Usage: grpcio_server.py PORT MODEL.onnx STUBS_DIR   (PORT 0: any free port)
STUBS_DIR holds the modules grpc_tools.protoc generated from proto/ (compare.sh does it).
"""

import sys
from concurrent import futures

import grpc
import numpy as np
import onnxruntime as ort

port, model_path, stubs = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, stubs)

from churn.v1 import common_pb2, scoring_pb2, scoring_pb2_grpc  # noqa: E402

options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
inputs = session.get_inputs()
probability_output = session.get_outputs()[1].name
NUMPY = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


def feed(customer):
    fed = {}
    for spec in inputs:
        value = customer.features[spec.name]
        kind = value.WhichOneof("kind")
        if spec.type == "tensor(string)":
            fed[spec.name] = np.array([[value.text]], dtype=object)
        else:
            number = value.number if kind == "number" else np.nan
            fed[spec.name] = np.array([[number]], dtype=NUMPY[spec.type])
    return fed


class Scoring(scoring_pb2_grpc.ScoringServiceServicer):
    def Score(self, request, context):
        try:
            fed = feed(request.customer)
        except KeyError as missing:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"feature {missing} is absent")
        (probabilities,) = session.run([probability_output], fed)
        churn = float(probabilities[0][1])
        band = common_pb2.HIGH if churn >= 0.6 else common_pb2.MEDIUM if churn >= 0.3 else common_pb2.LOW
        return scoring_pb2.ScoreResponse(
            prediction=common_pb2.Prediction(
                customer_id=request.customer.customer_id,
                churn_probability=churn,
                will_churn=churn >= 0.5,
                risk_band=band,
            ),
            served_by=common_pb2.ServedBy(name="telco-churn", version=1),
        )


server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
scoring_pb2_grpc.add_ScoringServiceServicer_to_server(Scoring(), server)
bound = server.add_insecure_port(f"127.0.0.1:{port}")
server.start()
print(f"listening on 127.0.0.1:{bound}", flush=True)
server.wait_for_termination()

"""The Seldon MLServer peers of benches/compare.sh, with the settings an MLServer user
writes, serving the bundled logistic regression as `telco-churn` version 1:

  sklearn  MLServer's scikit-learn runtime on the pipeline itself, trained by
           models/train.py's own functions on the same rows and saved with joblib
  onnx     models/telco-logreg.onnx through the custom runtime in onnx_runtime.py

Usage: mlserver_model.py sklearn|onnx DIR GRPC_PORT HTTP_PORT   then: mlserver start DIR
"""

import json
import pathlib
import shutil
import sys

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]

runtime, directory = sys.argv[1], pathlib.Path(sys.argv[2])
grpc_port, http_port = int(sys.argv[3]), int(sys.argv[4])
model_dir = directory / "telco-churn"
model_dir.mkdir(parents=True, exist_ok=True)
if runtime == "sklearn":
    import joblib

    sys.path.insert(0, str(REPO / "models"))
    import train

    training_rows, _ = train.load()
    pipeline, _ = train.train_logreg(training_rows)
    joblib.dump(pipeline, model_dir / "model.joblib")
    implementation, uri = "mlserver_sklearn.SKLearnModel", "./model.joblib"
else:
    shutil.copy(HERE / "onnx_runtime.py", directory)
    implementation, uri = "onnx_runtime.OnnxChurnModel", str(REPO / "models/telco-logreg.onnx")
(model_dir / "model-settings.json").write_text(json.dumps({
    "name": "telco-churn",
    "implementation": implementation,
    "parameters": {"uri": uri, "version": "1"},
}))
# Inference in the server process: on one core the default separate worker process only adds
# a hand-off per request (about 370 against 630 requests/s for the ONNX runtime, measured).
(directory / "settings.json").write_text(json.dumps({
    "parallel_workers": 0,
    "host": "127.0.0.1",
    "grpc_port": grpc_port,
    "http_port": http_port,
    "metrics_endpoint": None,
}))

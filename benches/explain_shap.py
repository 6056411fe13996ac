"""Python shap on the same models, background and customers as `cargo bench -p tests
--bench explain`, which runs this script in the same run and prints the ratios.

  tree:     shap.TreeExplainer(feature_perturbation="interventional", model_output="raw")
            on the trees of models/telco-lgbm.onnx and tests/models/telco-xgb.onnx
  logistic: shap.KernelExplainer (its default nsamples) on models/telco-logreg.onnx run by
            Python onnxruntime, categories passed as codes and decoded for the session

Prints one JSON object: per case, the median seconds per explained customer.
"""

import json
import pathlib
import statistics
import sys
import time
import warnings

import numpy as np
import onnx
import onnxruntime
import shap

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "models"))
import train  # noqa: E402  (the training script owns the data loading and the tree reader)

warnings.filterwarnings("ignore")
TREE_CUSTOMERS = 60
KERNEL_CUSTOMERS = 3


def per_customer(explain_one, rows):
    explain_one(rows[0])
    times = []
    for row in rows:
        start = time.perf_counter()
        explain_one(row)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tree_case(path, test, codes):
    background = train.dense(test.head(train.EXPLAIN_BACKGROUND), codes).astype(np.float64)
    rows = train.dense(test.iloc[train.EXPLAINED], codes).astype(np.float64)[:TREE_CUSTOMERS]
    explainer = shap.TreeExplainer(train.shap_trees(onnx.load(str(path))), data=background,
                                   feature_perturbation="interventional", model_output="raw")
    return per_customer(lambda row: explainer.shap_values(row.reshape(1, -1)), rows)


def kernel_case(test, codes):
    session = onnxruntime.InferenceSession(str(train.HERE / "telco-logreg.onnx"),
                                           providers=["CPUExecutionProvider"])

    def decode(matrix):
        feeds = {}
        for i, column in enumerate(train.FEATURES):
            values = matrix[:, i]
            if column in codes:
                feeds[column] = np.array(codes[column], dtype=object)[values.astype(int)].reshape(-1, 1)
            elif column in train.INTEGER:
                feeds[column] = values.astype(np.int64).reshape(-1, 1)
            else:
                feeds[column] = values.astype(np.float32).reshape(-1, 1)
        return feeds

    def margin(matrix):
        p = np.array([r[1] for r in session.run(None, decode(matrix))[1]], dtype=np.float64)
        p = np.clip(p, 2.0 ** -24, 1 - 2.0 ** -24)
        return np.log(p / (1 - p))

    background = train.dense(test.head(train.EXPLAIN_BACKGROUND), codes).astype(np.float64)
    rows = train.dense(test.iloc[train.EXPLAINED], codes).astype(np.float64)[:KERNEL_CUSTOMERS]
    explainer = shap.KernelExplainer(margin, background)
    return per_customer(lambda row: explainer.shap_values(row.reshape(1, -1), silent=True), rows)


def main():
    train_frame, test = train.load()
    codes = train.categories(train_frame)
    # Missing totals become the median the logistic pipeline imputes; trees route NaN.
    figures = {
        "tree_lgbm_seconds": tree_case(train.HERE / "telco-lgbm.onnx", test, codes),
        "tree_xgb_seconds": tree_case(train.REPO / "tests/models/telco-xgb.onnx", test, codes),
        "kernel_logreg_seconds": kernel_case(test.fillna({"totalcharges": test.totalcharges.median()}), codes),
        "versions": {"shap": shap.__version__, "onnxruntime": onnxruntime.__version__},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

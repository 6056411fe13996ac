"""Train and export the bundled Telco churn models and their cross-check fixtures.

Regenerates, from models/data/*.csv alone:
  telco-logreg.onnx   scikit-learn pipeline (ColumnTransformer + LogisticRegression),
                      one ONNX input per raw feature, exported with skl2onnx (ZipMap output)
  telco-lgbm.onnx     LightGBM on one dense float tensor [N,19], exported with onnxmltools;
                      feature names and category codes in the model's metadata
  fixtures/*.json     the hold-out customers as the service receives them, with the
                      probabilities Python onnxruntime computes for them
  ../tests/models/strict-onehot.onnx
                      a two-feature test pipeline whose OneHotEncoder rejects unknown
                      categories (zeros=0) and whose classes are the strings "No"/"Yes"
  ../tests/models/dense-unnamed.onnx
                      telco-lgbm without its feature-name metadata, as onnxmltools writes it
  ../tests/models/no-probability.onnx
                      a graph whose only output is an int64 label, which cannot be served

Run: python models/train.py           (after pip install -r models/requirements.txt)
     python models/train.py --check   regenerate into a temporary directory and fail if any
                                      fixture probability moves by more than 1e-6
"""

import argparse
import json
import pathlib
import sys
import tempfile

import lightgbm
import numpy as np
import onnx
import onnx.helper
import onnxruntime
import pandas as pd
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType as MlFloatTensorType
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
SEED = 20261122

CATEGORICAL = [
    "gender", "partner", "dependents", "phoneservice", "multiplelines", "internetservice",
    "onlinesecurity", "onlinebackup", "deviceprotection", "techsupport", "streamingtv",
    "streamingmovies", "contract", "paperlessbilling", "paymentmethod",
]
INTEGER = ["seniorcitizen", "tenure"]
REAL = ["monthlycharges", "totalcharges"]
FEATURES = [
    "gender", "seniorcitizen", "partner", "dependents", "tenure", "phoneservice",
    "multiplelines", "internetservice", "onlinesecurity", "onlinebackup", "deviceprotection",
    "techsupport", "streamingtv", "streamingmovies", "contract", "paperlessbilling",
    "paymentmethod", "monthlycharges", "totalcharges",
]
THRESHOLD = 0.5
RISK_BAND_CUTS = [0.3, 0.6]
FIXTURE_ROWS = 200
UNSEEN = {"contract": "Weekly", "paymentmethod": "Crypto"}


def load():
    """The published train.csv contains every test.csv row; train only on the rest."""
    train = pd.read_csv(HERE / "data/train.csv", dtype=str, keep_default_na=False)
    test = pd.read_csv(HERE / "data/test.csv", dtype=str, keep_default_na=False)
    train = train[~train.customerid.isin(set(test.customerid))].reset_index(drop=True)
    return typed(train), typed(test)


def typed(frame):
    frame = frame.copy()
    for column in INTEGER:
        frame[column] = frame[column].astype(np.int64)
    for column in REAL:
        frame[column] = pd.to_numeric(frame[column].str.strip(), errors="coerce").astype(np.float32)
    frame["label"] = (frame.churn == "Yes").astype(np.int64)
    return frame


def train_logreg(train):
    pipeline = Pipeline([
        ("prepare", ColumnTransformer(
            [("integer", StandardScaler(), INTEGER),
             ("real", Pipeline([
                 ("impute", SimpleImputer(strategy="median")),
                 ("scale", StandardScaler()),
             ]), REAL)]
            + [(column, OneHotEncoder(handle_unknown="ignore"), [column]) for column in CATEGORICAL]
        )),
        ("classify", LogisticRegression(max_iter=1000, C=1.0)),
    ])
    pipeline.fit(train[FEATURES], train.label)
    initial_types = [
        (column, StringTensorType([None, 1]) if column in CATEGORICAL
         else Int64TensorType([None, 1]) if column in INTEGER
         else FloatTensorType([None, 1]))
        for column in FEATURES
    ]
    onnx_model = convert_sklearn(pipeline, "telco-logreg", initial_types=initial_types,
                                 target_opset={"": 17, "ai.onnx.ml": 3})
    set_metadata(onnx_model, {
        "churnserve.threshold": json.dumps(THRESHOLD),
        "churnserve.risk_band_cuts": json.dumps(RISK_BAND_CUTS),
    })
    return pipeline, onnx_model


def categories(train):
    return {column: sorted(train[column].unique()) for column in CATEGORICAL}


def dense(frame, codes):
    """Text categories become their index in the sorted category list, as the engine does."""
    columns = []
    for column in FEATURES:
        if column in codes:
            columns.append(frame[column].map({v: i for i, v in enumerate(codes[column])}).astype(np.float32))
        else:
            columns.append(frame[column].astype(np.float32))
    return np.stack(columns, axis=1).astype(np.float32)


def train_lgbm(train, codes):
    model = lightgbm.LGBMClassifier(
        n_estimators=120, learning_rate=0.05, num_leaves=15, min_child_samples=20,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=SEED,
        deterministic=True, force_row_wise=True, n_jobs=1, verbose=-1,
    )
    model.fit(dense(train, codes), train.label)
    onnx_model = convert_lightgbm(model, "telco-lgbm",
                                  initial_types=[("input", MlFloatTensorType([None, len(FEATURES)]))],
                                  zipmap=False, target_opset=15)
    set_metadata(onnx_model, {
        "churnserve.feature_names": json.dumps(FEATURES),
        "churnserve.categories": json.dumps(codes),
        "churnserve.threshold": json.dumps(THRESHOLD),
        "churnserve.risk_band_cuts": json.dumps(RISK_BAND_CUTS),
    })
    return model, onnx_model


def train_strict_onehot(train):
    """A tiny pipeline that exercises what the bundled ones do not: zeros=0, string classes."""
    columns = ["contract", "tenure"]
    pipeline = Pipeline([
        ("prepare", ColumnTransformer([
            ("contract", OneHotEncoder(handle_unknown="error"), ["contract"]),
            ("tenure", StandardScaler(), ["tenure"]),
        ])),
        ("classify", LogisticRegression(max_iter=1000)),
    ])
    initial_types = [("contract", StringTensorType([None, 1])), ("tenure", FloatTensorType([None, 1]))]
    frame = train[columns].astype({"tenure": np.float32})
    pipeline.fit(frame, train.churn)
    return convert_sklearn(pipeline, "strict-onehot", initial_types=initial_types,
                           target_opset={"": 17, "ai.onnx.ml": 3})


def save(onnx_model, path):
    """The converters collect opsets in a set; sorting them makes the bytes reproducible."""
    opsets = sorted(onnx_model.opset_import, key=lambda o: o.domain)
    del onnx_model.opset_import[:]
    onnx_model.opset_import.extend(opsets)
    path.write_bytes(onnx_model.SerializeToString())


def set_metadata(onnx_model, entries):
    for key, value in entries.items():
        prop = onnx_model.metadata_props.add()
        prop.key, prop.value = key, value


def request_features(row):
    """One customer as the gRPC API carries it: text, number, or missing (None)."""
    features = {}
    for column in FEATURES:
        value = row[column]
        if column in CATEGORICAL:
            features[column] = {"text": value}
        elif isinstance(value, float) and np.isnan(value):
            features[column] = None
        else:
            features[column] = {"number": float(value)}
    return features


def onnx_probabilities(path, test, codes):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if names == ["input"]:
        feeds = {"input": dense(test, codes)}
    else:
        feeds = {}
        for column in FEATURES:
            values = test[column].to_numpy()
            if column in CATEGORICAL:
                values = values.astype(object)
            feeds[column] = values.reshape(-1, 1)
    outputs = session.run(None, feeds)
    probabilities = outputs[1]
    if isinstance(probabilities, list):
        return np.array([p[1] for p in probabilities], dtype=np.float64)
    return np.asarray(probabilities, dtype=np.float64)[:, 1]


GENERATED = [
    "models/telco-logreg.onnx", "models/telco-lgbm.onnx", "tests/models/strict-onehot.onnx",
    "tests/models/dense-unnamed.onnx", "tests/models/no-probability.onnx",
    "models/fixtures/telco-logreg.json", "models/fixtures/telco-lgbm.json", "tests/models/strict-onehot.json",
]


def fixture_probabilities(path):
    fixture = json.loads(path.read_text())
    return [c["churn_probability"] for key in ("customers", "unseen_category_customers")
            for c in fixture.get(key, [])]


def check():
    """Regenerates everything and compares it with what is committed."""
    with tempfile.TemporaryDirectory() as scratch:
        out = pathlib.Path(scratch)
        generate(out)
        failures = 0
        for relative in GENERATED:
            fresh, committed = out / relative, REPO / relative
            if fresh.read_bytes() == committed.read_bytes():
                print(f"{relative}: identical")
                continue
            if relative.endswith(".onnx"):
                print(f"{relative}: bytes differ (the fixtures below decide)")
                continue
            a, b = fixture_probabilities(fresh), fixture_probabilities(committed)
            worst = max((abs(x - y) for x, y in zip(a, b)), default=0.0)
            ok = len(a) == len(b) and worst <= 1e-6
            failures += not ok
            print(f"{relative}: {'within' if ok else 'OUTSIDE'} 1e-6 (max |delta| {worst:.2e}, rows {len(a)} vs {len(b)})")
        return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare a fresh regeneration with the committed files")
    if parser.parse_args().check:
        sys.exit(1 if check() else 0)
    generate(REPO)


def generate(out):
    train, test = load()
    codes = categories(train)
    print(f"training rows {len(train)} (positives {int(train.label.sum())}), hold-out rows {len(test)}")
    logreg, logreg_onnx = train_logreg(train)
    lgbm, lgbm_onnx = train_lgbm(train, codes)
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    save(logreg_onnx, models / "telco-logreg.onnx")
    save(lgbm_onnx, models / "telco-lgbm.onnx")
    write_strict_onehot(train, test, out / "tests/models")
    write_unservable(lgbm, out / "tests/models")

    fixtures = models / "fixtures"
    fixtures.mkdir(exist_ok=True)
    reference = {
        "telco-logreg": logreg.predict_proba(test[FEATURES])[:, 1],
        "telco-lgbm": lgbm.predict_proba(dense(test, codes))[:, 1],
    }
    for name, native in reference.items():
        probabilities = onnx_probabilities(models / f"{name}.onnx", test, codes)
        print(f"{name}: hold-out roc_auc {roc_auc_score(test.label, probabilities):.4f}, "
              f"max |onnx - native| {np.max(np.abs(probabilities - native)):.2e}")
        chosen = (test.index < FIXTURE_ROWS) | test[REAL].isna().any(axis=1)
        unseen = test.head(5).assign(**UNSEEN)
        fixture = {
            "model": name,
            "source": "models/train.py: Python onnxruntime on hold-out customers of models/data/test.csv "
                      "(the first ones and every one with a missing value)",
            "customers": [
                {"customer_id": row["customerid"], "features": request_features(row),
                 "churn_probability": round(float(p), 9)}
                for row, p in zip(test[chosen].to_dict("records"), probabilities[chosen])
            ],
        }
        if name == "telco-logreg":
            # handle_unknown="ignore" exports zeros=1: unseen categories score as all-zero one-hots.
            fixture["unseen_category_customers"] = [
                {"customer_id": row["customerid"], "features": request_features(row), "churn_probability": round(float(p), 9)}
                for row, p in zip(unseen.to_dict("records"), onnx_probabilities(models / f"{name}.onnx", unseen, codes))
            ]
        (fixtures / f"{name}.json").write_text(json.dumps(fixture, indent=1) + "\n")


def write_unservable(lgbm, target):
    """Models the registry must refuse, or accept only with more metadata."""
    unnamed = convert_lightgbm(lgbm, "dense-unnamed",
                               initial_types=[("input", MlFloatTensorType([None, len(FEATURES)]))],
                               zipmap=False, target_opset=15)
    save(unnamed, target / "dense-unnamed.onnx")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Cast", ["tenure"], ["label"], to=onnx.TensorProto.INT64)],
        "no-probability",
        [onnx.helper.make_tensor_value_info("tenure", onnx.TensorProto.FLOAT, [None, 1])],
        [onnx.helper.make_tensor_value_info("label", onnx.TensorProto.INT64, [None, 1])],
    )
    save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)],
                                producer_name="models/train.py"), target / "no-probability.onnx")


def write_strict_onehot(train, test, target):
    target.mkdir(parents=True, exist_ok=True)
    onnx_model = train_strict_onehot(train)
    save(onnx_model, target / "strict-onehot.onnx")
    session = onnxruntime.InferenceSession(str(target / "strict-onehot.onnx"), providers=["CPUExecutionProvider"])
    rows = test.head(20)
    outputs = session.run(None, {
        "contract": rows.contract.to_numpy().astype(object).reshape(-1, 1),
        "tenure": rows.tenure.to_numpy().astype(np.float32).reshape(-1, 1),
    })
    fixture = {
        "model": "strict-onehot",
        "source": "models/train.py: Python onnxruntime on the first hold-out customers of models/data/test.csv",
        "customers": [
            {"customer_id": row["customerid"],
             "features": {"contract": {"text": row["contract"]}, "tenure": {"number": float(row["tenure"])}},
             "churn_probability": round(float(p["Yes"]), 9)}
            for row, p in zip(rows.to_dict("records"), outputs[1])
        ],
    }
    (target / "strict-onehot.json").write_text(json.dumps(fixture, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Train and export the bundled Telco churn models and their cross-check fixtures.

Regenerates, from models/data/*.csv alone:
  telco-logreg.onnx   scikit-learn pipeline (ColumnTransformer + LogisticRegression),
                      one ONNX input per raw feature, exported with skl2onnx (ZipMap output)
  telco-lgbm.onnx     LightGBM on one dense float tensor [N,19], exported with onnxmltools;
                      feature names and category codes in the model's metadata
  fixtures/*.json     the hold-out customers as the service receives them, with the
                      probabilities Python onnxruntime computes for them

Run: python models/train.py   (after pip install -r models/requirements.txt)
"""

import json
import pathlib

import lightgbm
import numpy as np
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


def main():
    train, test = load()
    codes = categories(train)
    print(f"training rows {len(train)} (positives {int(train.label.sum())}), hold-out rows {len(test)}")
    logreg, logreg_onnx = train_logreg(train)
    lgbm, lgbm_onnx = train_lgbm(train, codes)
    (HERE / "telco-logreg.onnx").write_bytes(logreg_onnx.SerializeToString())
    (HERE / "telco-lgbm.onnx").write_bytes(lgbm_onnx.SerializeToString())

    fixtures = HERE / "fixtures"
    fixtures.mkdir(exist_ok=True)
    reference = {
        "telco-logreg": logreg.predict_proba(test[FEATURES])[:, 1],
        "telco-lgbm": lgbm.predict_proba(dense(test, codes))[:, 1],
    }
    for name, native in reference.items():
        probabilities = onnx_probabilities(HERE / f"{name}.onnx", test, codes)
        print(f"{name}: hold-out roc_auc {roc_auc_score(test.label, probabilities):.4f}, "
              f"max |onnx - native| {np.max(np.abs(probabilities - native)):.2e}")
        chosen = (test.index < FIXTURE_ROWS) | test[REAL].isna().any(axis=1)
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
        (fixtures / f"{name}.json").write_text(json.dumps(fixture, indent=1) + "\n")


if __name__ == "__main__":
    main()

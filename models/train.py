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
  ../tests/models/telco-xgb.onnx
                      XGBoost on the dense tensor, exported with onnxmltools (BRANCH_LT splits,
                      a base score)
  ../tests/models/telco-xgb-opset5.onnx
                      the same trees as the ai.onnx.ml opset-5 `TreeEnsemble` operator (no
                      converter here emits it yet) followed by a `Sigmoid`
  ../tests/models/telco-{forest,mlp,svm,naive-bayes}.onnx
                      the other model families behind the same ColumnTransformer as telco-logreg
  fixtures/metrics.json
                      scikit-learn's metrics (ROC AUC, average precision, log loss, Brier,
                      threshold metrics, calibration and lift tables) for the bundled models'
                      hold-out probabilities and for cases with ties and saturated scores
  fixtures/profit.json
                      the profit of retention campaigns on hold-out and tied scores, by EMP-PY
                      and empulse (models/profit_fixture.py)
  fixtures/assignment.json, fixtures/experiment.json
                      traffic-split arms by the contract's hash in hashlib, and experiment
                      statistics by statsmodels with DeLong's AUC variance by brute force
                      (models/experiment_fixture.py)
  fixtures/drift.json drift bins fixed from the hold-out reference by numpy quantiles, and a
                      served sample's counts and PSI in them (models/drift_fixture.py)
  fixtures/outcomes.json
                      a prediction log of telco-churn version 1 (hold-out customers scored
                      across day, ISO week and month edges, some more than once) and delayed
                      outcomes (some before their prediction, some past the horizon, some
                      twice), with each cohort's join done in pandas, its realized metrics by
                      scikit-learn and its label-free estimate in numpy
  fixtures/explain-*.json, ../tests/models/explain-telco-xgb.json
                      shap attributions in log-odds for hold-out customers against the first
                      EXPLAIN_BACKGROUND rows of test.csv: shap.TreeExplainer (interventional,
                      raw) on the trees read from the ONNX file, and shap.LinearExplainer on the
                      logistic pipeline's encoded columns summed per raw feature

Run: python models/train.py           (after pip install -r models/requirements.txt)
     python models/train.py --check   regenerate into a temporary directory and fail if any
                                      fixture probability moves by more than 1e-6
"""

import argparse
import json
import pathlib
import sys
import tempfile
import warnings

import lightgbm
import numpy as np
import shap
import xgboost
import onnx
import onnx.helper
import onnxruntime
import pandas as pd
from drift_fixture import drift_fixture
from experiment_fixture import assignment_fixture, experiment_fixture
from profit_fixture import profit, profit_fixture
from scipy.stats import norm
from onnxmltools import convert_lightgbm, convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType as MlFloatTensorType
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.calibration import calibration_curve
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss, confusion_matrix,
                             f1_score, log_loss, precision_recall_curve, precision_score, recall_score,
                             roc_auc_score, roc_curve)
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

# SVC(probability=True) and shap's feature_perturbation are deprecated upstream but are
# what the pinned versions export and document; the warnings would only bury the report.
warnings.filterwarnings("ignore", category=FutureWarning)

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
# Background: the first rows of test.csv, as the server takes the first rows of a version's
# reference dataset; explained: the hold-out customers right after them.
EXPLAIN_BACKGROUND = 100
EXPLAINED = slice(100, 160)


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


def raw_feature_pipeline(classifier, dense_one_hot=False):
    """Scaling, median imputation and one-hot encoding per raw feature, then `classifier`."""
    return Pipeline([
        ("prepare", ColumnTransformer(
            [("integer", StandardScaler(), INTEGER),
             ("real", Pipeline([
                 ("impute", SimpleImputer(strategy="median")),
                 ("scale", StandardScaler()),
             ]), REAL)]
            + [(column, OneHotEncoder(handle_unknown="ignore", sparse_output=not dense_one_hot), [column])
               for column in CATEGORICAL]
        )),
        ("classify", classifier),
    ])


def export_raw_feature_pipeline(pipeline, name):
    """One ONNX input per raw feature, typed as the service receives it."""
    initial_types = [
        (column, StringTensorType([None, 1]) if column in CATEGORICAL
         else Int64TensorType([None, 1]) if column in INTEGER
         else FloatTensorType([None, 1]))
        for column in FEATURES
    ]
    return convert_sklearn(pipeline, name, initial_types=initial_types,
                           target_opset={"": 17, "ai.onnx.ml": 3})


def train_logreg(train):
    pipeline = raw_feature_pipeline(LogisticRegression(max_iter=1000, C=1.0))
    pipeline.fit(train[FEATURES], train.label)
    onnx_model = export_raw_feature_pipeline(pipeline, "telco-logreg")
    set_metadata(onnx_model, {
        "churnserve.threshold": json.dumps(THRESHOLD),
        "churnserve.risk_band_cuts": json.dumps(RISK_BAND_CUTS),
    })
    return pipeline, onnx_model


def family_models(train):
    """One small model per family the model-agnostic explainer must handle."""
    families = {
        "telco-forest": (RandomForestClassifier(n_estimators=25, max_depth=6, random_state=SEED, n_jobs=1), None),
        "telco-mlp": (MLPClassifier(hidden_layer_sizes=(16,), max_iter=400, random_state=SEED), None),
        "telco-svm": (SVC(C=1.0, probability=True, random_state=SEED), 600),
        "telco-naive-bayes": (GaussianNB(), None),
    }
    for name, (classifier, rows) in families.items():
        subset = train if rows is None else train.head(rows)
        pipeline = raw_feature_pipeline(classifier, dense_one_hot=True)
        pipeline.fit(subset[FEATURES], subset.label)
        yield name, export_raw_feature_pipeline(pipeline, name)


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
    set_dense_metadata(onnx_model, codes)
    return model, onnx_model


def train_xgb(train, codes):
    model = xgboost.XGBClassifier(
        n_estimators=100, max_depth=4, learning_rate=0.1, subsample=0.8, colsample_bytree=0.8,
        random_state=SEED, n_jobs=1, tree_method="exact",
    )
    model.fit(dense(train, codes), train.label)
    onnx_model = convert_xgboost(model, "telco-xgb",
                                 initial_types=[("input", MlFloatTensorType([None, len(FEATURES)]))],
                                 target_opset=15)
    set_dense_metadata(onnx_model, codes)
    return onnx_model


OPSET5_MODES = {b"BRANCH_LEQ": 0, b"BRANCH_LT": 1, b"BRANCH_GTE": 2, b"BRANCH_GT": 3, b"BRANCH_EQ": 4, b"BRANCH_NEQ": 5}


def tree_ensemble_opset5(onnx_model, name):
    """Rewrites a binary TreeEnsembleClassifier as TreeEnsemble (ai.onnx.ml opset 5): splits
    and leaves in separate arrays, no base values (the base score is folded into the first
    tree's leaves), then a Sigmoid, since onnxruntime applies no post_transform there."""
    node = next(n for n in onnx_model.graph.node if n.op_type == "TreeEnsembleClassifier")
    a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    base = float(sum(a.get("base_values", [0.0])))
    weights = {}
    for tree, node_id, weight in zip(a["class_treeids"], a["class_nodeids"], a["class_weights"]):
        weights[(tree, node_id)] = weights.get((tree, node_id), 0.0) + weight
    keys = list(zip(a["nodes_treeids"], a["nodes_nodeids"]))
    leaves = [k for k, mode in zip(keys, a["nodes_modes"]) if mode == b"LEAF"]
    splits = [i for i, mode in enumerate(a["nodes_modes"]) if mode != b"LEAF"]
    leaf_index = {k: i for i, k in enumerate(leaves)}
    split_index = {keys[i]: j for j, i in enumerate(splits)}
    first_tree = min(a["nodes_treeids"])
    leaf_weights = [weights.get(k, 0.0) + (base if k[0] == first_tree else 0.0) for k in leaves]

    def child(tree, node_id):
        key = (tree, node_id)
        return (1, leaf_index[key]) if key in leaf_index else (0, split_index[key])

    true_children = [child(a["nodes_treeids"][i], a["nodes_truenodeids"][i]) for i in splits]
    false_children = [child(a["nodes_treeids"][i], a["nodes_falsenodeids"][i]) for i in splits]
    ensemble = onnx.helper.make_node(
        "TreeEnsemble", ["input"], ["margin"], domain="ai.onnx.ml",
        aggregate_function=1, post_transform=0, n_targets=1,
        tree_roots=[split_index[(tree, 0)] for tree in sorted(set(a["nodes_treeids"]))],
        nodes_featureids=[a["nodes_featureids"][i] for i in splits],
        nodes_splits=onnx.numpy_helper.from_array(np.array([a["nodes_values"][i] for i in splits], dtype=np.float32)),
        nodes_modes=onnx.numpy_helper.from_array(np.array([OPSET5_MODES[a["nodes_modes"][i]] for i in splits], dtype=np.uint8)),
        nodes_truenodeids=[c[1] for c in true_children], nodes_trueleafs=[c[0] for c in true_children],
        nodes_falsenodeids=[c[1] for c in false_children], nodes_falseleafs=[c[0] for c in false_children],
        nodes_missing_value_tracks_true=[a["nodes_missing_value_tracks_true"][i] for i in splits],
        leaf_targetids=[0] * len(leaf_weights),
        leaf_weights=onnx.numpy_helper.from_array(np.array(leaf_weights, dtype=np.float32)),
    )
    graph = onnx.helper.make_graph(
        [ensemble, onnx.helper.make_node("Sigmoid", ["margin"], ["probabilities"])], name,
        [onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [None, len(FEATURES)])],
        [onnx.helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [None, 1])],
    )
    opsets = [onnx.helper.make_opsetid("", 21), onnx.helper.make_opsetid("ai.onnx.ml", 5)]
    # IR version 10: the newest onnxruntime 1.31 reads.
    model = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="models/train.py", ir_version=10)
    model.metadata_props.extend(onnx_model.metadata_props)
    return model


def set_dense_metadata(onnx_model, codes):
    set_metadata(onnx_model, {
        "churnserve.feature_names": json.dumps(FEATURES),
        "churnserve.categories": json.dumps(codes),
        "churnserve.threshold": json.dumps(THRESHOLD),
        "churnserve.risk_band_cuts": json.dumps(RISK_BAND_CUTS),
    })


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


def shap_trees(onnx_model):
    """The ONNX tree ensemble in shap's own tree format, so that shap explains exactly the
    float32 trees ONNX Runtime evaluates (not the native model's float64 thresholds)."""
    node = next(n for n in onnx_model.graph.node if n.op_type in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"))
    a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    prefix = "class" if node.op_type == "TreeEnsembleClassifier" else "target"
    if a.get("post_transform") != b"LOGISTIC" or len(set(a[f"{prefix}_ids"])) != 1:
        raise ValueError(f"{onnx_model.graph.name}: not one logistic margin")
    leaf_weights = {}
    for tree, node_id, weight in zip(a[f"{prefix}_treeids"], a[f"{prefix}_nodeids"], a[f"{prefix}_weights"]):
        leaf_weights[(tree, node_id)] = leaf_weights.get((tree, node_id), 0.0) + weight
    nodes_of = {}
    for i, tree in enumerate(a["nodes_treeids"]):
        nodes_of.setdefault(tree, []).append(i)
    trees = []
    for tree, indices in sorted(nodes_of.items()):
        local = {a["nodes_nodeids"][i]: k for k, i in enumerate(indices)}
        left, right, default, features, thresholds, values = [], [], [], [], [], []
        for i in indices:
            mode = a["nodes_modes"][i]
            if mode == b"LEAF":
                left.append(-1), right.append(-1), default.append(-1), features.append(-2), thresholds.append(0.0)
                values.append([leaf_weights.get((tree, a["nodes_nodeids"][i]), 0.0)])
                continue
            threshold = np.float32(a["nodes_values"][i])
            if mode == b"BRANCH_LT":  # shap splits on <=; on float32 inputs x < t is x <= prev(t)
                threshold = np.nextafter(threshold, np.float32(-np.inf))
            elif mode != b"BRANCH_LEQ":
                raise ValueError(f"node mode {mode} not converted")
            true_node, false_node = local[a["nodes_truenodeids"][i]], local[a["nodes_falsenodeids"][i]]
            left.append(true_node), right.append(false_node), features.append(a["nodes_featureids"][i])
            default.append(true_node if a["nodes_missing_value_tracks_true"][i] else false_node)
            thresholds.append(float(threshold)), values.append([0.0])
        trees.append({"children_left": np.array(left), "children_right": np.array(right),
                      "children_default": np.array(default), "features": np.array(features),
                      "thresholds": np.array(thresholds), "values": np.array(values),
                      "node_sample_weight": np.ones(len(left))})
    return {"trees": trees, "base_offset": float(sum(a.get("base_values", [0.0])))}


def logit(p):
    return np.log(p / (1.0 - p))


def explain_trees(path, test, codes):
    """shap.TreeExplainer on the ONNX trees; also checks that those trees are the model."""
    background = dense(test.head(EXPLAIN_BACKGROUND), codes).astype(np.float64)
    explained = test.iloc[EXPLAINED]
    rows = dense(explained, codes).astype(np.float64)
    explainer = shap.TreeExplainer(shap_trees(onnx.load(str(path))), data=background,
                                   feature_perturbation="interventional", model_output="raw")
    values = explainer.shap_values(rows)
    margins = explainer.expected_value + values.sum(axis=1)
    onnx_margins = logit(onnx_probabilities(path, explained, codes))
    drift = np.max(np.abs(margins - onnx_margins))
    if drift > 1e-4:
        raise ValueError(f"{path.name}: shap's reading of the trees is {drift:.2e} away from onnxruntime")
    print(f"{path.name}: shap TreeExplainer on the ONNX trees, max |margin - logit(onnxruntime)| {drift:.2e}")
    return float(explainer.expected_value), explained, values, margins


def encoded(prepare, frame):
    """The pipeline's encoded columns for `frame`, dense."""
    matrix = prepare.transform(frame[FEATURES])
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def per_raw_feature(prepare, columns_matrix):
    """Sums encoded columns into the raw feature each came from: a one-hot group into its
    category column, scalers one to one."""
    out = np.zeros((columns_matrix.shape[0], len(FEATURES)))
    for transformer, _, raw in prepare.transformers_:
        columns = prepare.output_indices_[transformer]
        if transformer == "remainder" or columns.start == columns.stop:
            continue
        if len(raw) == 1:
            out[:, FEATURES.index(raw[0])] += columns_matrix[:, columns].sum(axis=1)
        else:
            for offset, feature in enumerate(raw):
                out[:, FEATURES.index(feature)] += columns_matrix[:, columns.start + offset]
    return out


def explain_logreg(pipeline, test):
    """Exact interventional Shapley values of the logistic margin: shap.LinearExplainer on
    the encoded columns, summed over the columns each raw feature becomes."""
    prepare, classify = pipeline.named_steps["prepare"], pipeline.named_steps["classify"]
    background = encoded(prepare, test.head(EXPLAIN_BACKGROUND))
    explained = test.iloc[EXPLAINED]
    explainer = shap.LinearExplainer((classify.coef_[0], classify.intercept_[0]), background,
                                     feature_perturbation="interventional")
    values = per_raw_feature(prepare, explainer.shap_values(encoded(prepare, explained)))
    margins = explainer.expected_value + values.sum(axis=1)
    return float(explainer.expected_value), explained, values, margins


def linear_native_importance(pipeline, test):
    """The standard deviation, over the background rows, of each raw feature's term in the
    logistic margin (coefficient × encoded value, summed over the feature's columns)."""
    prepare, classify = pipeline.named_steps["prepare"], pipeline.named_steps["classify"]
    terms = per_raw_feature(prepare, encoded(prepare, test.head(EXPLAIN_BACKGROUND)) * classify.coef_[0])
    return {feature: round(float(std), 12) for feature, std in zip(FEATURES, terms.std(axis=0))}


def explanation_fixture(name, method, explanation):
    base_value, explained, values, margins = explanation
    return {
        "model": name,
        "source": f"models/train.py: {method}",
        "background": {"csv": "models/data/test.csv", "first_rows": EXPLAIN_BACKGROUND},
        "base_value": round(base_value, 12),
        "customers": [
            {"customer_id": row["customerid"], "features": request_features(row),
             "output_value": round(float(margin), 12),
             "attributions": {feature: round(float(v), 12) for feature, v in zip(FEATURES, row_values)}}
            for row, row_values, margin in zip(explained.to_dict("records"), values, margins)
        ],
    }


CALIBRATION_BINS = 10


def metrics(scores, churned, threshold):
    """What churnserve's Evaluate must report, by scikit-learn where it has the metric."""
    predicted = scores >= threshold
    tn, fp, fn, tp = confusion_matrix(churned, predicted, labels=[False, True]).ravel()
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    bins = np.searchsorted(edges[1:-1], scores)  # calibration_curve's binning
    counts = np.bincount(bins, minlength=CALIBRATION_BINS)
    prob_true, prob_pred = calibration_curve(churned, scores, n_bins=CALIBRATION_BINS, strategy="uniform")
    calibration = []
    for b in range(CALIBRATION_BINS):
        inside = bins == b
        calibration.append({
            "lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(counts[b]),
            "mean_predicted": float(scores[inside].mean()) if counts[b] else 0.0,
            "observed_rate": float(churned[inside].mean()) if counts[b] else 0.0,
        })
    filled = [c for c in calibration if c["count"]]
    assert np.allclose([c["observed_rate"] for c in filled], prob_true, rtol=0, atol=1e-12)
    assert np.allclose([c["mean_predicted"] for c in filled], prob_pred, rtol=0, atol=1e-12)
    order = np.argsort(-scores, kind="stable")
    overall = churned.mean()
    captured, lift = 0, []
    for decile, rows in enumerate(np.array_split(order, 10), start=1):
        captured += int(churned[rows].sum())
        rate = float(churned[rows].mean())
        lift.append({"decile": decile, "churn_rate": rate, "lift": rate / overall,
                     "cumulative_capture": captured / int(churned.sum())})
    zero = {"zero_division": 0.0}
    return {
        "rows": len(scores), "positives": int(churned.sum()),
        "roc_auc": roc_auc_score(churned, scores), "pr_auc": average_precision_score(churned, scores),
        "log_loss": log_loss(churned, scores, labels=[False, True]), "brier": brier_score_loss(churned, scores),
        "accuracy": accuracy_score(churned, predicted), "precision": precision_score(churned, predicted, **zero),
        "recall": recall_score(churned, predicted, **zero), "f1": f1_score(churned, predicted, **zero),
        "confusion": {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)},
        "calibration": calibration, "lift": lift,
        "roc_curve": curve_points(*roc_curve(churned, scores, drop_intermediate=True)),
        "pr_curve": curve_points(*pr_points(churned, scores)),
    }


MAX_CURVE_POINTS = 1000


def pr_points(churned, scores):
    """precision_recall_curve as (x = recall, y = precision, threshold); its last point
    (recall 0, precision 1) has no threshold, which churnserve calls +inf."""
    precision, recall, thresholds = precision_recall_curve(churned, scores, drop_intermediate=True)
    return recall, precision, np.append(thresholds, np.inf)


def curve_points(x, y, thresholds):
    """Points as churnserve stores them: at most MAX_CURVE_POINTS, evenly spaced with both
    ends kept, and +inf as null (JSON has no infinity)."""
    kept = np.arange(len(x))
    if len(kept) > MAX_CURVE_POINTS:
        last = len(kept) - 1
        kept = (np.arange(MAX_CURVE_POINTS) * last + (MAX_CURVE_POINTS - 1) // 2) // (MAX_CURVE_POINTS - 1)
    return [{"x": float(x[k]), "y": float(y[k]),
             "threshold": None if np.isinf(thresholds[k]) else float(thresholds[k])} for k in kept]


def delong(scores_a, scores_b, churned):
    """DeLong's test of two correlated ROC AUCs, from its definition: every positive-negative
    pair compared (an independent formulation of what churnserve computes with midranks)."""
    def components(scores):
        positive, negative = scores[churned][:, None], scores[~churned][None, :]
        psi = (positive > negative) + 0.5 * (positive == negative)
        return psi.mean(axis=1), psi.mean(axis=0)
    (a10, a01), (b10, b01) = components(scores_a), components(scores_b)
    s10, s01 = np.cov(np.vstack([a10, b10])), np.cov(np.vstack([a01, b01]))
    variance = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / len(a10) + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / len(a01)
    difference = b10.mean() - a10.mean()
    z = difference / np.sqrt(variance)
    return {"roc_auc_a": float(a10.mean()), "roc_auc_b": float(b10.mean()), "difference": float(difference),
            "standard_error": float(np.sqrt(variance)), "p_value": float(2 * norm.sf(abs(z)))}


def threshold_suggestions(scores, churned):
    """The thresholds `churnctl threshold` must suggest, from precision_recall_curve."""
    precision, recall, thresholds = precision_recall_curve(churned, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    f1 = 2 * precision * recall / np.where(precision + recall > 0, precision + recall, 1)
    best_f1 = np.flatnonzero(f1 == f1.max()).max()  # among equals, the highest threshold
    reachable = precision >= 0.6
    best_recall = np.flatnonzero(reachable & (recall == recall[reachable].max())).max()
    return {
        "f1": {"threshold": float(thresholds[best_f1]), "f1": float(f1[best_f1])},
        "recall@precision=0.6": {"threshold": float(thresholds[best_recall]), "recall": float(recall[best_recall])},
        "top-k=500": {"threshold": float(np.sort(scores)[::-1][499])},
    }


def estimated_metrics(probabilities, will_churn):
    """Confidence-based performance estimation, as the API contract states it: each
    probability taken as calibrated."""
    p, flagged = np.asarray(probabilities, dtype=np.float64), np.asarray(will_churn, dtype=bool)
    tp, fp = p[flagged].sum(), (1 - p[flagged]).sum()
    fn, tn = p[~flagged].sum(), (1 - p[~flagged]).sum()
    ratio = lambda num, den: float(num / den) if den else 0.0  # noqa: E731
    descending = np.sort(p)[::-1]
    last_of_tie = np.r_[descending[1:] != descending[:-1], True]
    tpr = np.r_[0.0, np.cumsum(descending)[last_of_tie] / p.sum()]
    fpr = np.r_[0.0, np.cumsum(1 - descending)[last_of_tie] / (1 - p).sum()]
    return {"roc_auc": float(np.trapezoid(tpr, fpr)), "accuracy": float((tp + tn) / len(p)),
            "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn), "f1": ratio(2 * tp, 2 * tp + fp + fn)}


DAY_MS = 86_400_000
LOG_START = pd.Timestamp("2026-02-20T00:00:00Z")  # a Friday: the log spans week and month edges


def cohort_starts(scored_at, period):
    """Each time's cohort start (UTC), by pandas' calendar."""
    times = pd.to_datetime(scored_at, unit="ms", utc=True)
    if period == "DAY":
        starts = times.dt.floor("D")
    elif period == "WEEK":
        starts = (times - pd.to_timedelta(times.dt.day_of_week, unit="D")).dt.floor("D")
    else:
        starts = times.dt.tz_localize(None).dt.to_period("M").dt.start_time.dt.tz_localize("UTC")
    return ((starts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy()


def outcome_fixture(test, probabilities):
    """A prediction log of telco-churn version 1 and outcomes, and what RealizedPerformance
    must answer: per cohort, each customer's last prediction in it, labelled by the
    customer's first outcome at or after it within the horizon."""
    rng = np.random.default_rng(20)
    ids = test.customerid.to_numpy()
    n = len(ids)
    start = int(LOG_START.value // 1_000_000)
    # Every customer scored once over 20 days; a third twice more, earlier, with other
    # probabilities (the last prediction is the one that counts).
    last_at = start + rng.integers(0, 20 * DAY_MS, n)
    rows = [(ids[i], float(probabilities[i]), int(last_at[i])) for i in range(n)]
    again = rng.choice(n, n // 3, replace=False)
    for i in again:
        for _ in range(2):
            rows.append((ids[i], float(rng.random()), int(last_at[i] - rng.integers(1, 3 * DAY_MS))))
    # Cohort edges to the millisecond: Monday 2026-02-23 00:00 and Sunday 23:59:59.999,
    # 2026-03-01 00:00 and the millisecond before.
    for k, at in enumerate(["2026-02-22T23:59:59.999Z", "2026-02-23T00:00:00Z", "2026-02-28T23:59:59.999Z",
                            "2026-03-01T00:00:00Z"]):
        rows.append((ids[k], float(probabilities[k]), int(pd.Timestamp(at).value // 1_000_000)))
    log = pd.DataFrame(rows, columns=["customer_id", "probability", "scored_at"])
    log["will_churn"] = log.probability >= THRESHOLD
    # Outcomes: for most customers, observed after their last prediction, some past the
    # 90-day horizon; for some, an earlier outcome before the prediction (ignored) or a
    # second, later one (the first counts); one recorded twice.
    churned = test.label.to_numpy().astype(bool)
    outcomes = []
    for i in range(n):
        if rng.random() < 0.15:
            continue
        delay = int(rng.integers(0, 120 * DAY_MS))
        outcomes.append((ids[i], bool(churned[i]), int(last_at[i] + delay)))
        if rng.random() < 0.1:
            outcomes.append((ids[i], not churned[i], int(last_at[i] + delay + DAY_MS)))
        if rng.random() < 0.1:
            outcomes.append((ids[i], not churned[i], int(last_at[i] - 5 * DAY_MS - 1)))
    outcomes.append(outcomes[0])
    outcomes = pd.DataFrame(outcomes, columns=["customer_id", "churned", "observed_at"])

    def realized(request):
        since, until, horizon = request["since"], request["until"], request["horizon_days"] * DAY_MS
        window = log[(log.scored_at >= since) & (log.scored_at < until)].copy()
        window["cohort"] = cohort_starts(window.scored_at, request["cohort"])
        last = window.sort_values("scored_at", kind="stable").groupby(["cohort", "customer_id"]).tail(1)
        joined = last.merge(outcomes.drop_duplicates(), on="customer_id", how="left")
        joined = joined[(joined.observed_at >= joined.scored_at) & (joined.observed_at <= joined.scored_at + horizon)]
        first = joined.sort_values(["observed_at", "churned"]).groupby(["cohort", "customer_id"]).head(1)
        labelled = last.merge(first[["cohort", "customer_id", "churned"]], on=["cohort", "customer_id"], how="left")
        cohorts = []
        for cohort, group in labelled.groupby("cohort", sort=True):
            known = group[group.churned.notna()]
            labels = known.churned.to_numpy().astype(bool)
            both = len(known) > 0 and labels.any() and not labels.all()
            cohorts.append({
                "start": int(cohort), "scored": len(group), "labelled": len(known), "churned": int(labels.sum()),
                "realized": {**metrics(known.probability.to_numpy(), labels, THRESHOLD),
                             "profit": profit(known.probability.to_numpy(), labels, "defaults")} if both else None,
                "estimated": estimated_metrics(group.probability.to_numpy(), group.will_churn.to_numpy()),
            })
        return cohorts

    at = lambda text: int(pd.Timestamp(text).value // 1_000_000)  # noqa: E731
    requests = [
        {"cohort": "DAY", "since": at("2026-02-27T00:00:00Z"), "until": at("2026-03-03T00:00:00Z"), "horizon_days": 90},
        {"cohort": "WEEK", "since": at("2026-02-01T00:00:00Z"), "until": at("2026-04-01T00:00:00Z"), "horizon_days": 90},
        {"cohort": "MONTH", "since": at("2026-02-01T00:00:00Z"), "until": at("2026-04-01T00:00:00Z"), "horizon_days": 90},
        {"cohort": "WEEK", "since": at("2026-02-01T00:00:00Z"), "until": at("2026-04-01T00:00:00Z"), "horizon_days": 30},
    ]
    return {
        "source": "models/train.py: a synthetic prediction log of telco-churn version 1 (onnxruntime's hold-out "
                  "probabilities) joined to outcomes in pandas; realized metrics by scikit-learn, the estimate in numpy",
        "model": "telco-churn", "version": 1, "threshold": THRESHOLD,
        "predictions": [{"customer_id": c, "probability": p, "will_churn": bool(w), "scored_at": int(t)}
                        for c, p, w, t in log[["customer_id", "probability", "will_churn", "scored_at"]].itertuples(index=False)],
        "outcomes": [{"customer_id": c, "churned": bool(ch), "observed_at": int(t)}
                     for c, ch, t in outcomes.itertuples(index=False)],
        "requests": [{**request, "cohorts": realized(request)} for request in requests],
        "estimates": [
            {"name": name, "probabilities": [float(v) for v in p], "will_churn": [bool(v) for v in p >= threshold],
             "expected": estimated_metrics(p, p >= threshold)}
            for name, p, threshold in [
                ("telco-logreg hold-out", probabilities, THRESHOLD),
                ("ties: probabilities rounded to one decimal", np.round(probabilities, 1), 0.3),
            ]
        ],
    }


def metric_cases(test, probabilities):
    """Hold-out probabilities as onnxruntime computes them (float32, widened exactly), plus
    ties and saturated scores."""
    churned = test.label.to_numpy().astype(bool)
    logreg = probabilities["telco-logreg"]
    saturated = logreg.copy()
    saturated[:50], saturated[50:100] = 0.0, 1.0
    rng = np.random.default_rng(19)
    many = rng.random(6000)
    many_churned = rng.random(6000) < many
    cases = [
        ("telco-logreg hold-out", logreg, churned, THRESHOLD),
        ("telco-lgbm hold-out", probabilities["telco-lgbm"], churned, THRESHOLD),
        ("ties: scores rounded to one decimal", np.round(logreg, 1), churned, 0.3),
        ("saturated scores: log loss clipping", saturated, churned, 0.7),
        ("many distinct scores: curves thinned to the cap", many, many_churned, 0.5),
    ]
    return [{"name": name, "threshold": threshold, "scores": [float(v) for v in scores],
             "churned": [bool(v) for v in labels], "expected": metrics(scores, labels, threshold)}
            for name, scores, labels, threshold in cases]


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


def single_threaded_session(path):
    """One intra-op thread, as churnserve runs each session: tree ensembles then sum their
    trees in the same order, so the fixtures hold the server's float32 results bit for bit."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_probabilities(path, test, codes):
    session = single_threaded_session(path)
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


FAMILIES = ["telco-forest", "telco-mlp", "telco-svm", "telco-naive-bayes"]
GENERATED = [
    "models/telco-logreg.onnx", "models/telco-lgbm.onnx", "tests/models/strict-onehot.onnx",
    "tests/models/dense-unnamed.onnx", "tests/models/no-probability.onnx", "tests/models/telco-xgb.onnx",
    "tests/models/telco-xgb-opset5.onnx",
    *(f"tests/models/{name}.onnx" for name in FAMILIES),
    "models/fixtures/telco-logreg.json", "models/fixtures/telco-lgbm.json", "tests/models/strict-onehot.json",
    "models/fixtures/metrics.json", "models/fixtures/profit.json", "models/fixtures/outcomes.json",
    "models/fixtures/explain-telco-logreg.json", "models/fixtures/explain-telco-lgbm.json",
    "tests/models/explain-telco-xgb.json",
]


def fixture_numbers(path):
    """Every number a test compares: probabilities, margins and attributions, metrics."""
    fixture = json.loads(path.read_text())
    numbers = [fixture.get("base_value", 0.0)]
    for key in ("customers", "unseen_category_customers"):
        for customer in fixture.get(key, []):
            numbers.append(customer.get("churn_probability", customer.get("output_value")))
            numbers.extend(customer.get("attributions", {}).values())
    numbers.extend(v for v in fixture.get("comparison", {}).values() if isinstance(v, float))
    for score_set in fixture.get("score_sets", {}).values():
        numbers.extend(score_set["scores"])
    for case in fixture.get("cases", []):
        numbers.extend(case.get("scores", []))
        numbers.extend(v for v in case["expected"].values() if isinstance(v, float))
    return numbers


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
            a, b = fixture_numbers(fresh), fixture_numbers(committed)
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
    test_models = out / "tests/models"
    write_strict_onehot(train, test, test_models)
    write_unservable(lgbm, test_models)
    xgb = train_xgb(train, codes)
    save(xgb, test_models / "telco-xgb.onnx")
    save(tree_ensemble_opset5(xgb, "telco-xgb-opset5"), test_models / "telco-xgb-opset5.onnx")
    for name, onnx_model in family_models(train):
        save(onnx_model, test_models / f"{name}.onnx")

    fixtures = models / "fixtures"
    fixtures.mkdir(exist_ok=True)
    reference = {
        "telco-logreg": logreg.predict_proba(test[FEATURES])[:, 1],
        "telco-lgbm": lgbm.predict_proba(dense(test, codes))[:, 1],
    }
    hold_out = {}
    for name, native in reference.items():
        probabilities = onnx_probabilities(models / f"{name}.onnx", test, codes)
        hold_out[name] = probabilities
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

    churned = test.label.to_numpy().astype(bool)
    (fixtures / "metrics.json").write_text(json.dumps({
        "source": "models/train.py: scikit-learn metrics of onnxruntime's hold-out probabilities",
        "cases": metric_cases(test, hold_out),
        "comparison": {"a": "telco-logreg", "b": "telco-lgbm",
                       **delong(hold_out["telco-logreg"], hold_out["telco-lgbm"], churned)},
        "thresholds": {"model": "telco-logreg", **threshold_suggestions(hold_out["telco-logreg"], churned)},
    }) + "\n")

    forest = onnx_probabilities(test_models / "telco-forest.onnx", test, codes)
    (fixtures / "profit.json").write_text(
        json.dumps(profit_fixture(churned, {**hold_out, "telco-forest": forest})) + "\n")

    (fixtures / "outcomes.json").write_text(json.dumps(outcome_fixture(test, hold_out["telco-logreg"])) + "\n")
    (fixtures / "assignment.json").write_text(json.dumps(assignment_fixture(), indent=0) + "\n")
    (fixtures / "experiment.json").write_text(
        json.dumps(experiment_fixture(hold_out["telco-logreg"], churned)) + "\n")
    raw_test = pd.read_csv(HERE / "data/test.csv", dtype=str, keep_default_na=False)
    (fixtures / "drift.json").write_text(json.dumps(drift_fixture(
        raw_test, FEATURES, CATEGORICAL, typed,
        lambda frame: onnx_probabilities(models / "telco-logreg.onnx", frame, codes))) + "\n")

    explanations = {
        fixtures / "explain-telco-logreg.json": (
            "telco-logreg", "shap.LinearExplainer (interventional) on the encoded columns, summed per raw feature",
            explain_logreg(logreg, test)),
        fixtures / "explain-telco-lgbm.json": (
            "telco-lgbm", TREE_METHOD, explain_trees(models / "telco-lgbm.onnx", test, codes)),
        test_models / "explain-telco-xgb.json": (
            "telco-xgb", TREE_METHOD, explain_trees(test_models / "telco-xgb.onnx", test, codes)),
    }
    for path, (name, method, explanation) in explanations.items():
        fixture = explanation_fixture(name, method, explanation)
        if name == "telco-logreg":
            fixture["native_importance"] = linear_native_importance(logreg, test)
        path.write_text(json.dumps(fixture, indent=1) + "\n")


TREE_METHOD = ('shap.TreeExplainer(feature_perturbation="interventional", model_output="raw") '
               "on the trees read from the ONNX file")


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
    session = single_threaded_session(target / "strict-onehot.onnx")
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

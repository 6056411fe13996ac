"""Drift as independent Python computes it from the contract's text.

`models/train.py` writes `fixtures/drift.json` with this function: the bundled logistic
regression's drift bins fixed from its reference dataset (the hold-out customers of
`data/test.csv`, as the server seeds them) and what a served sample of customers puts in
them:
- a numeric feature's inner edges are `numpy.quantile` (default method) of its reference
  values at 0.1 ... 0.9, repeated edges dropped; bins (-inf, e1], ..., (ek, +inf), missing;
- a text feature's bins are its reference categories, sorted, then `other`;
- the served probability is binned at the deciles of the model's scores on the reference
  (Python onnxruntime);
- psi = sum (s - r) ln(s / r), s and r the serving and reference shares floored at 1e-4.
The served sample: 400 hold-out customers as they are, 300 moved to two-year contracts on
fiber, and 20 paying with a method the reference never saw.
"""

import numpy as np
import pandas as pd

FLOOR = 1e-4
DECILES = [d / 10 for d in range(1, 10)]


def numeric_values(raw, column):
    """The CSV's text read as the server reads it: a float64, blank = missing."""
    return np.array([float(v) if v.strip() else np.nan for v in raw[column]], dtype=np.float64)


def edges_of(values):
    present = values[~np.isnan(values)]
    if present.size == 0:
        return []
    edges = []
    for edge in np.quantile(present, DECILES):
        if not edges or edges[-1] != edge:
            edges.append(float(edge))
    return edges


def numeric_counts(values, edges):
    counts = np.zeros(len(edges) + 2, dtype=np.int64)
    missing = np.isnan(values)
    counts[-1] = int(missing.sum())
    # side="left": the first edge at or above the value, so bins close on the right.
    np.add.at(counts, np.searchsorted(np.array(edges), values[~missing], side="left"), 1)
    return counts


def categorical_counts(values, categories):
    index = {c: i for i, c in enumerate(categories)}
    counts = np.zeros(len(categories) + 1, dtype=np.int64)
    for value in values:
        counts[index.get(value, len(categories))] += 1
    return counts


def psi(serving, reference):
    s = np.maximum(serving / max(serving.sum(), 1), FLOOR)
    r = np.maximum(reference / reference.sum(), FLOOR)
    return float(np.sum((s - r) * np.log(s / r)))


def expected(name, bins, reference_counts, serving_counts):
    return {"feature": name, **bins,
            "reference_fractions": (reference_counts / reference_counts.sum()).tolist(),
            "serving_counts": serving_counts.tolist(),
            "psi": psi(serving_counts.astype(np.float64), reference_counts.astype(np.float64))}


def served_sample(raw):
    """The served customers, as raw CSV text frames."""
    as_is = raw.iloc[0:400].copy()
    skewed = raw.iloc[400:700].copy()
    skewed["contract"] = "Two year"
    skewed["internetservice"] = "Fiber optic"
    skewed["customerid"] = skewed["customerid"] + "-skewed"
    unseen = raw.iloc[700:720].copy()
    unseen["paymentmethod"] = "Crypto"
    unseen["customerid"] = unseen["customerid"] + "-unseen"
    return pd.concat([as_is, skewed, unseen]).reset_index(drop=True)


def drift_fixture(raw, features, categorical, typed, score):
    """`raw`: data/test.csv as text; `typed(frame)` the training's typing; `score(frame)`
    the bundled logistic regression's probabilities (onnxruntime) on a typed frame."""
    served = served_sample(raw)
    reference_scores = score(typed(raw))
    served_scores = score(typed(served))
    rows = []
    for name in features:
        if name in categorical:
            categories = sorted(set(raw[name]))
            rows.append(expected(name, {"categories": categories},
                                 categorical_counts(raw[name], categories),
                                 categorical_counts(served[name], categories)))
        else:
            edges = edges_of(numeric_values(raw, name))
            rows.append(expected(name, {"edges": edges},
                                 numeric_counts(numeric_values(raw, name), edges),
                                 numeric_counts(numeric_values(served, name), edges)))
    edges = edges_of(reference_scores)
    prediction = expected("prediction", {"edges": edges}, numeric_counts(reference_scores, edges),
                          numeric_counts(served_scores, edges))
    customers = []
    for row in served.to_dict("records"):
        features_of = {}
        for name in features:
            if name in categorical:
                features_of[name] = {"text": row[name]}
            elif row[name].strip():
                features_of[name] = {"number": float(row[name])}
            else:
                features_of[name] = None
        customers.append({"customer_id": row["customerid"], "features": features_of})
    return {
        "source": "models/drift_fixture.py: numpy quantiles and PSI, onnxruntime scores",
        "model": "telco-logreg",
        "customers": customers,
        "rows": len(customers),
        "features": rows,
        "prediction": prediction,
    }

"""Customers between pandas and the wire: a DataFrame becomes `CustomerColumns` (each
feature once, numbers packed), and results become one DataFrame row per input row."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from churnserve_client._proto.churn.v1 import common_pb2, scoring_pb2

CUSTOMER_ID = "customer_id"
RESULT_COLUMNS = ["customer_id", "churn_probability", "will_churn", "risk_band", "model", "version", "error"]
RISK_BANDS = {
    common_pb2.RISK_BAND_UNSPECIFIED: "",
    common_pb2.LOW: "LOW",
    common_pb2.MEDIUM: "MEDIUM",
    common_pb2.HIGH: "HIGH",
}


def as_frame(customers: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Customers as a DataFrame, whether they came as one or as a list of dicts."""
    if isinstance(customers, pd.DataFrame):
        return customers
    return pd.DataFrame.from_records(list(customers))


def customer_ids(frame: pd.DataFrame) -> list[str]:
    if CUSTOMER_ID not in frame.columns:
        return [""] * len(frame)
    ids = frame[CUSTOMER_ID]
    if _all_text(ids):
        return ids.tolist()
    return ["" if _missing(v) else str(v) for v in ids.tolist()]


def _all_text(series: pd.Series) -> bool:
    """Whether every cell is a string, none missing (checked in C, not cell by cell)."""
    # A string dtype is "string" to infer_dtype whatever its missing cells.
    return not series.hasnans and pd.api.types.infer_dtype(series, skipna=False) == "string"


def columns(frame: pd.DataFrame, schema: Sequence[common_pb2.FeatureSpec]) -> scoring_pb2.CustomerColumns:
    """The frame's customers as columns, read by the model's schema: columns the model does
    not take are left out; a text column of a numeric feature (a CSV's blank cells make
    one) sends the cells that read as numbers as numbers, blanks as missing, and anything
    else as text for the server to reject with its row; a missing cell is NaN in a numeric
    column and a value with no kind in any other."""
    kinds = {feature.name: feature.kind for feature in schema}
    features = []
    for name in frame.columns:
        if name == CUSTOMER_ID or name not in kinds:
            continue
        series = frame[name]
        column = scoring_pb2.FeatureColumn(name=str(name))
        numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
        if pd.api.types.is_bool_dtype(series.dtype) and not series.hasnans:
            column.flags.values.extend(series.to_numpy(dtype=bool).tolist())
        elif numeric and kinds[name] != common_pb2.TEXT:
            column.numbers.values.extend(series.to_numpy(dtype=np.float64, na_value=np.nan).tolist())
        elif kinds[name] == common_pb2.NUMBER:
            column.mixed.values.extend(number_value(v) for v in series.tolist())
        elif kinds[name] == common_pb2.TEXT and numeric:
            column.mixed.values.extend(text_value(v) for v in series.tolist())
        elif _all_text(series):
            column.texts.values.extend(series.tolist())
        else:
            column.mixed.values.extend(value(v) for v in series.tolist())
        features.append(column)
    return scoring_pb2.CustomerColumns(customer_ids=customer_ids(frame), features=features)


def number_value(cell: Any) -> common_pb2.FeatureValue:
    """A numeric feature's cell: text that reads as a number becomes one, blank text is
    missing."""
    if isinstance(cell, str):
        text = cell.strip()
        if not text:
            return common_pb2.FeatureValue()
        try:
            return common_pb2.FeatureValue(number=float(text))
        except ValueError:
            return common_pb2.FeatureValue(text=cell)
    return value(cell)


def text_value(cell: Any) -> common_pb2.FeatureValue:
    """A categorical feature's numeric cell as the text a CSV would hold: 1.0 → "1"."""
    if _missing(cell):
        return common_pb2.FeatureValue()
    number = float(cell)
    return common_pb2.FeatureValue(text=str(int(number)) if number.is_integer() else str(number))


def value(cell: Any) -> common_pb2.FeatureValue:
    """One cell as a FeatureValue: bool → flag, number → number, text → text, missing →
    no kind."""
    if _missing(cell):
        return common_pb2.FeatureValue()
    if isinstance(cell, (bool, np.bool_)):
        return common_pb2.FeatureValue(flag=bool(cell))
    if isinstance(cell, (int, float, np.integer, np.floating)):
        return common_pb2.FeatureValue(number=float(cell))
    return common_pb2.FeatureValue(text=str(cell))


def typed_value(kind: int, cell: Any) -> common_pb2.FeatureValue:
    """A cell read as the model's schema says, as `columns` reads a column."""
    if kind == common_pb2.NUMBER:
        return number_value(cell)
    if kind == common_pb2.TEXT and isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
        return text_value(cell)
    return value(cell)


def customer(features: Mapping[str, Any], schema: Sequence[common_pb2.FeatureSpec]) -> common_pb2.Customer:
    """One customer from a mapping of raw feature name → value (`customer_id` included),
    read by the model's schema; keys the model does not take are left out."""
    kinds = {feature.name: feature.kind for feature in schema}
    message = common_pb2.Customer()
    for name, cell in features.items():
        if name == CUSTOMER_ID:
            message.customer_id = "" if _missing(cell) else str(cell)
        elif name in kinds:
            message.features[name].CopyFrom(typed_value(kinds[name], cell))
    return message


def _missing(cell: Any) -> bool:
    return cell is None or (isinstance(cell, float) and math.isnan(cell)) or cell is pd.NA


def results_frame(ids: list[str], responses: Iterable[scoring_pb2.ScoreBatchResponse], first_row: int = 0) -> pd.DataFrame:
    """One row per id, in order, from the responses that answered them; a row no response
    answered is an error rather than a silent gap."""
    return pd.DataFrame(results_columns(ids, responses, first_row), columns=RESULT_COLUMNS)


def results_columns(
    ids: list[str], responses: Iterable[scoring_pb2.ScoreBatchResponse], first_row: int = 0
) -> dict[str, Any]:
    """`results_frame`'s columns: numpy arrays for the numbers and flags, lists for the
    texts."""
    count = len(ids)
    probability = np.full(count, np.nan)
    will_churn = np.zeros(count, dtype=bool)
    band = [""] * count
    model = [""] * count
    version = np.zeros(count, dtype=np.int64)
    error = ["the server returned no result for this row"] * count
    for response in responses:
        name, number = response.served_by.name, response.served_by.version
        for result in response.results:
            row = result.row - first_row
            if not 0 <= row < count:
                continue
            # Through a traffic split each row names the version (its arm) that answered it.
            if result.HasField("served_by"):
                model[row], version[row] = result.served_by.name, result.served_by.version
            else:
                model[row], version[row] = name, number
            if result.HasField("prediction"):
                prediction = result.prediction
                probability[row] = prediction.churn_probability
                will_churn[row] = prediction.will_churn
                band[row] = RISK_BANDS.get(prediction.risk_band, "")
                error[row] = ""
            else:
                # The server's message names the row and the feature already.
                error[row] = result.error.message
    return {
        "customer_id": ids,
        "churn_probability": probability,
        "will_churn": will_churn,
        "risk_band": band,
        "model": model,
        "version": version,
        "error": error,
    }


def contacts(scores: pd.DataFrame, values: Any, fraction: float | None, budget: int | None) -> list[bool]:
    """Which scored rows a campaign contacts: the riskiest `budget` of them, or the
    riskiest `fraction` (rounded), by probability × `values` when given (a missing value
    ranks last), ties in row order; rows with an error are never contacted."""
    import numpy as np

    scored = (scores["error"] == "").to_numpy()
    risk = scores["churn_probability"].to_numpy(dtype=float, na_value=np.nan)
    if values is not None:
        risk = risk * pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    risk = np.where(np.isnan(risk) | ~scored, -np.inf, risk)
    count = int(scored.sum())
    # Half up, as churnctl rounds (Python's round() would round half to even).
    wanted = min(budget, count) if budget is not None else int(np.floor(fraction * count + 0.5))
    order = np.lexsort((np.arange(len(risk)), -risk))
    chosen = np.zeros(len(risk), dtype=bool)
    chosen[order[:wanted]] = True
    return list(chosen & scored)


EXPERIMENT_COLUMNS = [
    "version", "weight", "customers", "labelled", "churned", "churn_rate", "churn_rate_lower", "churn_rate_upper",
    "roc_auc", "roc_auc_variance", "churn_rate_difference", "churn_rate_difference_lower",
    "churn_rate_difference_upper", "churn_rate_p_value", "roc_auc_difference", "roc_auc_difference_lower",
    "roc_auc_difference_upper", "roc_auc_p_value", "labelled_needed",
]


def experiment_frame(report: Any) -> pd.DataFrame:
    """One row per arm of an ExperimentReportResponse, each later arm with its comparison
    against the first; the split in `attrs["split"]`."""
    comparisons = {c.version: c for c in report.comparisons}
    rows = []
    for arm in report.arms:
        comparison = comparisons.get(arm.served_by.version)
        realized = arm.HasField("realized")
        row = {
            "version": arm.served_by.version,
            "weight": arm.weight,
            "customers": arm.customers,
            "labelled": arm.labelled,
            "churned": arm.churned,
            "churn_rate": arm.churn_rate,
            "churn_rate_lower": arm.churn_rate_lower,
            "churn_rate_upper": arm.churn_rate_upper,
            "roc_auc": arm.realized.roc_auc if realized else np.nan,
            "roc_auc_variance": arm.roc_auc_variance if realized else np.nan,
        }
        for field in EXPERIMENT_COLUMNS[10:]:
            row[field] = getattr(comparison, field) if comparison is not None else np.nan
        rows.append(row)
    frame = pd.DataFrame(rows, columns=EXPERIMENT_COLUMNS)
    split = report.split

    def moment(field: str) -> Any:
        return pd.Timestamp(split.__getattribute__(field).ToNanoseconds(), tz="UTC") if split.HasField(field) else None

    frame.attrs["split"] = {
        "name": split.name,
        "alias": split.alias,
        "salt": split.salt,
        "arms": [(a.version, a.weight) for a in split.arms],
        "started_at": moment("started_at"),
        "ended_at": moment("ended_at"),
    }
    return frame


REALIZED = ["roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1"]
ESTIMATED = ["roc_auc", "accuracy", "precision", "recall", "f1"]


def cohorts_frame(response: Any) -> pd.DataFrame:
    """One row per cohort of a RealizedPerformanceResponse; the version in
    `attrs["served_by"]`."""
    rows = []
    for cohort in response.cohorts:
        realized = cohort.HasField("realized")
        row = {
            "start": pd.Timestamp(cohort.start.ToNanoseconds(), tz="UTC"),
            "scored": cohort.scored,
            "labelled": cohort.labelled,
            "churned": cohort.churned,
        }
        for field in REALIZED:
            row[field] = getattr(cohort.realized, field) if realized else np.nan
        row["empc"] = cohort.realized.profit.empc if realized and cohort.realized.HasField("profit") else np.nan
        for field in ESTIMATED:
            row[f"estimated_{field}"] = getattr(cohort.estimated, field)
        rows.append(row)
    columns = ["start", "scored", "labelled", "churned", *REALIZED, "empc", *(f"estimated_{f}" for f in ESTIMATED)]
    frame = pd.DataFrame(rows, columns=columns)
    served = response.served_by
    frame.attrs["served_by"] = {"name": served.name, "version": served.version, "sha256": served.sha256}
    return frame


DRIFT_COLUMNS = ["feature", "psi", "bins", "reference_fraction", "serving_count"]


def _feature_drift(drift: Any) -> dict[str, Any]:
    return {
        "feature": drift.feature,
        "psi": drift.psi,
        "bins": [b.label for b in drift.bins],
        "reference_fraction": [b.reference_fraction for b in drift.bins],
        "serving_count": [b.serving_count for b in drift.bins],
    }


def drift_frame(response: Any) -> pd.DataFrame:
    """One row per feature of a DriftReportResponse; the version, the rows and the served
    probability's drift in `attrs`."""
    frame = pd.DataFrame([_feature_drift(f) for f in response.features], columns=DRIFT_COLUMNS)
    served = response.served_by
    frame.attrs["served_by"] = {"name": served.name, "version": served.version, "sha256": served.sha256}
    frame.attrs["rows"] = response.rows
    frame.attrs["prediction"] = _feature_drift(response.prediction)
    return frame

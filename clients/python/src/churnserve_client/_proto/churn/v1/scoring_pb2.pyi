from churnserve_client._proto.churn.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImportanceMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMPORTANCE_METHOD_UNSPECIFIED: _ClassVar[ImportanceMethod]
    MODEL_NATIVE: _ClassVar[ImportanceMethod]
    PERMUTATION: _ClassVar[ImportanceMethod]
    MEAN_ABS_SHAP: _ClassVar[ImportanceMethod]
IMPORTANCE_METHOD_UNSPECIFIED: ImportanceMethod
MODEL_NATIVE: ImportanceMethod
PERMUTATION: ImportanceMethod
MEAN_ABS_SHAP: ImportanceMethod

class ShadowStatsRequest(_message.Message):
    __slots__ = ("name", "alias")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ...) -> None: ...

class ShadowStatsResponse(_message.Message):
    __slots__ = ("shadow", "compared", "dropped", "failed", "recorded", "mean_difference", "mean_abs_difference", "max_abs_difference", "p50_abs_difference", "p90_abs_difference", "p99_abs_difference", "label_agreement", "both_churn", "served_only_churn", "shadow_only_churn", "neither_churn", "rank_correlation", "rank_window")
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    COMPARED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    MEAN_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    MEAN_ABS_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    P50_ABS_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    P90_ABS_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    P99_ABS_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    LABEL_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    BOTH_CHURN_FIELD_NUMBER: _ClassVar[int]
    SERVED_ONLY_CHURN_FIELD_NUMBER: _ClassVar[int]
    SHADOW_ONLY_CHURN_FIELD_NUMBER: _ClassVar[int]
    NEITHER_CHURN_FIELD_NUMBER: _ClassVar[int]
    RANK_CORRELATION_FIELD_NUMBER: _ClassVar[int]
    RANK_WINDOW_FIELD_NUMBER: _ClassVar[int]
    shadow: _common_pb2.Shadow
    compared: int
    dropped: int
    failed: int
    recorded: int
    mean_difference: float
    mean_abs_difference: float
    max_abs_difference: float
    p50_abs_difference: float
    p90_abs_difference: float
    p99_abs_difference: float
    label_agreement: float
    both_churn: int
    served_only_churn: int
    shadow_only_churn: int
    neither_churn: int
    rank_correlation: float
    rank_window: int
    def __init__(self, shadow: _Optional[_Union[_common_pb2.Shadow, _Mapping]] = ..., compared: _Optional[int] = ..., dropped: _Optional[int] = ..., failed: _Optional[int] = ..., recorded: _Optional[int] = ..., mean_difference: _Optional[float] = ..., mean_abs_difference: _Optional[float] = ..., max_abs_difference: _Optional[float] = ..., p50_abs_difference: _Optional[float] = ..., p90_abs_difference: _Optional[float] = ..., p99_abs_difference: _Optional[float] = ..., label_agreement: _Optional[float] = ..., both_churn: _Optional[int] = ..., served_only_churn: _Optional[int] = ..., shadow_only_churn: _Optional[int] = ..., neither_churn: _Optional[int] = ..., rank_correlation: _Optional[float] = ..., rank_window: _Optional[int] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("model", "customer", "top_reasons")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    TOP_REASONS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    customer: _common_pb2.Customer
    top_reasons: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., customer: _Optional[_Union[_common_pb2.Customer, _Mapping]] = ..., top_reasons: _Optional[int] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("prediction", "served_by")
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    prediction: _common_pb2.Prediction
    served_by: _common_pb2.ServedBy
    def __init__(self, prediction: _Optional[_Union[_common_pb2.Prediction, _Mapping]] = ..., served_by: _Optional[_Union[_common_pb2.ServedBy, _Mapping]] = ...) -> None: ...

class ScoreBatchRequest(_message.Message):
    __slots__ = ("model", "customers", "top_reasons", "columns", "first_row")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    TOP_REASONS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    FIRST_ROW_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    customers: _containers.RepeatedCompositeFieldContainer[_common_pb2.Customer]
    top_reasons: int
    columns: CustomerColumns
    first_row: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., customers: _Optional[_Iterable[_Union[_common_pb2.Customer, _Mapping]]] = ..., top_reasons: _Optional[int] = ..., columns: _Optional[_Union[CustomerColumns, _Mapping]] = ..., first_row: _Optional[int] = ...) -> None: ...

class ScoreArrowRequest(_message.Message):
    __slots__ = ("model", "arrow_ipc", "first_row")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    FIRST_ROW_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    arrow_ipc: bytes
    first_row: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., arrow_ipc: _Optional[bytes] = ..., first_row: _Optional[int] = ...) -> None: ...

class ScoreArrowResponse(_message.Message):
    __slots__ = ("arrow_ipc", "served_by")
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    arrow_ipc: bytes
    served_by: _common_pb2.ServedBy
    def __init__(self, arrow_ipc: _Optional[bytes] = ..., served_by: _Optional[_Union[_common_pb2.ServedBy, _Mapping]] = ...) -> None: ...

class CustomerColumns(_message.Message):
    __slots__ = ("customer_ids", "features")
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    features: _containers.RepeatedCompositeFieldContainer[FeatureColumn]
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ..., features: _Optional[_Iterable[_Union[FeatureColumn, _Mapping]]] = ...) -> None: ...

class FeatureColumn(_message.Message):
    __slots__ = ("name", "numbers", "texts", "flags", "mixed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    MIXED_FIELD_NUMBER: _ClassVar[int]
    name: str
    numbers: NumberColumn
    texts: TextColumn
    flags: FlagColumn
    mixed: ValueColumn
    def __init__(self, name: _Optional[str] = ..., numbers: _Optional[_Union[NumberColumn, _Mapping]] = ..., texts: _Optional[_Union[TextColumn, _Mapping]] = ..., flags: _Optional[_Union[FlagColumn, _Mapping]] = ..., mixed: _Optional[_Union[ValueColumn, _Mapping]] = ...) -> None: ...

class NumberColumn(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class TextColumn(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class FlagColumn(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, values: _Optional[_Iterable[bool]] = ...) -> None: ...

class ValueColumn(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[_common_pb2.FeatureValue]
    def __init__(self, values: _Optional[_Iterable[_Union[_common_pb2.FeatureValue, _Mapping]]] = ...) -> None: ...

class RowError(_message.Message):
    __slots__ = ("feature", "message")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    feature: str
    message: str
    def __init__(self, feature: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class RowResult(_message.Message):
    __slots__ = ("row", "prediction", "error", "served_by")
    ROW_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    row: int
    prediction: _common_pb2.Prediction
    error: RowError
    served_by: _common_pb2.ServedBy
    def __init__(self, row: _Optional[int] = ..., prediction: _Optional[_Union[_common_pb2.Prediction, _Mapping]] = ..., error: _Optional[_Union[RowError, _Mapping]] = ..., served_by: _Optional[_Union[_common_pb2.ServedBy, _Mapping]] = ...) -> None: ...

class ScoreBatchResponse(_message.Message):
    __slots__ = ("results", "served_by")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RowResult]
    served_by: _common_pb2.ServedBy
    def __init__(self, results: _Optional[_Iterable[_Union[RowResult, _Mapping]]] = ..., served_by: _Optional[_Union[_common_pb2.ServedBy, _Mapping]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("model", "customer")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    customer: _common_pb2.Customer
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., customer: _Optional[_Union[_common_pb2.Customer, _Mapping]] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("served_by", "base_value", "output_value", "attributions", "method", "max_abs_error")
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    BASE_VALUE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_VALUE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_ERROR_FIELD_NUMBER: _ClassVar[int]
    served_by: _common_pb2.ServedBy
    base_value: float
    output_value: float
    attributions: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    method: str
    max_abs_error: float
    def __init__(self, served_by: _Optional[_Union[_common_pb2.ServedBy, _Mapping]] = ..., base_value: _Optional[float] = ..., output_value: _Optional[float] = ..., attributions: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ..., method: _Optional[str] = ..., max_abs_error: _Optional[float] = ...) -> None: ...

class FeatureImportanceRequest(_message.Message):
    __slots__ = ("model", "method", "dataset", "rows")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    method: ImportanceMethod
    dataset: str
    rows: _containers.RepeatedCompositeFieldContainer[_common_pb2.LabeledCustomer]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., method: _Optional[_Union[ImportanceMethod, str]] = ..., dataset: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[_common_pb2.LabeledCustomer, _Mapping]]] = ...) -> None: ...

class FeatureScore(_message.Message):
    __slots__ = ("feature", "importance", "stddev")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    STDDEV_FIELD_NUMBER: _ClassVar[int]
    feature: str
    importance: float
    stddev: float
    def __init__(self, feature: _Optional[str] = ..., importance: _Optional[float] = ..., stddev: _Optional[float] = ...) -> None: ...

class FeatureImportanceResponse(_message.Message):
    __slots__ = ("served_by", "method", "features")
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    served_by: _common_pb2.ServedBy
    method: ImportanceMethod
    features: _containers.RepeatedCompositeFieldContainer[FeatureScore]
    def __init__(self, served_by: _Optional[_Union[_common_pb2.ServedBy, _Mapping]] = ..., method: _Optional[_Union[ImportanceMethod, str]] = ..., features: _Optional[_Iterable[_Union[FeatureScore, _Mapping]]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("model", "dataset", "rows", "threshold", "profit")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    dataset: str
    rows: _containers.RepeatedCompositeFieldContainer[_common_pb2.LabeledCustomer]
    threshold: float
    profit: ProfitParameters
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., dataset: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[_common_pb2.LabeledCustomer, _Mapping]]] = ..., threshold: _Optional[float] = ..., profit: _Optional[_Union[ProfitParameters, _Mapping]] = ...) -> None: ...

class ProfitParameters(_message.Message):
    __slots__ = ("clv", "incentive_cost", "contact_cost", "acceptance_alpha", "acceptance_beta")
    CLV_FIELD_NUMBER: _ClassVar[int]
    INCENTIVE_COST_FIELD_NUMBER: _ClassVar[int]
    CONTACT_COST_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_ALPHA_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_BETA_FIELD_NUMBER: _ClassVar[int]
    clv: float
    incentive_cost: float
    contact_cost: float
    acceptance_alpha: float
    acceptance_beta: float
    def __init__(self, clv: _Optional[float] = ..., incentive_cost: _Optional[float] = ..., contact_cost: _Optional[float] = ..., acceptance_alpha: _Optional[float] = ..., acceptance_beta: _Optional[float] = ...) -> None: ...

class ProfitMetrics(_message.Message):
    __slots__ = ("empc", "empc_fraction", "mpc", "mpc_fraction", "profit_curve", "parameters")
    EMPC_FIELD_NUMBER: _ClassVar[int]
    EMPC_FRACTION_FIELD_NUMBER: _ClassVar[int]
    MPC_FIELD_NUMBER: _ClassVar[int]
    MPC_FRACTION_FIELD_NUMBER: _ClassVar[int]
    PROFIT_CURVE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    empc: float
    empc_fraction: float
    mpc: float
    mpc_fraction: float
    profit_curve: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    parameters: ProfitParameters
    def __init__(self, empc: _Optional[float] = ..., empc_fraction: _Optional[float] = ..., mpc: _Optional[float] = ..., mpc_fraction: _Optional[float] = ..., profit_curve: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ..., parameters: _Optional[_Union[ProfitParameters, _Mapping]] = ...) -> None: ...

class ConfusionMatrix(_message.Message):
    __slots__ = ("tp", "fp", "tn", "fn")
    TP_FIELD_NUMBER: _ClassVar[int]
    FP_FIELD_NUMBER: _ClassVar[int]
    TN_FIELD_NUMBER: _ClassVar[int]
    FN_FIELD_NUMBER: _ClassVar[int]
    tp: int
    fp: int
    tn: int
    fn: int
    def __init__(self, tp: _Optional[int] = ..., fp: _Optional[int] = ..., tn: _Optional[int] = ..., fn: _Optional[int] = ...) -> None: ...

class CalibrationBin(_message.Message):
    __slots__ = ("lower", "upper", "mean_predicted", "observed_rate", "count")
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    MEAN_PREDICTED_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_RATE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    lower: float
    upper: float
    mean_predicted: float
    observed_rate: float
    count: int
    def __init__(self, lower: _Optional[float] = ..., upper: _Optional[float] = ..., mean_predicted: _Optional[float] = ..., observed_rate: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class LiftBin(_message.Message):
    __slots__ = ("decile", "churn_rate", "lift", "cumulative_capture")
    DECILE_FIELD_NUMBER: _ClassVar[int]
    CHURN_RATE_FIELD_NUMBER: _ClassVar[int]
    LIFT_FIELD_NUMBER: _ClassVar[int]
    CUMULATIVE_CAPTURE_FIELD_NUMBER: _ClassVar[int]
    decile: int
    churn_rate: float
    lift: float
    cumulative_capture: float
    def __init__(self, decile: _Optional[int] = ..., churn_rate: _Optional[float] = ..., lift: _Optional[float] = ..., cumulative_capture: _Optional[float] = ...) -> None: ...

class Metrics(_message.Message):
    __slots__ = ("rows", "positives", "roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1", "confusion", "calibration", "lift", "roc_curve", "pr_curve", "profit")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    POSITIVES_FIELD_NUMBER: _ClassVar[int]
    ROC_AUC_FIELD_NUMBER: _ClassVar[int]
    PR_AUC_FIELD_NUMBER: _ClassVar[int]
    LOG_LOSS_FIELD_NUMBER: _ClassVar[int]
    BRIER_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    CONFUSION_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    LIFT_FIELD_NUMBER: _ClassVar[int]
    ROC_CURVE_FIELD_NUMBER: _ClassVar[int]
    PR_CURVE_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FIELD_NUMBER: _ClassVar[int]
    rows: int
    positives: int
    roc_auc: float
    pr_auc: float
    log_loss: float
    brier: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    confusion: ConfusionMatrix
    calibration: _containers.RepeatedCompositeFieldContainer[CalibrationBin]
    lift: _containers.RepeatedCompositeFieldContainer[LiftBin]
    roc_curve: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    pr_curve: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    profit: ProfitMetrics
    def __init__(self, rows: _Optional[int] = ..., positives: _Optional[int] = ..., roc_auc: _Optional[float] = ..., pr_auc: _Optional[float] = ..., log_loss: _Optional[float] = ..., brier: _Optional[float] = ..., accuracy: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ..., confusion: _Optional[_Union[ConfusionMatrix, _Mapping]] = ..., calibration: _Optional[_Iterable[_Union[CalibrationBin, _Mapping]]] = ..., lift: _Optional[_Iterable[_Union[LiftBin, _Mapping]]] = ..., roc_curve: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ..., pr_curve: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ..., profit: _Optional[_Union[ProfitMetrics, _Mapping]] = ...) -> None: ...

class CurvePoint(_message.Message):
    __slots__ = ("x", "y", "threshold")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    threshold: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., threshold: _Optional[float] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("served_by", "evaluation_id", "metrics", "rejected_rows", "rejections")
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_ROWS_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    served_by: _common_pb2.ServedBy
    evaluation_id: str
    metrics: Metrics
    rejected_rows: int
    rejections: _containers.RepeatedCompositeFieldContainer[RowError]
    def __init__(self, served_by: _Optional[_Union[_common_pb2.ServedBy, _Mapping]] = ..., evaluation_id: _Optional[str] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., rejected_rows: _Optional[int] = ..., rejections: _Optional[_Iterable[_Union[RowError, _Mapping]]] = ...) -> None: ...

class CompareRequest(_message.Message):
    __slots__ = ("champion", "challenger", "dataset", "rows", "threshold", "profit")
    CHAMPION_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FIELD_NUMBER: _ClassVar[int]
    champion: _common_pb2.ModelRef
    challenger: _common_pb2.ModelRef
    dataset: str
    rows: _containers.RepeatedCompositeFieldContainer[_common_pb2.LabeledCustomer]
    threshold: float
    profit: ProfitParameters
    def __init__(self, champion: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., challenger: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., dataset: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[_common_pb2.LabeledCustomer, _Mapping]]] = ..., threshold: _Optional[float] = ..., profit: _Optional[_Union[ProfitParameters, _Mapping]] = ...) -> None: ...

class AucDifference(_message.Message):
    __slots__ = ("difference", "standard_error", "lower", "upper", "p_value")
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    difference: float
    standard_error: float
    lower: float
    upper: float
    p_value: float
    def __init__(self, difference: _Optional[float] = ..., standard_error: _Optional[float] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ..., p_value: _Optional[float] = ...) -> None: ...

class CompareResponse(_message.Message):
    __slots__ = ("champion", "challenger", "roc_auc_difference", "paired_rows", "empc_difference")
    CHAMPION_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_FIELD_NUMBER: _ClassVar[int]
    ROC_AUC_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    PAIRED_ROWS_FIELD_NUMBER: _ClassVar[int]
    EMPC_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    champion: EvaluateResponse
    challenger: EvaluateResponse
    roc_auc_difference: AucDifference
    paired_rows: int
    empc_difference: float
    def __init__(self, champion: _Optional[_Union[EvaluateResponse, _Mapping]] = ..., challenger: _Optional[_Union[EvaluateResponse, _Mapping]] = ..., roc_auc_difference: _Optional[_Union[AucDifference, _Mapping]] = ..., paired_rows: _Optional[int] = ..., empc_difference: _Optional[float] = ...) -> None: ...

class SuggestThresholdRequest(_message.Message):
    __slots__ = ("model", "dataset", "rows", "objective", "profit")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    dataset: str
    rows: _containers.RepeatedCompositeFieldContainer[_common_pb2.LabeledCustomer]
    objective: str
    profit: ProfitParameters
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., dataset: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[_common_pb2.LabeledCustomer, _Mapping]]] = ..., objective: _Optional[str] = ..., profit: _Optional[_Union[ProfitParameters, _Mapping]] = ...) -> None: ...

class SuggestThresholdResponse(_message.Message):
    __slots__ = ("served_by", "threshold", "precision", "recall", "f1", "flagged", "rows")
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    served_by: _common_pb2.ServedBy
    threshold: float
    precision: float
    recall: float
    f1: float
    flagged: int
    rows: int
    def __init__(self, served_by: _Optional[_Union[_common_pb2.ServedBy, _Mapping]] = ..., threshold: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ..., flagged: _Optional[int] = ..., rows: _Optional[int] = ...) -> None: ...

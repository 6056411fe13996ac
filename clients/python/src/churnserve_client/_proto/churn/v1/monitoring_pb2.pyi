import datetime

from churnserve_client._proto.churn.v1 import common_pb2 as _common_pb2
from churnserve_client._proto.churn.v1 import scoring_pb2 as _scoring_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CohortPeriod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COHORT_PERIOD_UNSPECIFIED: _ClassVar[CohortPeriod]
    DAY: _ClassVar[CohortPeriod]
    WEEK: _ClassVar[CohortPeriod]
    MONTH: _ClassVar[CohortPeriod]
COHORT_PERIOD_UNSPECIFIED: CohortPeriod
DAY: CohortPeriod
WEEK: CohortPeriod
MONTH: CohortPeriod

class Outcome(_message.Message):
    __slots__ = ("customer_id", "churned", "observed_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHURNED_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    churned: bool
    observed_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., churned: bool = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordOutcomesRequest(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[Outcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[Outcome, _Mapping]]] = ...) -> None: ...

class RecordOutcomesResponse(_message.Message):
    __slots__ = ("recorded", "matched")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    recorded: int
    matched: int
    def __init__(self, recorded: _Optional[int] = ..., matched: _Optional[int] = ...) -> None: ...

class RealizedPerformanceRequest(_message.Message):
    __slots__ = ("model", "since", "until", "cohort", "horizon_days")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    cohort: CohortPeriod
    horizon_days: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cohort: _Optional[_Union[CohortPeriod, str]] = ..., horizon_days: _Optional[int] = ...) -> None: ...

class EstimatedMetrics(_message.Message):
    __slots__ = ("roc_auc", "accuracy", "precision", "recall", "f1")
    ROC_AUC_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    roc_auc: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    def __init__(self, roc_auc: _Optional[float] = ..., accuracy: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ...) -> None: ...

class Cohort(_message.Message):
    __slots__ = ("start", "scored", "labelled", "churned", "realized", "estimated")
    START_FIELD_NUMBER: _ClassVar[int]
    SCORED_FIELD_NUMBER: _ClassVar[int]
    LABELLED_FIELD_NUMBER: _ClassVar[int]
    CHURNED_FIELD_NUMBER: _ClassVar[int]
    REALIZED_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    scored: int
    labelled: int
    churned: int
    realized: _scoring_pb2.Metrics
    estimated: EstimatedMetrics
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scored: _Optional[int] = ..., labelled: _Optional[int] = ..., churned: _Optional[int] = ..., realized: _Optional[_Union[_scoring_pb2.Metrics, _Mapping]] = ..., estimated: _Optional[_Union[EstimatedMetrics, _Mapping]] = ...) -> None: ...

class RealizedPerformanceResponse(_message.Message):
    __slots__ = ("served_by", "cohorts")
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    COHORTS_FIELD_NUMBER: _ClassVar[int]
    served_by: _common_pb2.ServedBy
    cohorts: _containers.RepeatedCompositeFieldContainer[Cohort]
    def __init__(self, served_by: _Optional[_Union[_common_pb2.ServedBy, _Mapping]] = ..., cohorts: _Optional[_Iterable[_Union[Cohort, _Mapping]]] = ...) -> None: ...

class ExperimentReportRequest(_message.Message):
    __slots__ = ("name", "alias", "since", "until", "horizon_days")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    horizon_days: int
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., horizon_days: _Optional[int] = ...) -> None: ...

class ArmReport(_message.Message):
    __slots__ = ("served_by", "weight", "customers", "labelled", "churned", "churn_rate", "realized", "churn_rate_lower", "churn_rate_upper", "roc_auc_variance")
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    LABELLED_FIELD_NUMBER: _ClassVar[int]
    CHURNED_FIELD_NUMBER: _ClassVar[int]
    CHURN_RATE_FIELD_NUMBER: _ClassVar[int]
    REALIZED_FIELD_NUMBER: _ClassVar[int]
    CHURN_RATE_LOWER_FIELD_NUMBER: _ClassVar[int]
    CHURN_RATE_UPPER_FIELD_NUMBER: _ClassVar[int]
    ROC_AUC_VARIANCE_FIELD_NUMBER: _ClassVar[int]
    served_by: _common_pb2.ServedBy
    weight: int
    customers: int
    labelled: int
    churned: int
    churn_rate: float
    realized: _scoring_pb2.Metrics
    churn_rate_lower: float
    churn_rate_upper: float
    roc_auc_variance: float
    def __init__(self, served_by: _Optional[_Union[_common_pb2.ServedBy, _Mapping]] = ..., weight: _Optional[int] = ..., customers: _Optional[int] = ..., labelled: _Optional[int] = ..., churned: _Optional[int] = ..., churn_rate: _Optional[float] = ..., realized: _Optional[_Union[_scoring_pb2.Metrics, _Mapping]] = ..., churn_rate_lower: _Optional[float] = ..., churn_rate_upper: _Optional[float] = ..., roc_auc_variance: _Optional[float] = ...) -> None: ...

class ArmComparison(_message.Message):
    __slots__ = ("baseline_version", "version", "churn_rate_difference", "churn_rate_p_value", "roc_auc_difference", "roc_auc_p_value", "churn_rate_difference_lower", "churn_rate_difference_upper", "roc_auc_difference_lower", "roc_auc_difference_upper", "labelled_needed")
    BASELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHURN_RATE_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    CHURN_RATE_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    ROC_AUC_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    ROC_AUC_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    CHURN_RATE_DIFFERENCE_LOWER_FIELD_NUMBER: _ClassVar[int]
    CHURN_RATE_DIFFERENCE_UPPER_FIELD_NUMBER: _ClassVar[int]
    ROC_AUC_DIFFERENCE_LOWER_FIELD_NUMBER: _ClassVar[int]
    ROC_AUC_DIFFERENCE_UPPER_FIELD_NUMBER: _ClassVar[int]
    LABELLED_NEEDED_FIELD_NUMBER: _ClassVar[int]
    baseline_version: int
    version: int
    churn_rate_difference: float
    churn_rate_p_value: float
    roc_auc_difference: float
    roc_auc_p_value: float
    churn_rate_difference_lower: float
    churn_rate_difference_upper: float
    roc_auc_difference_lower: float
    roc_auc_difference_upper: float
    labelled_needed: int
    def __init__(self, baseline_version: _Optional[int] = ..., version: _Optional[int] = ..., churn_rate_difference: _Optional[float] = ..., churn_rate_p_value: _Optional[float] = ..., roc_auc_difference: _Optional[float] = ..., roc_auc_p_value: _Optional[float] = ..., churn_rate_difference_lower: _Optional[float] = ..., churn_rate_difference_upper: _Optional[float] = ..., roc_auc_difference_lower: _Optional[float] = ..., roc_auc_difference_upper: _Optional[float] = ..., labelled_needed: _Optional[int] = ...) -> None: ...

class ExperimentReportResponse(_message.Message):
    __slots__ = ("split", "arms", "comparisons")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    split: _common_pb2.TrafficSplit
    arms: _containers.RepeatedCompositeFieldContainer[ArmReport]
    comparisons: _containers.RepeatedCompositeFieldContainer[ArmComparison]
    def __init__(self, split: _Optional[_Union[_common_pb2.TrafficSplit, _Mapping]] = ..., arms: _Optional[_Iterable[_Union[ArmReport, _Mapping]]] = ..., comparisons: _Optional[_Iterable[_Union[ArmComparison, _Mapping]]] = ...) -> None: ...

class DriftReportRequest(_message.Message):
    __slots__ = ("model", "since", "until")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DriftBin(_message.Message):
    __slots__ = ("label", "reference_fraction", "serving_count")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SERVING_COUNT_FIELD_NUMBER: _ClassVar[int]
    label: str
    reference_fraction: float
    serving_count: int
    def __init__(self, label: _Optional[str] = ..., reference_fraction: _Optional[float] = ..., serving_count: _Optional[int] = ...) -> None: ...

class FeatureDrift(_message.Message):
    __slots__ = ("feature", "psi", "bins")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    feature: str
    psi: float
    bins: _containers.RepeatedCompositeFieldContainer[DriftBin]
    def __init__(self, feature: _Optional[str] = ..., psi: _Optional[float] = ..., bins: _Optional[_Iterable[_Union[DriftBin, _Mapping]]] = ...) -> None: ...

class DriftReportResponse(_message.Message):
    __slots__ = ("served_by", "rows", "features", "prediction")
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    served_by: _common_pb2.ServedBy
    rows: int
    features: _containers.RepeatedCompositeFieldContainer[FeatureDrift]
    prediction: FeatureDrift
    def __init__(self, served_by: _Optional[_Union[_common_pb2.ServedBy, _Mapping]] = ..., rows: _Optional[int] = ..., features: _Optional[_Iterable[_Union[FeatureDrift, _Mapping]]] = ..., prediction: _Optional[_Union[FeatureDrift, _Mapping]] = ...) -> None: ...

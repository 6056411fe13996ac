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

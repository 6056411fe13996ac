import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RiskBand(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RISK_BAND_UNSPECIFIED: _ClassVar[RiskBand]
    LOW: _ClassVar[RiskBand]
    MEDIUM: _ClassVar[RiskBand]
    HIGH: _ClassVar[RiskBand]

class FeatureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEATURE_KIND_UNSPECIFIED: _ClassVar[FeatureKind]
    NUMBER: _ClassVar[FeatureKind]
    TEXT: _ClassVar[FeatureKind]
    BOOL: _ClassVar[FeatureKind]
RISK_BAND_UNSPECIFIED: RiskBand
LOW: RiskBand
MEDIUM: RiskBand
HIGH: RiskBand
FEATURE_KIND_UNSPECIFIED: FeatureKind
NUMBER: FeatureKind
TEXT: FeatureKind
BOOL: FeatureKind

class ModelRef(_message.Message):
    __slots__ = ("name", "version", "alias")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    alias: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., alias: _Optional[str] = ...) -> None: ...

class FeatureValue(_message.Message):
    __slots__ = ("number", "text", "flag")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    number: float
    text: str
    flag: bool
    def __init__(self, number: _Optional[float] = ..., text: _Optional[str] = ..., flag: bool = ...) -> None: ...

class Customer(_message.Message):
    __slots__ = ("customer_id", "features")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureValue, _Mapping]] = ...) -> None: ...
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    features: _containers.MessageMap[str, FeatureValue]
    def __init__(self, customer_id: _Optional[str] = ..., features: _Optional[_Mapping[str, FeatureValue]] = ...) -> None: ...

class LabeledCustomer(_message.Message):
    __slots__ = ("customer", "churned")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CHURNED_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    churned: bool
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ..., churned: bool = ...) -> None: ...

class ServedBy(_message.Message):
    __slots__ = ("name", "version", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    sha256: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("feature", "value", "contribution")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    feature: str
    value: FeatureValue
    contribution: float
    def __init__(self, feature: _Optional[str] = ..., value: _Optional[_Union[FeatureValue, _Mapping]] = ..., contribution: _Optional[float] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("customer_id", "churn_probability", "will_churn", "risk_band", "top_reasons")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHURN_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    WILL_CHURN_FIELD_NUMBER: _ClassVar[int]
    RISK_BAND_FIELD_NUMBER: _ClassVar[int]
    TOP_REASONS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    churn_probability: float
    will_churn: bool
    risk_band: RiskBand
    top_reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    def __init__(self, customer_id: _Optional[str] = ..., churn_probability: _Optional[float] = ..., will_churn: bool = ..., risk_band: _Optional[_Union[RiskBand, str]] = ..., top_reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ...) -> None: ...

class FeatureSpec(_message.Message):
    __slots__ = ("name", "kind", "allowed_values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: FeatureKind
    allowed_values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[FeatureKind, str]] = ..., allowed_values: _Optional[_Iterable[str]] = ...) -> None: ...

class Shadow(_message.Message):
    __slots__ = ("name", "alias", "version", "record")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    version: int
    record: bool
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[int] = ..., record: bool = ...) -> None: ...

class TrafficArm(_message.Message):
    __slots__ = ("version", "weight")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    version: int
    weight: int
    def __init__(self, version: _Optional[int] = ..., weight: _Optional[int] = ...) -> None: ...

class TrafficSplit(_message.Message):
    __slots__ = ("name", "alias", "arms", "salt", "started_at", "ended_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    arms: _containers.RepeatedCompositeFieldContainer[TrafficArm]
    salt: str
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ..., arms: _Optional[_Iterable[_Union[TrafficArm, _Mapping]]] = ..., salt: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

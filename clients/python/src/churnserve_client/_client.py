"""The churnserve client: scoring DataFrames, streaming bulk scoring, and the registry,
evaluation and explanation calls, over one gRPC channel with TLS, tokens and retries."""

from __future__ import annotations

import pathlib
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import grpc
import pandas as pd

from churnserve_client import _frames
from churnserve_client._proto.churn.v1 import (
    common_pb2,
    monitoring_pb2,
    monitoring_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    scoring_pb2,
    scoring_pb2_grpc,
)

Customers = pd.DataFrame | Sequence[Mapping[str, Any]]
"""A DataFrame with one column per raw feature (and optionally `customer_id`), or a list of
dicts of the same."""

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
CHUNK_BYTES = 1 << 20
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

Response = TypeVar("Response")


class ChurnserveError(Exception):
    """A call the server refused or could not answer: `code` is the gRPC status code,
    `message` the server's explanation (which field, which row, what was expected)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def _error(error: grpc.RpcError) -> ChurnserveError:
    return ChurnserveError(error.code(), error.details() or "")  # type: ignore[attr-defined]


def read_bytes(source: str | pathlib.Path | bytes | None) -> bytes | None:
    if source is None or isinstance(source, bytes):
        return source
    return pathlib.Path(source).read_bytes()


def channel(
    address: str,
    ca_cert: str | pathlib.Path | bytes | None = None,
    client_cert: str | pathlib.Path | bytes | None = None,
    client_key: str | pathlib.Path | bytes | None = None,
) -> grpc.Channel:
    """A channel to `HOST:PORT`: TLS when the address starts with `https://` or a `ca_cert`
    is given (a PEM path or bytes; the system's roots otherwise), plain with `http://` or
    no prefix."""
    target, tls = address, ca_cert is not None
    if target.startswith("https://"):
        target, tls = target.removeprefix("https://"), True
    elif target.startswith("http://"):
        target = target.removeprefix("http://")
    target = target.rstrip("/")
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if not tls:
        return grpc.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read_bytes(ca_cert),
        private_key=read_bytes(client_key),
        certificate_chain=read_bytes(client_cert),
    )
    return grpc.secure_channel(target, credentials, options=options)


def bearer(token: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries `token`, if any."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def model_ref(model: str | None = None, version: int | None = None, alias: str | None = None) -> common_pb2.ModelRef:
    """A `ModelRef`; no version and no alias means the `production` alias, no model the
    server's default model."""
    if version is not None and alias is not None:
        raise ValueError("name a version or an alias, not both")
    return common_pb2.ModelRef(name=model or "", version=version or 0, alias=alias or "")


class Client:
    """A connection to one churnserve server.

    `address` is `HOST:PORT`; an `https://` prefix (or a `ca_cert`) means TLS, checked
    against `ca_cert` (a PEM path or bytes) or the system's roots; `client_cert` and
    `client_key` add a client certificate for mutual TLS. `token` is sent as a bearer
    token (the read token for scoring, the write token for registry changes).

    Calls that fail with UNAVAILABLE or RESOURCE_EXHAUSTED (a server restarting or
    shedding load) are retried up to `retries` times with exponential backoff and jitter,
    starting at `backoff` seconds; `timeout` bounds each attempt, in seconds.
    """

    def __init__(
        self,
        address: str,
        token: str | None = None,
        ca_cert: str | pathlib.Path | bytes | None = None,
        client_cert: str | pathlib.Path | bytes | None = None,
        client_key: str | pathlib.Path | bytes | None = None,
        retries: int = 5,
        backoff: float = 0.05,
        timeout: float | None = 300.0,
    ):
        self._channel = channel(address, ca_cert, client_cert, client_key)
        self._metadata = bearer(token)
        self._scoring = scoring_pb2_grpc.ScoringServiceStub(self._channel)
        self._registry = registry_pb2_grpc.RegistryServiceStub(self._channel)
        self._monitoring = monitoring_pb2_grpc.MonitoringServiceStub(self._channel)
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable[..., Response], request: Any) -> Response:
        """One call, retried while the server answers UNAVAILABLE or RESOURCE_EXHAUSTED.
        `request` may be a zero-argument callable making a fresh request iterator for
        each attempt (client streams)."""
        for attempt in range(self.retries + 1):
            try:
                message = request() if callable(request) else request
                return method(message, metadata=self._metadata, timeout=self.timeout)
            except grpc.RpcError as error:
                if error.code() not in RETRYABLE or attempt == self.retries:  # type: ignore[attr-defined]
                    raise _error(error) from None
                delay = min(self.backoff * 2**attempt, 5.0)
                time.sleep(delay * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable: the last attempt raises")

    def _pinned(
        self, model: str | None, version: int | None, alias: str | None
    ) -> tuple[common_pb2.ModelRef, Sequence[common_pb2.FeatureSpec]]:
        """The exact version a reference names now, and its input schema."""
        resolved = self.model_version(model, version, alias)
        return common_pb2.ModelRef(name=resolved.name, version=resolved.version), list(resolved.features)

    # Scoring

    def score(
        self,
        customers: Customers,
        model: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        batch_rows: int = 1000,
        target: str | None = None,
        budget: int | None = None,
        value_column: str | None = None,
    ) -> pd.DataFrame:
        """Scores every customer and returns one row per input row, in input order, with
        `customer_id`, `churn_probability`, `will_churn`, `risk_band`, `model`, `version`
        and `error` (empty when the row was scored; a bad row never fails the others).
        Columns are read by the version's schema (see `_frames.columns`). Rows go in
        `ScoreBatch` calls of `batch_rows`; the alias is resolved once, first, and every
        batch is scored by that version, unless the alias is split between versions
        (`start_experiment`): then each customer is answered by their arm, and `version`
        says which, row by row.

        `target="profit"` adds a `contact` column, as `churnctl score-file --target profit`
        writes it: true for the riskiest scored customers, as many as the version's latest
        evaluation found most profitable to contact (its `mpc_fraction` of them) or
        `budget`; ranked by probability, or by probability × `value_column` (a customer
        value per row) when given; ties in input order."""
        frame = _frames.as_frame(customers)
        ref, schema = self._pinned(model, version, alias)
        if version is None and self._split_running(ref.name, alias or "production"):
            ref = model_ref(ref.name, None, alias or "production")
        contacted_fraction = None
        if target is not None:
            if target != "profit":
                raise ValueError(f"target {target!r}: the one target is 'profit'")
            if value_column is not None and value_column not in frame.columns:
                raise ValueError(f"value_column {value_column!r} is not a column of the customers")
            if budget is None:
                contacted_fraction = self._most_profitable_fraction(ref)
        parts = []
        for start in range(0, len(frame), batch_rows):
            chunk = frame.iloc[start : start + batch_rows]
            request = scoring_pb2.ScoreBatchRequest(model=ref, columns=_frames.columns(chunk, schema))
            response = self._call(self._scoring.ScoreBatch, request)
            parts.append(_frames.results_frame(_frames.customer_ids(chunk), [response]))
        scores = pd.concat(parts, ignore_index=True) if parts else _frames.results_frame([], [])
        if target is not None:
            values = frame[value_column].to_numpy() if value_column is not None else None
            scores["contact"] = _frames.contacts(scores, values, contacted_fraction, budget)
        return scores

    def _split_running(self, name: str, alias: str) -> bool:
        try:
            self.traffic_split(name, alias)
        except ChurnserveError as error:
            if error.code == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return True

    def _most_profitable_fraction(self, ref: common_pb2.ModelRef) -> float:
        """The `mpc_fraction` of the version's latest evaluation that priced a campaign."""
        listed = self._call(
            self._registry.ListEvaluations, registry_pb2.ListEvaluationsRequest(name=ref.name, version=ref.version)
        )
        for evaluation in listed.evaluations:
            if evaluation.metrics.HasField("profit"):
                return evaluation.metrics.profit.mpc_fraction
        raise ValueError(
            f"target='profit': {ref.name} version {ref.version} has no evaluation with a campaign profit; "
            "evaluate it first, or give budget=N"
        )

    def score_stream(
        self,
        batches: Iterable[Any],
        model: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        max_in_flight: int = 4,
    ) -> Iterator[pd.DataFrame]:
        """Scores an iterable of DataFrames, lists of dicts or Arrow record batches through
        one `ScoreStream` and yields one result DataFrame per non-empty input batch, in
        order (empty batches are skipped). At most `max_in_flight` batches are read ahead
        of the results, so memory stays bounded however long the iterable is. The stream
        is scored by one version, resolved when the call starts."""
        ref, schema = self._pinned(model, version, alias)
        slots = threading.Semaphore(max_in_flight)
        sent: queue.Queue[list[str] | None] = queue.Queue()
        abandoned = threading.Event()

        def requests() -> Iterator[scoring_pb2.ScoreBatchRequest]:
            first = True
            for batch in batches:
                frame = batch.to_pandas() if hasattr(batch, "to_pandas") else _frames.as_frame(batch)
                if len(frame) == 0:
                    continue
                while not slots.acquire(timeout=0.1):
                    if abandoned.is_set():
                        return
                sent.put(_frames.customer_ids(frame))
                request = scoring_pb2.ScoreBatchRequest(columns=_frames.columns(frame, schema))
                if first:
                    request.model.CopyFrom(ref)
                    first = False
                yield request
            sent.put(None)

        call = self._scoring.ScoreStream(requests(), metadata=self._metadata)
        row = 0
        try:
            for response in call:
                ids = sent.get()
                if ids is None:
                    raise ChurnserveError(grpc.StatusCode.INTERNAL, "the server answered more batches than were sent")
                yield _frames.results_frame(ids, [response], first_row=row)
                row += len(ids)
                slots.release()
        except grpc.RpcError as error:
            raise _error(error) from None
        finally:
            abandoned.set()
            call.cancel()
        ids = sent.get_nowait() if not sent.empty() else None
        if ids is not None:
            raise ChurnserveError(grpc.StatusCode.UNAVAILABLE, f"the stream ended before row {row} was answered")

    def explain(
        self,
        customer: Mapping[str, Any],
        model: str | None = None,
        version: int | None = None,
        alias: str | None = None,
    ) -> scoring_pb2.ExplainResponse:
        """One customer's additive attribution in log-odds:
        `base_value + Σ attributions.contribution = output_value`."""
        ref, schema = self._pinned(model, version, alias)
        request = scoring_pb2.ExplainRequest(model=ref, customer=_frames.customer(customer, schema))
        return self._call(self._scoring.Explain, request)

    def evaluate(
        self,
        data: pd.DataFrame | None = None,
        label: str = "churned",
        dataset: str | None = None,
        model: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        threshold: float = 0.0,
        profit: Mapping[str, float] | None = None,
    ) -> scoring_pb2.EvaluateResponse:
        """Metrics of a version on labelled customers: `data` with a `label` column
        (True/1/"Yes" meaning churned), or a registered `dataset` by name. `profit` prices a
        retention campaign (`clv`, `incentive_cost`, `contact_cost`, `acceptance_alpha`,
        `acceptance_beta`; each left out takes the server's default) in `metrics.profit`.
        The evaluation is stored in the registry."""
        ref, schema = self._pinned(model, version, alias)
        request = scoring_pb2.EvaluateRequest(
            model=ref,
            dataset=dataset or "",
            threshold=threshold,
            profit=scoring_pb2.ProfitParameters(**(profit or {})),
        )
        if data is not None:
            labels = data[label].tolist()
            features = data.drop(columns=[label]).to_dict("records")
            request.rows.extend(
                common_pb2.LabeledCustomer(customer=_frames.customer(row, schema), churned=_churned(outcome))
                for row, outcome in zip(features, labels, strict=True)
            )
        return self._call(self._scoring.Evaluate, request)

    # Registry

    def register(
        self,
        name: str,
        onnx: str | pathlib.Path | bytes,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        aliases: Sequence[str] = (),
        threshold: float = 0.0,
        reference_dataset: str = "",
        feature_names: Sequence[str] = (),
        positive_class: str = "",
        risk_band_cuts: Sequence[float] = (),
    ) -> registry_pb2.ModelVersion:
        """Registers an ONNX file (a path or its bytes) as the next version of `name`."""
        payload = read_bytes(onnx) or b""
        metadata = registry_pb2.RegisterModelMetadata(
            name=name,
            description=description,
            tags=dict(tags or {}),
            feature_names=list(feature_names),
            positive_class=positive_class,
            threshold=threshold,
            risk_band_cuts=list(risk_band_cuts),
            reference_dataset=reference_dataset,
            aliases=list(aliases),
        )

        return self._call(
            self._registry.RegisterModel,
            _upload(registry_pb2.RegisterModelRequest, metadata, "onnx_chunk", payload),
        )

    def upload_dataset(
        self,
        name: str,
        csv: str | pathlib.Path | bytes,
        label_column: str,
        positive_label: str = "",
        description: str = "",
    ) -> registry_pb2.Dataset:
        """Uploads a labelled CSV file (a path or its bytes) under a new name."""
        payload = read_bytes(csv) or b""
        metadata = registry_pb2.DatasetMetadata(
            name=name, label_column=label_column, positive_label=positive_label, description=description
        )

        return self._call(
            self._registry.UploadDataset,
            _upload(registry_pb2.UploadDatasetRequest, metadata, "csv_chunk", payload),
        )

    def model_version(
        self, model: str | None = None, version: int | None = None, alias: str | None = None
    ) -> registry_pb2.ModelVersion:
        """One version's record: schema, threshold, bands, aliases."""
        return self._call(self._registry.GetModelVersion, registry_pb2.GetModelVersionRequest(model=model_ref(model, version, alias)))

    def list_models(self) -> list[registry_pb2.ModelSummary]:
        return list(self._call(self._registry.ListModels, registry_pb2.ListModelsRequest()).models)

    def set_alias(self, name: str, alias: str, version: int) -> registry_pb2.ModelVersion:
        """Points `alias` of `name` at `version`; serving follows at once."""
        return self._call(self._registry.SetAlias, registry_pb2.SetAliasRequest(name=name, alias=alias, version=version))

    def delete_alias(self, name: str, alias: str) -> None:
        self._call(self._registry.DeleteAlias, registry_pb2.DeleteAliasRequest(name=name, alias=alias))


    # Monitoring

    def record_outcomes(self, outcomes: Customers, batch_rows: int = 5000) -> tuple[int, int]:
        """Records what became of customers: a DataFrame or list of dicts with
        `customer_id`, `churned` (a bool, or yes/no, true/false, 1/0) and `observed_at`
        (anything `pandas.Timestamp` reads; naive means UTC), in `RecordOutcomes` calls of
        `batch_rows`. Returns `(recorded, matched)` summed over the calls: the outcomes now
        on record, and those that label at least one logged prediction. Recording the same
        outcome again changes nothing."""
        frame = _frames.as_frame(outcomes)
        missing = [c for c in ("customer_id", "churned", "observed_at") if c not in frame.columns]
        if missing:
            raise ValueError(f"outcomes: missing column(s) {', '.join(missing)}")
        if batch_rows < 1:
            raise ValueError(f"batch_rows: expected at least 1, got {batch_rows}")
        recorded = matched = 0
        for start in range(0, len(frame), batch_rows):
            chunk = frame.iloc[start : start + batch_rows]
            request = monitoring_pb2.RecordOutcomesRequest(
                outcomes=[
                    monitoring_pb2.Outcome(
                        customer_id=str(customer_id), churned=_churned(churned), observed_at=_timestamp(observed_at)
                    )
                    for customer_id, churned, observed_at in zip(chunk.customer_id, chunk.churned, chunk.observed_at)
                ]
            )
            response = self._call(self._monitoring.RecordOutcomes, request)
            recorded += response.recorded
            matched += response.matched
        return recorded, matched

    def realized_performance(
        self,
        model: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        since: Any = None,
        until: Any = None,
        cohort: str = "week",
        horizon_days: int = 0,
    ) -> pd.DataFrame:
        """How a version's predictions turned out, one row per cohort (`cohort`: "day",
        "week" or "month", in UTC), oldest first: `start`, `scored`, `labelled`, `churned`,
        the realized `roc_auc`, `pr_auc`, `log_loss`, `brier`, `accuracy`, `precision`,
        `recall`, `f1` and `empc` (NaN without labels of both classes), and the label-free
        `estimated_roc_auc`, `estimated_accuracy`, `estimated_precision`,
        `estimated_recall` and `estimated_f1`. The version is in `frame.attrs["served_by"]`."""
        periods = {"day": monitoring_pb2.DAY, "week": monitoring_pb2.WEEK, "month": monitoring_pb2.MONTH}
        if cohort not in periods:
            raise ValueError(f"cohort {cohort!r}: expected 'day', 'week' or 'month'")
        request = monitoring_pb2.RealizedPerformanceRequest(
            model=model_ref(model, version, alias),
            since=_timestamp(since),
            until=_timestamp(until),
            cohort=periods[cohort],
            horizon_days=horizon_days,
        )
        return _frames.cohorts_frame(self._call(self._monitoring.RealizedPerformance, request))

    def drift_report(
        self,
        model: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        since: Any = None,
        until: Any = None,
    ) -> pd.DataFrame:
        """How far the rows a version scored on every replica in `[since, until)` (minute
        resolution; default: everything) have moved from its reference dataset, one row
        per feature in the model's order: `feature`, `psi` (NaN without rows), and the
        bins as parallel lists `bins` (labels), `reference_fraction` and `serving_count`.
        `frame.attrs` holds `served_by`, `rows` and `prediction` (the same for the served
        probability, as a dict). A version without a reference dataset raises
        `ChurnserveError` FAILED_PRECONDITION."""
        request = monitoring_pb2.DriftReportRequest(
            model=model_ref(model, version, alias), since=_timestamp(since), until=_timestamp(until)
        )
        return _frames.drift_frame(self._call(self._monitoring.DriftReport, request))

    # Experiments

    def start_experiment(
        self, name: str, arms: Mapping[int, int] | Sequence[tuple[int, int]], alias: str = "production", salt: str = ""
    ) -> common_pb2.TrafficSplit:
        """Splits `alias` of `name` between versions, `arms` as {version: weight} or
        [(version, weight), ...] in order (the first is the baseline). Each customer is
        always answered by the same arm: the first 8 bytes of SHA-256(salt + ":" + id).
        The same arms again change only the weights; `set_alias` ends the split."""
        pairs = list(arms.items()) if isinstance(arms, Mapping) else list(arms)
        request = registry_pb2.SetTrafficSplitRequest(
            name=name,
            alias=alias,
            arms=[common_pb2.TrafficArm(version=int(v), weight=int(w)) for v, w in pairs],
            salt=salt,
        )
        return self._call(self._registry.SetTrafficSplit, request)

    def traffic_split(self, name: str, alias: str = "production") -> common_pb2.TrafficSplit:
        """The running split of an alias; `ChurnserveError` NOT_FOUND when it has none."""
        return self._call(self._registry.GetTrafficSplit, registry_pb2.GetTrafficSplitRequest(name=name, alias=alias))

    def experiment_report(
        self,
        name: str,
        alias: str = "production",
        since: Any = None,
        until: Any = None,
        horizon_days: int = 0,
    ) -> pd.DataFrame:
        """The alias's latest split (running or ended), one row per arm in the split's
        order: `version`, `weight`, `customers`, `labelled`, `churned`, `churn_rate` and
        its 95% Wilson interval (`churn_rate_lower`, `churn_rate_upper`), `roc_auc` and its
        DeLong `roc_auc_variance` (NaN without labels of both classes), and against the
        first arm (NaN on the first row): `churn_rate_difference` with its interval and
        `churn_rate_p_value` (pooled z-test), `roc_auc_difference` with its interval and
        `roc_auc_p_value`, and `labelled_needed` for 80% power. The split itself is in
        `frame.attrs["split"]` (name, alias, salt, started_at, ended_at). `since` and
        `until` take anything `pandas.Timestamp` reads (naive means UTC)."""
        request = monitoring_pb2.ExperimentReportRequest(
            name=name, alias=alias, horizon_days=horizon_days, since=_timestamp(since), until=_timestamp(until)
        )
        report = self._call(self._monitoring.ExperimentReport, request)
        return _frames.experiment_frame(report)


def _upload(message: Callable[..., Any], metadata: Any, chunk_field: str, payload: bytes) -> Callable[[], Iterator[Any]]:
    """A client stream's messages, made afresh for each attempt: the metadata, then the
    payload in chunks."""

    def parts() -> Iterator[Any]:
        yield message(metadata=metadata)
        for start in range(0, len(payload), CHUNK_BYTES):
            yield message(**{chunk_field: payload[start : start + CHUNK_BYTES]})

    return parts


def _churned(outcome: Any) -> bool:
    if isinstance(outcome, str):
        return outcome.strip().lower() in ("yes", "true", "1", "churned")
    return bool(outcome)


def _timestamp(value: Any) -> Any:
    """A protobuf Timestamp of what `pandas.Timestamp` reads (naive means UTC); None stays None."""
    if value is None:
        return None
    from google.protobuf.timestamp_pb2 import Timestamp

    moment = pd.Timestamp(value)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    stamp = Timestamp()
    stamp.FromNanoseconds(int(moment.value))
    return stamp

"""Scoring a Spark DataFrame or a Ray Dataset through the serving replicas.

The driver resolves the alias once; every executor scores by that exact version, so the
registry knows which version produced every score and an alias moved mid-job changes
nothing in the job. Executors hold one channel per replica for the life of their Python
worker, spread `ScoreArrow` calls (Arrow record batches both ways, no message per row)
over the replicas with a few in flight, and move a call that a replica could not answer
to another replica: a row's result is taken from exactly one answer, so no row is lost or
scored twice in the output.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from churnserve_client import _frames
from churnserve_client._client import ChurnserveError, Client, bearer, channel, read_bytes
from churnserve_client._proto.churn.v1 import common_pb2, scoring_pb2, scoring_pb2_grpc

if TYPE_CHECKING:
    import pathlib

    import pyarrow as pa
    import ray.data
    from pyspark.sql import DataFrame

SCORE_COLUMNS = ["churn_probability", "will_churn", "risk_band", "model", "version", "error"]

# A replica that stopped answering is resolved, restarting or gone: a hung call gives up
# after CALL_TIMEOUT and moves on like a refused one.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED)
CALL_TIMEOUT = 120.0
# Attempts per call before the task fails (and Spark retries the task): with backoff capped
# at MAX_BACKOFF, about a minute with every replica down.
MAX_ATTEMPTS = 16
MAX_BACKOFF = 5.0
# A replica that failed a call is tried last for this long.
SHUNNED_SECONDS = 5.0
# Calls in flight per replica and per Python worker.
IN_FLIGHT_PER_REPLICA = 2
# Rows per Ray Data batch, as Spark's default Arrow batch.
ARROW_BATCH_ROWS = 10_000


def score_spark(
    df: DataFrame,
    addresses: Sequence[str] | str,
    model: str | None = None,
    alias: str | None = None,
    version: int | None = None,
    token: str | None = None,
    ca_cert: str | pathlib.Path | bytes | None = None,
    batch_rows: int = 1000,
) -> DataFrame:
    """Scores every row of a Spark DataFrame through the replicas at `addresses`
    (`HOST:PORT`, a list or one string) and returns the DataFrame with
    `churn_probability`, `will_churn`, `risk_band`, `model`, `version` and `error` added.

    The alias (default `production`) is resolved now, on the driver, and every row is scored
    by that version. A bad row gets its `error` (its probability, decision and band are
    null) and never fails the others; a call a replica cannot answer is retried on another.
    Columns are read by the version's schema, as `Client.score` reads them; an optional
    `customer_id` column is sent along for the server's prediction log.

    Executors need `churnserve-client` installed (with `pyarrow`), as for any Python UDF.
    """
    from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType, StructField, StructType

    job = _Job.pinned(addresses, df.columns, model, alias, version, token, ca_cert, batch_rows)
    added = [
        StructField("churn_probability", DoubleType()),
        StructField("will_churn", BooleanType()),
        StructField("risk_band", StringType()),
        StructField("model", StringType()),
        StructField("version", LongType()),
        StructField("error", StringType()),
    ]
    return df.mapInArrow(job, StructType(df.schema.fields + added))


def score_ray(
    dataset: ray.data.Dataset,
    addresses: Sequence[str] | str,
    model: str | None = None,
    alias: str | None = None,
    version: int | None = None,
    token: str | None = None,
    ca_cert: str | pathlib.Path | bytes | None = None,
    batch_rows: int = 1000,
) -> ray.data.Dataset:
    """`score_spark` for a Ray Dataset, over `map_batches`: the same columns added, the
    version pinned now, the same retries. The returned Dataset is lazy, as Ray's are; it is
    scored when consumed, by the version pinned here."""
    job = _Job.pinned(addresses, dataset.columns(), model, alias, version, token, ca_cert, batch_rows)
    return dataset.map_batches(job.score_table, batch_format="pyarrow", batch_size=ARROW_BATCH_ROWS)


def _resolve(
    addresses: Sequence[str], model: str | None, version: int | None, alias: str | None, token: str | None, ca_cert: bytes | None
) -> Any:
    """The version the reference names now, asked of the first replica that answers."""
    unavailable: list[str] = []
    for address in addresses:
        with Client(address, token=token, ca_cert=ca_cert, retries=2) as client:
            try:
                return client.model_version(model, version, alias)
            except ChurnserveError as error:
                if error.code not in RETRYABLE:
                    raise
                unavailable.append(f"{address}: {error.message}")
    raise ChurnserveError(grpc.StatusCode.UNAVAILABLE, "no replica answered: " + "; ".join(unavailable))


@dataclass(frozen=True)
class _Job:
    """What every executor needs: the replicas, the credentials and the pinned version with
    its schema. Called by Spark's `mapInArrow` with a partition's Arrow batches; Ray's
    `map_batches` calls `score_table` with one batch."""

    addresses: tuple[str, ...]
    token: str | None
    ca_cert: bytes | None
    model: str
    version: int
    features: tuple[tuple[str, int], ...]
    batch_rows: int

    @classmethod
    def pinned(
        cls,
        addresses: Sequence[str] | str,
        columns: Sequence[str],
        model: str | None,
        alias: str | None,
        version: int | None,
        token: str | None,
        ca_cert: str | pathlib.Path | bytes | None,
        batch_rows: int,
    ) -> _Job:
        """The job for a table with `columns`, by the version the reference names now."""
        addresses = [addresses] if isinstance(addresses, str) else list(addresses)
        if not addresses:
            raise ValueError("scoring needs at least one replica address")
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
        clashes = [name for name in SCORE_COLUMNS if name in columns]
        if clashes:
            raise ValueError(f"the table already has the output column(s) {', '.join(clashes)}: rename them first")
        certificate = read_bytes(ca_cert)
        resolved = _resolve(addresses, model, version, alias, token, certificate)
        return cls(
            addresses=tuple(addresses),
            token=token,
            ca_cert=certificate,
            model=resolved.name,
            version=resolved.version,
            features=tuple((feature.name, feature.kind) for feature in resolved.features),
            batch_rows=batch_rows,
        )

    def score_table(self, table: pa.Table) -> pa.Table:
        """One Ray Data batch, scored."""
        import pyarrow as pa

        if table.num_rows == 0:
            nobody = pa.RecordBatch.from_pylist([], schema=table.schema)
            return pa.Table.from_batches([_scored(nobody, [])])
        return pa.Table.from_batches(list(self(iter(table.combine_chunks().to_batches()))))

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        replicas = _Replicas.of(self.addresses, self.token, self.ca_cert)
        ref = common_pb2.ModelRef(name=self.model, version=self.version)
        limit = IN_FLIGHT_PER_REPLICA * len(self.addresses)
        window: deque[_Call] = deque()
        for batch in batches:
            sent = self._sent_columns(batch)
            answers: list[_Answer] = []
            for start in range(0, batch.num_rows, self.batch_rows):
                if len(window) >= limit:
                    yield from window.popleft().finish()
                chunk = sent.slice(start, self.batch_rows)
                request = scoring_pb2.ScoreArrowRequest(model=ref, arrow_ipc=_ipc(chunk))
                last = start + self.batch_rows >= batch.num_rows
                window.append(_Call(replicas, request, chunk.num_rows, answers, batch if last else None))
        while window:
            yield from window.popleft().finish()

    def _sent_columns(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The columns the version reads, and `customer_id` as text, still Arrow: the
        server reads them by the version's schema. Decimals go as floats, since the model
        takes numbers."""
        import pyarrow as pa

        wanted = {name for name, _ in self.features}
        names, columns = [], []
        for name, column in zip(batch.schema.names, batch.columns):
            if name == _frames.CUSTOMER_ID and not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                column = column.cast(pa.string())
            elif name not in wanted and name != _frames.CUSTOMER_ID:
                continue
            elif pa.types.is_decimal(column.type):
                column = column.cast(pa.float64())
            names.append(name)
            columns.append(column)
        if not names:
            # No column the version reads: every row is sent, so that each gets its error.
            return pa.RecordBatch.from_arrays([pa.nulls(batch.num_rows, pa.string())], names=[_frames.CUSTOMER_ID])
        return pa.RecordBatch.from_arrays(columns, names=names)


def _ipc(batch: pa.RecordBatch) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


class _Call:
    """One chunk's `ScoreArrow`, moved to another replica while replicas cannot answer it.
    `answers` collects the answers of its input batch; the batch's last call carries the
    batch, and finishing it yields the scored batch."""

    def __init__(self, replicas: _Replicas, request: Any, rows: int, answers: list[_Answer], batch: pa.RecordBatch | None):
        self.replicas = replicas
        self.request = request
        self.rows = rows
        self.answers = answers
        self.batch = batch
        self.replica = replicas.pick()
        self.call = replicas.send(self.replica, request)

    def finish(self) -> Iterator[pa.RecordBatch]:
        self.answers.append(self._answer())
        if self.batch is not None:
            yield _scored(self.batch, self.answers)

    def _answer(self) -> _Answer:
        import pyarrow as pa

        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                answer = next(self.call)
                break
            except grpc.RpcError as error:
                code = error.code()  # type: ignore[attr-defined]
                if code not in RETRYABLE or attempt == MAX_ATTEMPTS:
                    raise ChurnserveError(code, f"{self.replicas.addresses[self.replica]}: {error.details()}") from None  # type: ignore[attr-defined]
                self.replicas.shun(self.replica)
                if attempt >= len(self.replicas.addresses):
                    # Every replica has failed this call: give them time to come back.
                    delay = min(0.05 * 2 ** (attempt - len(self.replicas.addresses)), MAX_BACKOFF)
                    time.sleep(delay * random.uniform(0.5, 1.5))
                self.replica = self.replicas.pick(avoid=self.replica)
                self.call = self.replicas.send(self.replica, self.request)
        scores = pa.ipc.open_stream(answer.arrow_ipc).read_all()
        if scores.column("row").to_pylist() != list(range(self.rows)):
            raise ChurnserveError(
                grpc.StatusCode.INTERNAL,
                f"{self.replicas.addresses[self.replica]} answered {scores.num_rows} rows for {self.rows} sent",
            )
        return _Answer(scores, answer.served_by.name, answer.served_by.version)


@dataclass(frozen=True)
class _Answer:
    """One call's scores (`ScoreArrowResponse`'s columns) and the version that gave them."""

    scores: pa.Table
    model: str
    version: int


def _scored(batch: pa.RecordBatch, answers: list[_Answer]) -> pa.RecordBatch:
    """The input batch with the score columns added; a row with an error has a null
    probability, decision and band, and its `error`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def joined(name: str, kind: pa.DataType) -> pa.Array:
        chunks = [chunk for answer in answers for chunk in answer.scores.column(name).chunks]
        return pa.concat_arrays(chunks) if chunks else pa.array([], kind)

    def each_row(value: Any, answer: _Answer) -> list[Any]:
        return [value] * answer.scores.num_rows

    added = [
        joined("churn_probability", pa.float64()),
        joined("will_churn", pa.bool_()),
        joined("risk_band", pa.string()),
        pa.array([model for answer in answers for model in each_row(answer.model, answer)], type=pa.string()),
        pa.array([version for answer in answers for version in each_row(answer.version, answer)], type=pa.int64()),
        pc.fill_null(joined("error", pa.string()), ""),
    ]
    return pa.RecordBatch.from_arrays(list(batch.columns) + added, names=batch.schema.names + SCORE_COLUMNS)


class _Replicas:
    """One channel per replica, kept for the life of the Python worker and shared by its
    tasks; calls go round the replicas from a random start, and a replica that failed a call
    is tried last for SHUNNED_SECONDS."""

    _kept: dict[tuple[tuple[str, ...], str | None, bytes | None], _Replicas] = {}

    @classmethod
    def of(cls, addresses: tuple[str, ...], token: str | None, ca_cert: bytes | None) -> _Replicas:
        key = (addresses, token, ca_cert)
        if key not in cls._kept:
            cls._kept[key] = cls(addresses, token, ca_cert)
        return cls._kept[key]

    def __init__(self, addresses: tuple[str, ...], token: str | None, ca_cert: bytes | None):
        self.addresses = addresses
        self.stubs = [scoring_pb2_grpc.ScoringServiceStub(channel(address, ca_cert)) for address in addresses]
        self.metadata = bearer(token)
        self.turn = random.randrange(len(addresses))
        self.shunned_until = [0.0] * len(addresses)

    def pick(self, avoid: int | None = None) -> int:
        now = time.monotonic()
        count = len(self.addresses)
        for step in range(count):
            replica = (self.turn + step) % count
            if replica != avoid and self.shunned_until[replica] <= now:
                self.turn = replica + 1
                return replica
        # Every other replica is shunned too: the one that comes back first.
        return min(range(count), key=lambda replica: (replica == avoid and count > 1, self.shunned_until[replica]))

    def shun(self, replica: int) -> None:
        self.shunned_until[replica] = time.monotonic() + SHUNNED_SECONDS

    def send(self, replica: int, request: Any) -> Any:
        """A one-message `ScoreArrow` stream, under way at once; `next` waits for its answer."""
        return self.stubs[replica].ScoreArrow(iter([request]), metadata=self.metadata, timeout=CALL_TIMEOUT)

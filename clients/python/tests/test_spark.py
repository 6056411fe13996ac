"""score_spark on a real Spark (PySpark from PyPI, local mode with two cores) through two
real churnserve replicas sharing a PostgreSQL registry and an S3 artifact store: 200,000
generated customers come back exactly once with the probabilities of `ScoreBatch`, an
alias moved mid-job and a replica killed mid-job change nothing in the output, and bad
rows come back with their error."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import grpc
import pandas as pd
import pyarrow.parquet as pq
import pytest

from churnserve_client import ChurnserveError, Client, score_spark
from conftest import REPO, start_server
from replicas import (
    BAD_ROWS_ALIAS,
    CUSTOMERS,
    MODEL,
    SCORE_COLUMNS,
    Replica,
    assert_bad_rows_answered,
    assert_every_customer_once_as_score_batch,
    bad_customers,
    production_moved,
    write_parquet,
)

# Mid-job: the job has scored this many rows and not all of them.
MID_JOB_ROWS = 40_000


@pytest.fixture(scope="module")
def spark():
    # The executors' Python must be this one, which has churnserve_client installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("churnserve-score-spark-test")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def customers_parquet(customers, tmp_path_factory):
    return write_parquet(customers, tmp_path_factory.mktemp("customers"), files=8)


def read_scored(path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def rows_scored(replicas: list[Replica], version: int) -> float:
    return sum(replica.rows_scored(MODEL, version) for replica in replicas)


def run_in_background(job: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            job()
        except BaseException as failure:
            failures.append(failure)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, failures


def wait_until_scored(replicas: list[Replica], version: int, rows: float, thread: threading.Thread) -> float:
    """Waits until the replicas have scored `rows` more rows of `version`, and returns
    their count then; fails if the job ended first."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        count = rows_scored(replicas, version)
        if count >= rows:
            return count
        assert thread.is_alive(), "the job ended before it was half done"
        time.sleep(0.02)
    raise AssertionError(f"the replicas did not score {rows} rows in 300 s")


def test_200000_customers_through_two_replicas_equal_score_batch(spark, backing, customers_parquet, expected, production, tmp_path):
    before = [replica.rows_scored(MODEL, production) for replica in backing.replicas]
    started = time.monotonic()
    scored = score_spark(spark.read.parquet(str(customers_parquet)), [r.address for r in backing.replicas], model=MODEL)
    scored.write.parquet(str(tmp_path / "scored"))
    took = time.monotonic() - started
    largest = assert_every_customer_once_as_score_batch(read_scored(tmp_path / "scored"), expected, production)
    spread = [replica.rows_scored(MODEL, production) - b for replica, b in zip(backing.replicas, before)]
    # Every row went to one replica or the other, and each took a fair share.
    assert sum(spread) == CUSTOMERS and min(spread) >= CUSTOMERS / 4, spread
    print(f"\n{CUSTOMERS} customers in {took:.1f} s ({CUSTOMERS / took:,.0f} rows/s), replicas scored {spread}, "
          f"largest difference from ScoreBatch {largest:g}")


def test_input_columns_come_back_unchanged_beside_the_scores(spark, backing, customers_parquet, production):
    addresses = [r.address for r in backing.replicas]
    frame = spark.read.parquet(str(customers_parquet)).where("customer_id < 'G0000500'")
    scored = score_spark(frame, addresses, model=MODEL, version=production).toPandas().sort_values("customer_id")
    original = frame.toPandas().sort_values("customer_id")
    assert len(scored) == 500 and list(scored.columns) == list(original.columns) + SCORE_COLUMNS
    pd.testing.assert_frame_equal(scored[original.columns].reset_index(drop=True), original.reset_index(drop=True))

    # Decimal and integer columns, as a warehouse types money and counts, score the same.
    typed = frame.withColumn("monthlycharges", frame.monthlycharges.cast("decimal(10,2)"))
    typed = typed.withColumn("totalcharges", typed.totalcharges.cast("decimal(12,2)"))
    typed = typed.withColumn("tenure", typed.tenure.cast("int"))
    as_typed = score_spark(typed, addresses, model=MODEL, version=production).toPandas().sort_values("customer_id")
    assert (as_typed.error == "").all(), as_typed.error.head()
    assert (as_typed.churn_probability.to_numpy() == scored.churn_probability.to_numpy()).all()


def test_an_alias_moved_mid_job_changes_nothing_in_the_job(spark, backing, customers_parquet, expected, production, tmp_path):
    addresses = [r.address for r in backing.replicas]
    scored = score_spark(spark.read.parquet(str(customers_parquet)), addresses, model=MODEL, alias="production")
    baseline = rows_scored(backing.replicas, production)
    thread, failures = run_in_background(lambda: scored.write.parquet(str(tmp_path / "scored")))
    moved_at = wait_until_scored(backing.replicas, production, baseline + MID_JOB_ROWS, thread)
    # Every replica serves the move while the job still runs.
    with production_moved(addresses, production) as moved_to:
        served_at = rows_scored(backing.replicas, production)
        thread.join()
        assert not failures, failures
        print(f"\nalias moved after {moved_at - baseline:.0f} rows, served everywhere after {served_at - baseline:.0f}")
        assert served_at - baseline < CUSTOMERS, "the job had ended before every replica served the move"
        assert_every_customer_once_as_score_batch(read_scored(tmp_path / "scored"), expected, production)
        with Client(addresses[1]) as client:
            assert client.score(expected.reset_index().head(1), model=MODEL).version[0] == moved_to


def test_bad_rows_come_back_with_their_error_and_the_partition_is_scored(spark, backing, holdout, tmp_path):
    customers = bad_customers(holdout)
    path = write_parquet(customers, tmp_path / "bad", files=2)
    addresses = [r.address for r in backing.replicas]
    scored = score_spark(spark.read.parquet(str(path)), addresses, model=MODEL, alias=BAD_ROWS_ALIAS)
    assert_bad_rows_answered(scored.toPandas(), customers)

    # Without a required column at all, every row says which one, and none is dropped.
    without = score_spark(spark.read.parquet(str(path)).drop("contract"), addresses, model=MODEL).toPandas()
    assert len(without) == 1000 and without.error.str.contains("`contract`").all(), without.error.head()


def test_what_cannot_be_scored_at_all_is_refused_on_the_driver(spark, backing, customers_parquet):
    frame = spark.read.parquet(str(customers_parquet))
    addresses = [r.address for r in backing.replicas]
    with pytest.raises(ChurnserveError) as refused:
        score_spark(frame, addresses, model="no-such-model")
    assert refused.value.code == grpc.StatusCode.NOT_FOUND, refused.value
    with pytest.raises(ChurnserveError) as refused:
        score_spark(frame, addresses, model=MODEL, alias="no-such-alias")
    assert refused.value.code == grpc.StatusCode.NOT_FOUND, refused.value
    with pytest.raises(ValueError, match="version"):
        score_spark(frame.withColumnRenamed("tenure", "version"), addresses, model=MODEL)
    with pytest.raises(ValueError, match="batch_rows"):
        score_spark(frame, addresses, model=MODEL, batch_rows=0)
    # A dead address first: the alias is resolved through the next one.
    dead = backing.directory / "nothing-listens"
    scored = score_spark(frame.limit(10), [f"unix:{dead}", *addresses], model=MODEL)
    assert scored.count() == 10


def test_tls_and_a_read_token_reach_the_executors(spark, pki, customers_parquet, tmp_path):
    process, running = start_server(
        tmp_path / "data", "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
        "--read-token", "reader",
    )
    try:
        frame = spark.read.parquet(str(customers_parquet)).limit(100)
        # The CA's bytes are read on the driver: executors need no file of it.
        scored = score_spark(frame, [running.address], model=MODEL, token="reader", ca_cert=pki / "ca.pem").toPandas()
        assert len(scored) == 100 and (scored.error == "").all(), scored.error.head()
        with pytest.raises(ChurnserveError) as anonymous:
            score_spark(frame, [running.address], model=MODEL, ca_cert=pki / "ca.pem")
        assert anonymous.value.code == grpc.StatusCode.UNAUTHENTICATED, anonymous.value
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_nightly_example_scores_a_parquet_table_into_another(backing, holdout, production, tmp_path):
    customers = holdout.drop(columns=["churn"]).head(1000)
    source = write_parquet(customers, tmp_path / "customers", files=2)
    replicas = ",".join(r.address for r in backing.replicas)
    command = [sys.executable, str(REPO / "clients/python/examples/nightly_scoring.py"), "--input", str(source),
               "--output", str(tmp_path / "scores"), "--replicas", replicas, "--model", MODEL, "--master", "local[1]"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"scored 1000 customers with {MODEL} version {production}; 0 refused" in finished.stdout, finished.stdout
    written = pq.read_table(tmp_path / "scores").to_pandas()
    assert sorted(written.customer_id) == sorted(customers.customer_id)
    assert (written.model == MODEL).all() and (written.version == production).all()


def test_a_replica_killed_mid_job_loses_and_repeats_no_row(spark, backing, customers_parquet, expected, production, tmp_path):
    first, second = backing.replicas
    scored = score_spark(spark.read.parquet(str(customers_parquet)), [first.address, second.address], model=MODEL)
    before = [replica.rows_scored(MODEL, production) for replica in backing.replicas]
    thread, failures = run_in_background(lambda: scored.write.parquet(str(tmp_path / "scored")))
    wait_until_scored(backing.replicas, production, sum(before) + MID_JOB_ROWS, thread)
    at_kill = [replica.rows_scored(MODEL, production) - b for replica, b in zip(backing.replicas, before)]
    second.process.kill()
    second.process.wait()
    thread.join()
    assert not failures, failures
    after_kill = first.rows_scored(MODEL, production) - before[0] - at_kill[0]
    print(f"\nsecond replica killed at {at_kill} rows scored; the first scored {after_kill:.0f} more")
    assert_every_customer_once_as_score_batch(read_scored(tmp_path / "scored"), expected, production)
    assert at_kill[1] > 0 and sum(at_kill) < CUSTOMERS, at_kill
    # The rest of the job, the calls in flight on the killed replica included, went to the
    # survivor.
    assert after_kill >= CUSTOMERS - sum(at_kill) - 10_000, after_kill

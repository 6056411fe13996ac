"""Nightly scoring on Spark (and Ray) against `churnctl score-file`, in one run on the same rows:

two churnserve replicas (release build) share a PostgreSQL registry and an S3 artifact
store (the project's scripts start both); N generated customers are written as Parquet,
eight files for Spark and one for churnctl. Each round times

- `churnctl score-file` of the one file through the first replica (Parquet in and out),
- a Spark job in local mode with two cores: read the Parquet files, `score_spark` through
  both replicas, write Parquet,
- the same Spark job with constant scores instead of `score_spark`: what Spark itself costs,
- the Ray Data job of the first: `read_parquet`, `score_ray` through both replicas,
  `write_parquet`, on a local Ray of two CPUs,

and prints rows/s and the ratio of the first two. The JVM, the Python workers and both replicas are warmed
by a small job first; the session's start is not timed.

Run: python benches/spark.py [--rows 200000] [--rounds 2] (needs tests/clients/requirements.txt,
requirements-jobs.txt and clients/python installed, Java 17, and the release binaries).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "clients/python/tests"))

from churnserve_client import Client, score_ray, score_spark  # noqa: E402
from churnserve_client._distributed import SCORE_COLUMNS  # noqa: E402
from replicas import Backing, generated_customers, write_parquet  # noqa: E402

MODEL = "telco-churn"


def without_scoring(batches):
    """The Spark job's own cost: each batch goes to pandas, as score_spark sends it, and comes
    back with constant score columns."""
    for batch in batches:
        batch.to_pandas()
        rows = batch.num_rows
        constant = [
            pa.array(np.zeros(rows)),
            pa.array(np.zeros(rows, dtype=bool)),
            pa.array(["LOW"] * rows),
            pa.array([MODEL] * rows),
            pa.array(np.ones(rows, dtype=np.int64)),
            pa.array([""] * rows),
        ]
        yield pa.RecordBatch.from_arrays(list(batch.columns) + constant, names=batch.schema.names + SCORE_COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--server", default=str(REPO / "target/release/churnserve"))
    parser.add_argument("--churnctl", default=str(REPO / "target/release/churnctl"))
    args = parser.parse_args()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    backing = Backing().start()
    try:
        first, second = backing.replica("a", binary=args.server), backing.replica("b", binary=args.server)
        with Client(first.address) as client:
            version = client.model_version(MODEL, alias="production").version
        holdout = pd.read_csv(REPO / "models/data/test.csv").rename(columns={"customerid": "customer_id"})
        customers = generated_customers(holdout, args.rows)
        scratch = backing.directory / "bench"
        lake = write_parquet(customers, scratch / "customers", files=8)
        one_file = scratch / "customers.parquet"
        pq.write_table(pq.read_table(lake), one_file)

        spark = (
            SparkSession.builder.master("local[2]")
            .appName("churnserve-spark-bench")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        addresses = [first.address, second.address]

        def spark_job(source: pathlib.Path, destination: pathlib.Path, rows: int, scoring: bool = True) -> float:
            shutil.rmtree(destination, ignore_errors=True)
            started = time.perf_counter()
            customers = spark.read.parquet(str(source))
            if scoring:
                scored = score_spark(customers, addresses, model=MODEL, version=version)
            else:
                scored = customers.mapInArrow(without_scoring, score_spark(customers, addresses, model=MODEL).schema)
            scored.write.parquet(str(destination))
            rate = rows / (time.perf_counter() - started)
            written = pq.read_table(destination, columns=["error"]).column("error").to_pylist()
            assert len(written) == rows and not any(written), "the job lost rows or refused some"
            return rate

        import ray

        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024 * 1024, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False

        def ray_job(source: pathlib.Path, destination: pathlib.Path, rows: int) -> float:
            shutil.rmtree(destination, ignore_errors=True)
            started = time.perf_counter()
            score_ray(ray.data.read_parquet(str(source)), addresses, model=MODEL, version=version).write_parquet(str(destination))
            rate = rows / (time.perf_counter() - started)
            written = pq.read_table(destination, columns=["error"]).column("error").to_pylist()
            assert len(written) == rows and not any(written), "the job lost rows or refused some"
            return rate

        def churnctl() -> float:
            out = scratch / "scores.parquet"
            out.unlink(missing_ok=True)
            started = time.perf_counter()
            subprocess.run(
                [args.churnctl, "--server", f"http://{first.address}", "score-file", str(one_file), str(out),
                 "--model", MODEL, "--version", str(version), "--quiet"],
                check=True, capture_output=True,
            )
            rate = args.rows / (time.perf_counter() - started)
            assert pq.read_metadata(out).num_rows == args.rows
            return rate

        warm = write_parquet(customers.head(20_000), scratch / "warm", files=2)
        spark_job(warm, scratch / "warm-out", 20_000)
        ray_job(warm, scratch / "warm-out", 20_000)
        churnctl()
        print(f"{args.rows:,} customers, version {version} of {MODEL}, 2 cores shared by Spark, both replicas and churnctl")
        print("| round | churnctl score-file (1 replica) | Spark score_spark (2 replicas) | Spark ÷ churnctl "
              "| Spark job without scoring | Ray score_ray (2 replicas) |")
        print("|---|---|---|---|---|---|")
        for round_number in range(1, args.rounds + 1):
            churnctl_rate = churnctl()
            spark_rate = spark_job(lake, scratch / "scored", args.rows)
            unscored_rate = spark_job(lake, scratch / "unscored", args.rows, scoring=False)
            ray_rate = ray_job(lake, scratch / "ray-scored", args.rows)
            print(f"| {round_number} | {churnctl_rate:,.0f} rows/s | {spark_rate:,.0f} rows/s | {spark_rate / churnctl_rate:.2f} "
                  f"| {unscored_rate:,.0f} rows/s | {ray_rate:,.0f} rows/s |", flush=True)
        spark.stop()
        ray.shutdown()
    finally:
        backing.stop()


if __name__ == "__main__":
    main()

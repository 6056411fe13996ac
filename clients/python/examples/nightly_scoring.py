"""Nightly churn scoring on Spark through the churnserve replicas.

Reads the customer table (Parquet: one column per raw feature, and `customer_id`), scores
every row through the replicas by the version the alias names when the job starts, and
writes Parquet with the input columns plus `churn_probability`, `will_churn`, `risk_band`,
`model`, `version` and `error`, then prints how many rows each version scored and how many
were refused. A bad row never fails the job (it carries its `error`); a call that no
replica can answer does, after retries.

    spark-submit clients/python/examples/nightly_scoring.py \\
        --input s3a://lake/customers/ --output s3a://lake/churn_scores/day=2026-11-30/ \\
        --replicas churnserve-0.churnserve:50051,churnserve-1.churnserve:50051 \\
        --model telco-churn --alias production

Every executor needs `churnserve-client[spark]` installed (or shipped with `--py-files`).
The read token, when the replicas require one, is taken from CHURNSERVE_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from churnserve_client import score_spark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="Parquet table of customers")
    parser.add_argument("--output", required=True, help="where the scored Parquet table goes (overwritten)")
    parser.add_argument("--replicas", required=True, help="HOST:PORT of each replica, comma-separated")
    parser.add_argument("--model", default=None, help="default: the server's default model")
    parser.add_argument("--alias", default=None, help="default: production")
    parser.add_argument("--version", type=int, default=None, help="an exact version instead of an alias")
    parser.add_argument("--ca-cert", default=None, help="PEM file of the CA that signed the replicas' certificates")
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--master", default=None, help="for a local run, e.g. local[2]; spark-submit sets it otherwise")
    args = parser.parse_args(argv)

    builder = SparkSession.builder.appName("churn-nightly-scoring")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        customers = spark.read.parquet(args.input)
        scored = score_spark(
            customers,
            args.replicas.split(","),
            model=args.model,
            alias=args.alias,
            version=args.version,
            token=os.environ.get("CHURNSERVE_TOKEN"),
            ca_cert=args.ca_cert,
            batch_rows=args.batch_rows,
        )
        scored.write.mode("overwrite").parquet(args.output)
        summary = (
            spark.read.parquet(args.output)
            .groupBy("model", "version")
            .agg(F.count("*").alias("rows"), F.sum(F.when(F.col("error") != "", 1).otherwise(0)).alias("refused"))
            .collect()
        )
        for row in summary:
            print(f"scored {row.rows} customers with {row.model} version {row.version}; {row.refused} refused (see `error`)")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

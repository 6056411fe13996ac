"""Replicas of one churnserve service for the Spark tests and benchmark: a throwaway
PostgreSQL cluster and S3-compatible server started by the project's own scripts
(`scripts/postgres.sh`, `scripts/s3.sh`), churnserve processes sharing them, and generated
customers drawn from the hold-out set."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnserve_client import Client
from conftest import REPO, Server, start_server

MODEL = "telco-churn"
CUSTOMERS = 200_000
# What score_spark and score_ray add to the input columns (API.md, "Python client").
SCORE_COLUMNS = ["churn_probability", "will_churn", "risk_band", "model", "version", "error"]


@dataclass
class Replica:
    process: subprocess.Popen
    server: Server

    @property
    def address(self) -> str:
        return self.server.address

    def rows_scored(self, model: str, version: int) -> float:
        """The replica's `churn_rows_scored` counter of one version."""
        text = urllib.request.urlopen(f"http://{self.server.http_address}/metrics", timeout=10).read().decode()
        pattern = rf'^churn_rows_scored_total\{{[^}}]*model="{re.escape(model)}",version="{version}"[^}}]*\}} (\S+)$'
        found = re.search(pattern, text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@dataclass
class Backing:
    """PostgreSQL and S3 servers in a directory of their own, and the replicas started on
    them; `stop` stops them all and removes the directory."""

    directory: pathlib.Path = field(default_factory=lambda: pathlib.Path(tempfile.mkdtemp(prefix="churnserve-replicas-")))
    registry_url: str = ""
    s3_env: dict[str, str] = field(default_factory=dict)
    replicas: list[Replica] = field(default_factory=list)

    def start(self) -> Backing:
        # As root, the PostgreSQL cluster runs as the `postgres` user, which must reach it
        # (pytest's own temporary directories are private to their user).
        self.directory.chmod(0o755)
        self.registry_url = _script("postgres.sh", "start", self.directory / "postgres").strip()
        exports = _script("s3.sh", "start", self.directory / "s3")
        self.s3_env = dict(re.findall(r"^export (\w+)=(.*)$", exports, re.MULTILINE))
        return self

    def replica(self, name: str, binary: str | None = None) -> Replica:
        """A replica with a node-local data directory of its own; replicas are started one
        after the other, so that the first seeds the shared registry alone."""
        bucket = self.s3_env["CHURNSERVE_TEST_S3_BUCKET"]
        process, server = start_server(
            self.directory / name,
            "--registry-url",
            self.registry_url,
            "--artifact-store",
            f"s3://{bucket}/registry",
            "--registry-poll-ms",
            "500",
            env={**os.environ, **self.s3_env},
            binary=binary,
        )
        self.replicas.append(Replica(process, server))
        return self.replicas[-1]

    def stop(self) -> None:
        for replica in self.replicas:
            if replica.process.poll() is None:
                replica.process.kill()
                replica.process.wait()
        _script("s3.sh", "stop", self.directory / "s3")
        _script("postgres.sh", "stop", self.directory / "postgres")
        shutil.rmtree(self.directory, ignore_errors=True)


def _script(name: str, *args: object) -> str:
    return subprocess.run(
        [str(REPO / "scripts" / name), *map(str, args)], check=True, capture_output=True, text=True
    ).stdout


def generated_customers(holdout: pd.DataFrame, count: int, seed: int = 7) -> pd.DataFrame:
    """`count` customers with unique ids: each categorical feature drawn from the hold-out
    set's values, tenure and charges drawn over their hold-out ranges."""
    rng = np.random.default_rng(seed)
    features = holdout.drop(columns=["customer_id", "churn"])
    customers = {"customer_id": [f"G{k:07d}" for k in range(count)]}
    for name in features.columns:
        customers[name] = features[name].to_numpy()[rng.integers(0, len(features), count)]
    tenure = rng.integers(0, 73, count)
    monthly = np.round(rng.uniform(18.0, 119.0, count), 2)
    customers["tenure"] = tenure
    customers["monthlycharges"] = monthly
    customers["totalcharges"] = np.round(tenure * monthly * rng.uniform(0.9, 1.1, count), 2)
    return pd.DataFrame(customers)


def write_parquet(customers: pd.DataFrame, directory: pathlib.Path, files: int) -> pathlib.Path:
    """The customers as `files` Parquet files in `directory` (Spark reads one partition
    per file at this size), as a data lake holds a table."""
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(customers, preserve_index=False)
    rows = -(-len(customers) // files)
    for part in range(files):
        pq.write_table(table.slice(part * rows, rows), directory / f"part-{part:03d}.parquet")
    return directory


# Fixtures for the modules that score through replicas (each module gets its own).


@pytest.fixture(scope="module")
def backing() -> Iterator[Backing]:
    started = Backing().start()
    try:
        started.replica("a")
        started.replica("b")
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def customers(holdout) -> pd.DataFrame:
    return generated_customers(holdout, CUSTOMERS)


@pytest.fixture(scope="module")
def production(backing) -> int:
    with Client(backing.replicas[0].address) as client:
        return client.model_version(MODEL, alias="production").version


@pytest.fixture(scope="module")
def expected(backing, customers, production) -> pd.DataFrame:
    """Every generated customer through `ScoreBatch` (Client.score) on one replica, by the
    version `production` names before any job runs, indexed by customer id."""
    with Client(backing.replicas[0].address) as client:
        scored = client.score(customers, model=MODEL, version=production)
    assert (scored.error == "").all(), scored.error[scored.error != ""].head()
    return scored.set_index("customer_id")


def assert_every_customer_once_as_score_batch(scored: pd.DataFrame, expected: pd.DataFrame, version: int) -> float:
    """Every expected customer exactly once, scored by `version` as `ScoreBatch` scored it;
    returns the largest difference of probability."""
    assert len(scored) == len(expected), f"{len(scored)} rows out of {len(expected)}"
    assert scored.customer_id.is_unique, scored.customer_id[scored.customer_id.duplicated()].head()
    assert set(scored.customer_id) == set(expected.index)
    assert (scored.error == "").all(), scored.error[scored.error != ""].head()
    assert (scored.model == MODEL).all() and (scored.version == version).all(), scored.version.value_counts()
    aligned = expected.loc[scored.customer_id]
    difference = np.abs(scored.churn_probability.to_numpy() - aligned.churn_probability.to_numpy())
    assert difference.max() <= 1e-6, difference.max()
    assert (scored.will_churn.to_numpy() == aligned.will_churn.to_numpy()).all()
    assert (scored.risk_band.to_numpy() == aligned.risk_band.to_numpy()).all()
    return float(difference.max())


@contextlib.contextmanager
def production_moved(addresses: list[str], production: int) -> Iterator[int]:
    """Moves `production` to the bundled model's other version (it has versions 1 and 2),
    waits until every replica serves the move, and yields the version moved to; moves the
    alias back at the end."""
    with Client(addresses[0]) as client:
        moved_to = client.set_alias(MODEL, "production", 3 - production).version
    try:
        for address in addresses:
            with Client(address) as client:
                deadline = time.monotonic() + 5
                while client.model_version(MODEL, alias="production").version != moved_to:
                    assert time.monotonic() < deadline, f"{address} did not serve the alias move"
                    time.sleep(0.05)
        yield moved_to
    finally:
        with Client(addresses[0]) as client:
            client.set_alias(MODEL, "production", production)


# Scored by the challenger (LightGBM), which refuses categories it was not trained on.
BAD_ROWS_ALIAS = "challenger"


def bad_customers(holdout: pd.DataFrame) -> pd.DataFrame:
    """1,000 hold-out customers: the sixth with a contract no model knows, the eighteenth
    without a payment method."""
    customers = holdout.drop(columns=["churn"]).head(1000).copy()
    customers.loc[5, "contract"] = "Fortnightly"
    customers.loc[17, "paymentmethod"] = None
    return customers


def assert_bad_rows_answered(scored: pd.DataFrame, customers: pd.DataFrame) -> None:
    """The two bad customers of `bad_customers` carry their error and null scores; every
    other one is scored."""
    scored = scored.set_index("customer_id")
    assert len(scored) == len(customers) and scored.index.is_unique
    unknown, missing = scored.loc[customers.customer_id[5]], scored.loc[customers.customer_id[17]]
    assert "`contract`" in unknown.error and "Fortnightly" in unknown.error, unknown.error
    assert "`paymentmethod`" in missing.error, missing.error
    for bad in (unknown, missing):
        assert pd.isna(bad.churn_probability) and pd.isna(bad.will_churn) and pd.isna(bad.risk_band)
        assert bad.model == MODEL and bad.version > 0
    good = scored.drop(index=[customers.customer_id[5], customers.customer_id[17]])
    assert (good.error == "").all() and good.churn_probability.between(0, 1).all() and good.risk_band.notna().all()

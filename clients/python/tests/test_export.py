"""`churnserve export-predictions` read back with pyarrow: the hold-out customers scored
through a real server appear exactly once, with the probabilities, decisions and risk
bands the server answered, after exporting the same range twice and after a narrower then
a wider export; on the local disk (SQLite) and on the S3 server (PostgreSQL). Bad ranges
and an unwritable target fail with a clear message and write nothing."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.fs
import pytest

from churnserve_client import Client

from conftest import REPO, start_server
from replicas import Backing

MODEL = "telco-churn"
COLUMNS = ["prediction_id", "customer_id", "model", "version", "alias", "churn_probability", "will_churn",
           "risk_band", "scored_at"]
SINCE, UNTIL = "2020-01-01T00:00:00Z", "2100-01-01T00:00:00Z"


def binary() -> str:
    return os.environ.get("CHURNSERVE_BIN", str(REPO / "target/debug/churnserve"))


def export(*flags: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([binary(), "export-predictions", *flags], capture_output=True, text=True, env=env,
                          timeout=300)


def scored_hold_out(address: str, holdout: pd.DataFrame) -> pd.DataFrame:
    with Client(address) as client:
        first = client.score(holdout.drop(columns=["churn"]), model=MODEL, alias="production")
        # The first 100 customers again, through the alias as named: two predictions each.
        again = client.score(holdout.drop(columns=["churn"]).head(100), model=MODEL, version=1)
    return pd.concat([first, again], ignore_index=True)


def assert_each_prediction_once(table: pd.DataFrame, scored: pd.DataFrame) -> None:
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    assert table.prediction_id.is_unique
    assert len(table) == len(scored), f"{len(table)} rows exported of {len(scored)} predictions"
    assert str(table.scored_at.dtype) == "datetime64[ms, UTC]"
    exported = table.sort_values(["customer_id", "prediction_id"]).reset_index(drop=True)
    expected = scored.assign(order=range(len(scored))).sort_values(["customer_id", "order"]).reset_index(drop=True)
    assert (exported.customer_id == expected.customer_id).all()
    assert (exported.churn_probability - expected.churn_probability).abs().max() == 0
    assert (exported.will_churn == expected.will_churn).all()
    assert (exported.risk_band == expected.risk_band).all()
    assert (exported.model == MODEL).all() and (exported.version == expected.version).all()
    folders = {f"date={d}" for d in table.scored_at.dt.strftime("%Y-%m-%d")}
    assert folders == {f"date={d}" for d in table.date}


def read_local(directory: pathlib.Path) -> pd.DataFrame:
    return ds.dataset(directory, format="parquet", partitioning="hive").to_table().to_pandas()


def test_local_exports_replace_each_other(tmp_path, holdout):
    data = tmp_path / "data"
    process, server = start_server(data)
    try:
        scored = scored_hold_out(server.address, holdout)
    finally:
        process.terminate()  # SIGTERM: the prediction log is written before exit
        process.wait(timeout=60)
    out = tmp_path / "lake"
    for _ in range(2):
        done = export("--data-dir", str(data), "--since", SINCE, "--until", UNTIL, "--to", str(out))
        assert done.returncode == 0, done.stderr
    assert "replaced" in done.stdout
    assert_each_prediction_once(read_local(out), scored)

    # A narrower range, then a wider one over it: still each prediction once.
    narrow = tmp_path / "narrow"
    first = pd.Timestamp(read_local(out).scored_at.min())
    middle = (first + pd.Timedelta(milliseconds=1)).isoformat().replace("+00:00", "Z")
    for since, until in [(SINCE, middle), (SINCE, UNTIL), (middle, UNTIL)]:
        done = export("--data-dir", str(data), "--since", since, "--until", until, "--to", str(narrow))
        assert done.returncode == 0, done.stderr
    assert_each_prediction_once(read_local(narrow), scored)

    # Bad input: a clear error, and nothing written.
    backwards = export("--data-dir", str(data), "--since", UNTIL, "--until", SINCE, "--to", str(tmp_path / "x"))
    assert backwards.returncode != 0 and "--until" in backwards.stderr and "before --since" in backwards.stderr
    malformed = export("--data-dir", str(data), "--since", "yesterday", "--until", UNTIL, "--to", str(tmp_path / "x"))
    assert malformed.returncode != 0 and "RFC 3339" in malformed.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    unwritable = export("--data-dir", str(data), "--since", SINCE, "--until", UNTIL, "--to", str(blocker / "lake"))
    assert unwritable.returncode != 0 and str(blocker) in unwritable.stderr, unwritable.stderr
    assert blocker.read_text() == "not a directory"
    assert not (tmp_path / "x").exists()


def test_exports_to_s3_from_a_postgresql_registry(tmp_path, holdout):
    backing = Backing().start()
    try:
        replica = backing.replica("a")
        scored = scored_hold_out(replica.address, holdout)
        replica.stop()
        env = {**os.environ, **backing.s3_env}
        bucket = backing.s3_env["CHURNSERVE_TEST_S3_BUCKET"]
        for _ in range(2):
            done = export("--data-dir", str(tmp_path / "node"), "--registry-url", backing.registry_url,
                          "--since", SINCE, "--until", UNTIL, "--to", f"s3://{bucket}/lake/predictions", env=env)
            assert done.returncode == 0, done.stderr
        endpoint = backing.s3_env["AWS_ENDPOINT_URL"]
        s3 = pyarrow.fs.S3FileSystem(
            access_key=backing.s3_env["AWS_ACCESS_KEY_ID"], secret_key=backing.s3_env["AWS_SECRET_ACCESS_KEY"],
            endpoint_override=endpoint, scheme=endpoint.split("://")[0], region=backing.s3_env.get("AWS_REGION", "us-east-1"))
        # Listed, not looked up: the test server answers HEAD on a prefix with an error.
        base = f"{bucket}/lake/predictions"
        files = [f.path for f in s3.get_file_info(pyarrow.fs.FileSelector(base, recursive=True))
                 if f.type == pyarrow.fs.FileType.File]
        table = ds.dataset(files, filesystem=s3, format="parquet", partitioning="hive",
                           partition_base_dir=base).to_table().to_pandas()
        assert_each_prediction_once(table, scored)

        refused = export("--data-dir", str(tmp_path / "node"), "--registry-url", backing.registry_url,
                         "--since", SINCE, "--until", UNTIL, "--to", f"s3://{bucket}/elsewhere",
                         env={**env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"})
        assert refused.returncode != 0 and f"s3://{bucket}/elsewhere" in refused.stderr, refused.stderr
        left = s3.get_file_info(pyarrow.fs.FileSelector(f"{bucket}/elsewhere", allow_not_found=True, recursive=True))
        assert left == [], "nothing written"
    finally:
        backing.stop()

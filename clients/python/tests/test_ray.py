"""score_ray on a real Ray (from PyPI, a local cluster of two CPUs) through two real
churnserve replicas sharing a PostgreSQL registry and an S3 artifact store: 200,000
generated customers come back exactly once with the probabilities of `ScoreBatch`, the
version is pinned when score_ray is called, and bad rows come back with their error.
Retries on another replica are the code score_spark uses, tested there with a replica
killed mid-job."""

from __future__ import annotations

import time

import pytest

from churnserve_client import score_ray
from replicas import (
    BAD_ROWS_ALIAS,
    CUSTOMERS,
    MODEL,
    SCORE_COLUMNS,
    assert_bad_rows_answered,
    assert_every_customer_once_as_score_batch,
    bad_customers,
    production_moved,
    write_parquet,
)


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024 * 1024, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def test_200000_customers_through_two_replicas_equal_score_batch(ray_cluster, backing, customers, expected, production, tmp_path):
    source = write_parquet(customers, tmp_path / "customers", files=8)
    before = [replica.rows_scored(MODEL, production) for replica in backing.replicas]
    started = time.monotonic()
    scored = score_ray(ray_cluster.data.read_parquet(str(source)), [r.address for r in backing.replicas], model=MODEL)
    output = scored.to_pandas()
    took = time.monotonic() - started
    largest = assert_every_customer_once_as_score_batch(output, expected, production)
    assert list(output.columns) == list(customers.columns) + SCORE_COLUMNS
    spread = [replica.rows_scored(MODEL, production) - b for replica, b in zip(backing.replicas, before)]
    assert sum(spread) == CUSTOMERS and min(spread) >= CUSTOMERS / 4, spread
    print(f"\n{CUSTOMERS} customers in {took:.1f} s ({CUSTOMERS / took:,.0f} rows/s), replicas scored {spread}, "
          f"largest difference from ScoreBatch {largest:g}")


def test_the_version_is_pinned_when_score_ray_is_called(ray_cluster, backing, customers, expected, production):
    addresses = [r.address for r in backing.replicas]
    some = customers.head(20_000)
    scored = score_ray(ray_cluster.data.from_pandas(some), addresses, model=MODEL, alias="production")
    with production_moved(addresses, production):
        # Ray runs the job only now, after the move.
        output = scored.to_pandas()
    assert_every_customer_once_as_score_batch(output, expected.loc[some.customer_id], production)


def test_bad_rows_come_back_with_their_error_and_an_empty_dataset_with_the_columns(ray_cluster, backing, holdout):
    addresses = [r.address for r in backing.replicas]
    some = bad_customers(holdout)
    scored = score_ray(ray_cluster.data.from_pandas(some), addresses, model=MODEL, alias=BAD_ROWS_ALIAS)
    assert_bad_rows_answered(scored.to_pandas(), some)

    nobody = score_ray(ray_cluster.data.from_pandas(some.head(0)), addresses, model=MODEL)
    assert nobody.count() == 0

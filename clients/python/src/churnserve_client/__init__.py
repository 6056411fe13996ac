"""Python client for churnserve: score pandas DataFrames and Arrow batches, stream bulk
scoring with bounded memory, and register, alias, evaluate and explain models.

    from churnserve_client import Client
    with Client("localhost:50051") as client:
        scores = client.score(customers_df)

    from churnserve_client import score_spark
    scored = score_spark(spark_df, ["replica-a:50051", "replica-b:50051"], model="telco-churn")
"""

from churnserve_client._client import ChurnserveError, Client, Customers, model_ref
from churnserve_client._distributed import score_ray, score_spark

__all__ = ["ChurnserveError", "Client", "Customers", "model_ref", "score_ray", "score_spark"]

"""Python client for churnserve: score pandas DataFrames and Arrow batches, stream bulk
scoring with bounded memory, and register, alias, evaluate and explain models.

    from churnserve_client import Client
    with Client("localhost:50051") as client:
        scores = client.score(customers_df)
"""

from churnserve_client._client import ChurnserveError, Client, Customers, model_ref

__all__ = ["ChurnserveError", "Client", "Customers", "model_ref"]

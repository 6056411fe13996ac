"""A real churnserve process per fixture: the binary the test command built
(`CHURNSERVE_BIN`, default target/debug/churnserve), an ephemeral gRPC and HTTP port, a
temporary registry seeded with the bundled Telco models, stopped at the end."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
# Replicas on a shared PostgreSQL registry and S3 store, for the Spark and Ray modules.
pytest_plugins = ["replicas"]


@dataclass
class Server:
    address: str
    http_address: str
    log: pathlib.Path


def start_server(
    data_dir: pathlib.Path, *flags: str, env: dict[str, str] | None = None, binary: str | None = None
) -> tuple[subprocess.Popen, Server]:
    binary = binary or os.environ.get("CHURNSERVE_BIN", str(REPO / "target/debug/churnserve"))
    log = data_dir.parent / f"{data_dir.name}.log"
    process = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", str(data_dir), *flags],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text()
        grpc = re.search(r"listening on ([0-9.]+:[0-9]+)", text)
        http = re.search(r"on http://([0-9.]+:[0-9]+)", text)
        if grpc and http:
            return process, Server(grpc.group(1), http.group(1), log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"churnserve did not start:\n{log.read_text()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    process, running = start_server(tmp_path_factory.mktemp("plain") / "data")
    yield running
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="session")
def holdout():
    import pandas as pd

    return pd.read_csv(REPO / "models/data/test.csv").rename(columns={"customerid": "customer_id"})


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, by openssl."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
            "-days", "2", "-subj", "/CN=churnserve test CA")
    for leaf, extension in [("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")]:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / f"{leaf}.key"),
                "-out", str(folder / f"{leaf}.csr"), "-subj", f"/CN=churnserve test {leaf}")
        (folder / f"{leaf}.ext").write_text(extension + "\n")
        openssl("x509", "-req", "-in", str(folder / f"{leaf}.csr"), "-CA", str(ca), "-CAkey", str(ca_key),
                "-CAcreateserial", "-days", "2", "-out", str(folder / f"{leaf}.pem"), "-extfile", str(folder / f"{leaf}.ext"))
    return folder

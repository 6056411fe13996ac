"""The HTTP port of a running churnserve, read by the official Prometheus Python client's
strict OpenMetrics parser: every scrape parses, hostile gRPC method paths sent by grpcio
(quotes, backslashes, newlines, thousands of invented names) add no series, and the
standard gRPC and process families are there.

Run: python tests/clients/metrics_check.py GRPC_HOST:PORT HTTP_HOST:PORT
(scripts/test.sh starts a server)
"""

import sys
import urllib.request

import grpc
from prometheus_client.openmetrics.parser import text_string_to_metric_families

INVENTED = 2_000
HOSTILE = ['/a"b/c', "/a\\b/c", "/a\nb/c", '/x"}\n# EOF\n/y', "/churn.v1.ScoringService/Nope"]


def scrape(http_address):
    with urllib.request.urlopen(f"http://{http_address}/metrics", timeout=10) as response:
        content_type = response.headers["Content-Type"]
        assert content_type.startswith("application/openmetrics-text"), content_type
        text = response.read().decode()
    families = list(text_string_to_metric_families(text))
    series = {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in families
        for sample in family.samples
    }
    return text, {family.name for family in families}, series


def call(channel, path):
    method = channel.unary_unary(path)
    try:
        method(b"", timeout=10)
    except grpc.RpcError as error:
        return error.code()
    except Exception as error:  # grpcio refuses some paths before sending them
        return type(error).__name__
    raise AssertionError(f"{path!r} answered OK")


def main(grpc_address, http_address):
    with grpc.insecure_channel(grpc_address) as channel:
        call(channel, "/warm.Up/Call")
        before_text, _, before = scrape(http_address)
        outcomes = {}
        for index in range(INVENTED):
            path = HOSTILE[index % len(HOSTILE)] if index % 4 == 0 else f"/r{index}.S/M{index}"
            outcome = call(channel, path)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    after_text, names, after = scrape(http_address)
    added = after - before
    assert not added, f"new series: {sorted(added)[:10]}"
    growth = len(after_text) / len(before_text)
    assert 0.9 <= growth <= 1.1, (len(before_text), len(after_text))
    for family in (
        "grpc_server_started",
        "grpc_server_handled",
        "grpc_server_handling_seconds",
        "process_resident_memory_bytes",
        "process_cpu_seconds",
        "process_open_fds",
        "churnserve_build",
    ):
        assert family in names, f"{family} missing from {sorted(names)}"
    print(
        f"metrics: {len(after)} series parsed by prometheus_client's OpenMetrics parser "
        f"before and after {INVENTED} hostile or invented method calls ({outcomes}); "
        f"{len(before_text)} -> {len(after_text)} bytes"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

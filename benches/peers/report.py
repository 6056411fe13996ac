"""The report of benches/compare.sh, in Markdown, from the runs it recorded in WORK_DIR.

Usage: report.py WORK_DIR ROUNDS RUN_SECONDS
"""

import os
import pathlib
import platform
import statistics
import sys

work, rounds, run_seconds = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
LABELS = {
    "churnserve": "churnserve `Score`",
    "churnserve-unbatched": "churnserve `Score`, `--no-micro-batching`",
    "bare-tonic-engine": "floor: bare tonic + engine",
    "tonic-echo": "floor: tonic empty round trip",
    "grpcio": "Python grpcio + onnxruntime",
    "mlserver-onnx": "MLServer 1.7.1 + onnxruntime runtime",
    "mlserver-sklearn": "MLServer 1.7.1 scikit-learn runtime",
}
PEERS = ("grpcio", "mlserver-onnx", "mlserver-sklearn")


def rows(name):
    return [line.split("\t") for line in (work / name).read_text().splitlines()]


runs = {}  # (concurrency, round, server) -> (rate, per_cpu_second, p50, p99)
for concurrency, round_, server, *numbers in rows("runs.tsv"):
    runs[int(concurrency), int(round_), server] = tuple(float(n) for n in numbers)
servers = list(dict.fromkeys(server for _, _, server in runs))
concurrencies = sorted({c for c, _, _ in runs})
round_numbers = sorted({r for _, r, _ in runs})


def median(server, concurrency, field):
    return statistics.median(runs[concurrency, r, server][field] for r in round_numbers)


def ratio(server, concurrency, field, to="churnserve"):
    """Median over rounds of server ÷ `to`, each round against its own neighbour."""
    return statistics.median(runs[concurrency, r, server][field] / runs[concurrency, r, to][field]
                             for r in round_numbers)


cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
            if line.startswith("model name")), "unknown CPU")
print(f"# Single-customer scoring on one core ({platform.node()}, {os.cpu_count()} cores, {cpu})\n")
print(f"Every server serves the bundled logistic regression (version 1) pinned to CPU 0; h2load "
      f"and the closed-loop HDR client run on CPU 1 for {run_seconds} s per measurement; "
      f"{rounds} interleaved rounds; medians over rounds. Ratios are the median of per-round "
      f"ratios to churnserve `Score` (micro-batching on, the default).\n")


def table(title, cell):
    print(f"## {title}\n")
    print("| server | " + " | ".join(f"c = {c}" for c in concurrencies) + " |")
    print("|---|" + "---|" * len(concurrencies))
    for server in servers:
        print(f"| {LABELS.get(server, server)} | " + " | ".join(cell(server, c) for c in concurrencies) + " |")
    print()


table("Requests per second (÷ churnserve)",
      lambda s, c: f"{median(s, c, 0):,.0f} ({ratio(s, c, 0):.2f})")
table("Latency p50 / p99, closed loop",
      lambda s, c: f"{median(s, c, 2):,.0f} / {median(s, c, 3):,.0f} µs")
table("Requests per server CPU-second (÷ churnserve)",
      lambda s, c: f"{median(s, c, 1):,.0f} ({ratio(s, c, 1):.2f})")

in_process = [dict(field.split("=") for field in line.split()) for line in
              (work / "inprocess.txt").read_text().splitlines()]
one_row_us = statistics.median(float(run["one_row_p50_us"]) for run in in_process)
engine_rows = statistics.median(float(run["batch_rows_per_s"]) for run in in_process)
batch_rows = int(in_process[0]["batch_rows"])
print(f"## `ScoreBatch`, {batch_rows:,} customers as columns\n")
print("| concurrency | rows/s | p50 | ÷ in-process engine on the same rows |")
print("|---|---|---|---|")
batches = rows("batches.tsv")
for concurrency in sorted({int(b[0]) for b in batches}):
    mine = [b for b in batches if int(b[0]) == concurrency]
    rate = statistics.median(float(b[2]) for b in mine) * batch_rows
    p50 = statistics.median(float(b[4]) for b in mine)
    print(f"| {concurrency} | {rate:,.0f} | {p50 / 1000:.2f} ms | {rate / engine_rows:.2f} |")
print(f"\nIn-process engine: {engine_rows:,.0f} rows/s on {batch_rows:,}-row batches, "
      f"one-row call p50 {one_row_us:.1f} µs.\n")

print("## Targets\n")
saturated = {s: max(median(s, c, 0) for c in concurrencies) for s in servers}
for peer, target in zip(PEERS, (8, 15, 15)):
    if peer in saturated:
        print(f"- saturated throughput, churnserve ÷ {LABELS[peer]}: "
              f"{saturated['churnserve'] / saturated[peer]:.1f}× (target ≥ {target}×)")
for peer in PEERS:
    if peer in servers:
        print(f"- p99 at concurrency 16: churnserve {median('churnserve', 16, 3):,.0f} µs, "
              f"{LABELS[peer]} {median(peer, 16, 3):,.0f} µs (target: lower)")
floor = median("tonic-echo", 1, 2) + one_row_us
print(f"- serial `Score` p50 ÷ (tonic empty round trip p50 + in-process one-row p50): "
      f"{median('churnserve', 1, 2):,.0f} ÷ ({median('tonic-echo', 1, 2):,.0f} + {one_row_us:.0f}) = "
      f"{median('churnserve', 1, 2) / floor:.2f} (target ≤ 1.3); bare tonic + engine: "
      f"{median('bare-tonic-engine', 1, 2) / floor:.2f}")
print("- server CPU per request, churnserve ÷ bare tonic + engine: " + ", ".join(
    f"c = {c}: {1 / ratio('churnserve', c, 1, to='bare-tonic-engine'):.2f}" for c in concurrencies)
    + " (target ≤ 2)")

"""Where a profile's time goes: folded stacks (inferno-collapse-perf output, as
benches/floor.sh writes) attributed to the parts of a `Score` call. Each sample goes to the
part of its innermost frame that belongs to one (so a layer wrapping the whole call only
gets its own work), samples of the SQLite worker threads to the prediction log's writes and
the fold's queries, samples under the background fold's task to the fold.

    python3 benches/flame_summary.py STACKS.folded [MICROSECONDS_PER_CALL]

With the mean serial latency it also prints each part's share in microseconds per call
(a serial client keeps the server's one core busy only part of the time: the idle share
is the client's and the network's).
"""

import re
import sys

# (part, pattern matched against a frame).
PARTS = [
    ("ONNX Runtime (the session run)", r"libonnxruntime|onnxruntime::|OrtApis"),
    ("engine: validate, encode, read out", r"churn_engine::"),
    ("prediction log: hand-off", r"prediction_log|PredictionLog"),
    ("metrics", r"observe::metrics|prometheus_client"),
    ("drift window", r"observe::drift"),
    ("request id, span, tracing", r"request_id|tracing_subscriber|tracing_core|tracing::|uuid::"),
    ("access and admission", r"api::access|api::admission"),
    ("catalog lookup", r"serving::catalog|serving::served"),
    ("micro-batcher", r"serving::batching"),
    ("scoring path (churnserve)", r"churnserve::"),
    ("protobuf decode and encode", r"prost::|tonic_prost"),
    ("gRPC and HTTP/2 (tonic, h2, hyper)", r"tonic::|h2::|hyper::|hyper_util::|tower::"),
    ("tokio scheduler, timers, I/O driver", r"tokio::|mio::"),
    ("allocator", r"^mi_|^_mi_|malloc|^free|^cfree"),
    ("memcpy and friends", r"^__mem|^mem"),
    ("kernel: network, wake-ups, page faults", r"_\[k\]$"),
]
SQLITE_THREAD = "sqlx-sqlite-wor"
FOLD_TASK = "fold_continually"


def main() -> None:
    folded, per_call = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else None
    totals: dict[str, int] = {}
    total = 0
    compiled = [(name, re.compile(pattern)) for name, pattern in PARTS]
    for line in open(folded, encoding="utf-8"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        samples = int(count)
        total += samples
        frames = stack.split(";")
        if frames[0].startswith(SQLITE_THREAD):
            part = "SQLite: log writes, fold queries (own thread)"
        elif any(FOLD_TASK in frame for frame in frames):
            part = "realized-performance fold (background)"
        else:
            part = next(
                (
                    name
                    for frame in reversed(frames)
                    for name, pattern in compiled
                    if pattern.search(frame)
                ),
                "kernel and other",
            )
        totals[part] = totals.get(part, 0) + samples
    print(f"{total} samples")
    for part, samples in sorted(totals.items(), key=lambda item: -item[1]):
        share = samples / total
        line = f"  {part:38} {100 * share:5.1f}%"
        if per_call is not None:
            line += f"  {share * per_call:6.1f} µs of a {per_call:.0f} µs call"
        print(line)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Score throughput of churnserve against a plain Python grpcio + onnxruntime server
# (benches/peers/grpcio_server.py) on the same model, the same request, the same loopback
# and the same load generator (h2load), in interleaved rounds: each server pinned to CPU 0,
# h2load to CPU 1. Prints requests/s, mean latency and requests per server CPU-second at
# each concurrency, the median over rounds of the per-round ratio peer ÷ churnserve,
# latency percentiles from a closed-loop Rust client with an HDR histogram
# (tests/benches/closed_loop.rs, also on CPU 1), and writes the table to benches/results/.
#
#   benches/compare.sh                      ROUNDS=5 REQUESTS=10000 by default
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rounds="${ROUNDS:-5}"
requests="${REQUESTS:-10000}"
concurrencies=(1 4 16 64)

command -v h2load >/dev/null || { apt-get update && apt-get install -y nghttp2-client; }
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed"; exit 1; }
scripts/build-release.sh
closed_loop="$(cargo bench --locked -p tests --bench closed_loop --no-run 2>&1 |
    grep -o 'target/release/deps/closed_loop-[0-9a-f]*' | head -n 1)"
[[ -x "$closed_loop" ]] || { echo "cannot build the closed-loop client"; exit 1; }
if [[ ! -x .venv-peers/bin/python ]]; then
    python3 -m venv .venv-peers
fi
.venv-peers/bin/python -m pip install --quiet --disable-pip-version-check -r benches/peers/requirements.txt
python=.venv-peers/bin/python

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

"$python" -m grpc_tools.protoc -Iproto --python_out="$work" --grpc_python_out="$work" \
    proto/churn/v1/common.proto proto/churn/v1/scoring.proto
"$python" benches/peers/request.py "$work" body "$work/body.bin"

# Starts a server pinned to CPU 0 and waits for its `listening on` line; sets
# started_pid and started_address.
start() {
    local log="$work/$1.log"
    shift
    taskset -c 0 "$@" >"$log" 2>&1 &
    started_pid=$!
    pids+=("$started_pid")
    for _ in $(seq 1 300); do
        started_address="$(grep -o 'listening on [0-9.:]*' "$log" | awk '{print $3}' || true)"
        [[ -n "$started_address" ]] && return
        sleep 0.1
    done
    cat "$log"
    echo "$1 did not start" >&2
    exit 1
}

start churnserve target/release/churnserve serve \
    --listen 127.0.0.1:0 --metrics-listen off --data-dir "$work/registry"
churn_pid=$started_pid churn_address=$started_address
start grpcio "$python" benches/peers/grpcio_server.py 0 models/telco-logreg.onnx "$work"
peer_pid=$started_pid peer_address=$started_address
# h2load counts HTTP 200s only: check each peer once with a real gRPC client.
echo "churnserve answers $("$python" benches/peers/request.py "$work" check "$churn_address")," \
    "the grpcio peer $("$python" benches/peers/request.py "$work" check "$peer_address")"

cpu_seconds() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }

results="$work/runs.tsv"
for concurrency in "${concurrencies[@]}"; do
    for round in $(seq 1 "$rounds"); do
        for peer in churnserve grpcio; do
            if [[ "$peer" == churnserve ]]; then pid=$churn_pid address=$churn_address
            else pid=$peer_pid address=$peer_address; fi
            before="$(cpu_seconds "$pid")"
            out="$(taskset -c 1 h2load -n "$requests" -c "$concurrency" -m 1 -d "$work/body.bin" \
                -H 'content-type: application/grpc' -H 'te: trailers' \
                "http://$address/churn.v1.ScoringService/Score")"
            after="$(cpu_seconds "$pid")"
            rate="$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' <<<"$out")"
            succeeded="$(awk '/^requests:/ { print $8 }' <<<"$out")"
            mean="$(awk '/^time for request:/ { print $6 }' <<<"$out")"
            [[ "$succeeded" == "$requests" ]] || { echo "$out"; echo "$peer failed requests"; exit 1; }
            latency="$(taskset -c 1 "$closed_loop" "$address" "$work/body.bin" "$concurrency" "$requests")"
            p50="$(grep -o 'p50_us=[0-9.]*' <<<"$latency" | cut -d= -f2)"
            p99="$(grep -o 'p99_us=[0-9.]*' <<<"$latency" | cut -d= -f2)"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$concurrency" "$round" "$peer" "$rate" "$mean" \
                "$(awk -v n="$requests" -v a="$after" -v b="$before" 'BEGIN { print (a > b) ? n / (a - b) : 0 }')" \
                "$p50" "$p99" >>"$results"
        done
    done
done

mkdir -p benches/results
report="benches/results/compare-$(date -u +%Y%m%d-%H%M%S).md"
"$python" - "$results" "$rounds" "$requests" >"$report" <<'PY'
import statistics, sys, platform, os
runs = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"# Score: churnserve vs Python grpcio + onnxruntime ({platform.node()}, {os.cpu_count()} cores, {cpu})\n")
print(f"h2load for requests/s, the closed-loop HDR client for p50 / p99, {sys.argv[3]} requests a run each, {sys.argv[2]} interleaved rounds, servers on CPU 0, clients on CPU 1; medians over rounds.\n")
print("| concurrency | churnserve req/s | grpcio req/s | grpcio ÷ churnserve | churnserve p50 / p99 | grpcio p50 / p99 | churnserve req per CPU-s | grpcio req per CPU-s |")
print("|---|---|---|---|---|---|---|---|")
for c in sorted({int(r[0]) for r in runs}):
    rows = [r for r in runs if int(r[0]) == c]
    by = lambda peer, i: [r[i] for r in rows if r[2] == peer]
    rate = {p: [float(v) for v in by(p, 3)] for p in ("churnserve", "grpcio")}
    ratios = [g / s for s, g in zip(rate["churnserve"], rate["grpcio"])]
    med = lambda xs: statistics.median(float(x) for x in xs)
    tail = lambda p: f"{med(by(p, 6)):.0f} / {med(by(p, 7)):.0f} µs"
    print(f"| {c} | {med(rate['churnserve']):.0f} | {med(rate['grpcio']):.0f} | {statistics.median(ratios):.3f} "
          f"| {tail('churnserve')} | {tail('grpcio')} | {med(by('churnserve', 5)):.0f} | {med(by('grpcio', 5)):.0f} |")
PY
cat "$report"
echo "written to $report"

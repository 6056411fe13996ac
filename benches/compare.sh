#!/usr/bin/env bash
# Single-customer scoring on one core: churnserve against the servers a user would otherwise
# deploy and against the floors, all serving the bundled logistic regression (version 1) on
# the same loopback, driven by the same load generators in the same run:
#
#   churnserve                  `Score`, micro-batching on (the default)
#   churnserve, no batching     `Score` with --no-micro-batching
#   bare tonic + engine         floor: tonic and one engine call, nothing else (tests/benches/floor.rs)
#   tonic echo                  floor: an empty `ScoreResponse` (the transport alone)
#   grpcio + onnxruntime        the same `Score` in plain Python (benches/peers/grpcio_server.py)
#   MLServer + onnxruntime      Seldon MLServer, V2 `ModelInfer`, custom runtime (peers/onnx_runtime.py)
#   MLServer scikit-learn       Seldon MLServer, V2 `ModelInfer`, its scikit-learn runtime on the pipeline
#
# Every server is pinned to CPU 0 and the load generators to CPU 1. Each server's answer is
# checked once with a real gRPC client (h2load counts HTTP 200s only). For each concurrency
# (1, 4, 16, 64) and round, the servers take turns: h2load for RUN_SECONDS gives requests/s
# and, from /proc, requests per server CPU-second; the closed-loop Rust client with an HDR
# histogram (tests/benches/closed_loop.rs) gives p50/p99 for RUN_SECONDS. The report gives
# medians over rounds and the median per-round ratio to churnserve, `ScoreBatch` of 1,000
# customers as columns against the in-process engine on the same rows, and the issue's
# targets, and is written to benches/results/ with the machine.
#
#   benches/compare.sh                ROUNDS=5 RUN_SECONDS=2 by default (about 15 minutes)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rounds="${ROUNDS:-5}"
run_seconds="${RUN_SECONDS:-2}"
concurrencies=(1 4 16 64)

command -v taskset >/dev/null || { echo "taskset (util-linux) is needed"; exit 1; }
scripts/build-release.sh
# The closed-loop client, the floors, .venv-peers ($python), $work and score.bin.
source benches/lib.sh
venv() {
    [[ -x "$1/bin/python" ]] || python3 -m venv "$1"
    "$1/bin/python" -m pip install --quiet --disable-pip-version-check -r "$2"
}
venv .venv models/requirements.txt
venv .venv-mlserver benches/peers/mlserver-requirements.txt

for kind in score infer batch; do
    "$python" benches/peers/request.py "$work" body "$kind" "$work/$kind.bin"
done
free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# One line per server: name, pid, address, request kind (score or infer).
servers="$work/servers.tsv"
# Starts a server pinned to CPU 0 (logging to $work/NAME.log) and waits until it answers.
start() {
    local name="$1" kind="$2" address="$3"
    shift 3
    (cd "${start_in:-$root}" && exec taskset -c 0 "$@") >"$work/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 600); do
        if [[ -z "$address" ]]; then
            address="$(grep -o 'listening on [0-9.:]*' "$work/$name.log" | awk '{print $3}' || true)"
        fi
        if [[ -n "$address" ]] && "$python" benches/peers/request.py "$work" check "$kind" "$address" \
            >"$work/$name.answer" 2>/dev/null; then
            printf '%s\t%s\t%s\t%s\n' "$name" "$pid" "$address" "$kind" >>"$servers"
            return
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    cat "$work/$name.log"
    echo "$name did not start" >&2
    exit 1
}
model=models/telco-logreg.onnx
start churnserve score "" target/release/churnserve serve --listen 127.0.0.1:0 \
    --http-listen off --data-dir "$work/registry"
start churnserve-unbatched score "" target/release/churnserve serve --listen 127.0.0.1:0 \
    --http-listen off --data-dir "$work/registry-unbatched" --no-micro-batching
start bare-tonic-engine score "" "$floor" serve "$model"
start tonic-echo score "" "$floor" echo
start grpcio score "" "$python" benches/peers/grpcio_server.py 0 "$model" "$work"
for runtime in onnx sklearn; do
    directory="$work/mlserver-$runtime"
    grpc_port="$(free_port)"
    .venv/bin/python benches/peers/mlserver_model.py "$runtime" "$directory" "$grpc_port" "$(free_port)"
    start_in="$directory" start "mlserver-$runtime" infer "127.0.0.1:$grpc_port" \
        "$root/.venv-mlserver/bin/mlserver" start .
done
echo "answers (churn probability of the same customer):"
while IFS=$'\t' read -r name _ _ _; do printf '  %-22s %s\n' "$name" "$(cat "$work/$name.answer")"; done <"$servers"
"$python" - "$work" <<'PY'
import sys, pathlib
work = pathlib.Path(sys.argv[1])
names = [line.split("\t")[0] for line in (work / "servers.tsv").read_text().splitlines()]
answers = {n: (work / f"{n}.answer").read_text().strip() for n in names if n != "tonic-echo"}
if len(set(answers.values())) != 1:
    sys.exit(f"the servers disagree: {answers}")
PY

cpu_seconds() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }
path_of() {
    if [[ "$1" == score ]]; then echo /churn.v1.ScoringService/Score
    else echo /inference.GRPCInferenceService/ModelInfer; fi
}
# Prints requests/s and requests per server CPU-second of one h2load run.
throughput() {
    local pid="$1" address="$2" path="$3" body="$4" concurrency="$5"
    local before after out
    before="$(cpu_seconds "$pid")"
    out="$(taskset -c 1 h2load -D "$run_seconds" -c "$concurrency" -m 1 -d "$body" \
        -H 'content-type: application/grpc' -H 'te: trailers' "http://$address$path")"
    after="$(cpu_seconds "$pid")"
    awk -v a="$after" -v b="$before" '
        /^finished in/ { gsub(",", "", $4); rate = $4 }
        /^requests:/ { done = $8; bad = $10 + $12 + $14 }
        END {
            if (bad > 0 || done == 0) { print "failed requests: " $0 > "/dev/stderr"; exit 1 }
            printf "%s\t%s\n", rate, (a > b) ? done / (a - b) : 0
        }' <<<"$out"
}

runs="$work/runs.tsv"
for concurrency in "${concurrencies[@]}"; do
    for round in $(seq 1 "$rounds"); do
        while IFS=$'\t' read -r name pid address kind; do
            path="$(path_of "$kind")"
            rates="$(throughput "$pid" "$address" "$path" "$work/$kind.bin" "$concurrency")"
            latency="$(taskset -c 1 "$closed_loop" "$address" "$path" "$work/$kind.bin" \
                "$concurrency" "$run_seconds")"
            p50="$(grep -o 'p50_us=[0-9.]*' <<<"$latency" | cut -d= -f2)"
            p99="$(grep -o 'p99_us=[0-9.]*' <<<"$latency" | cut -d= -f2)"
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$concurrency" "$round" "$name" "$rates" "$p50" "$p99" >>"$runs"
        done <"$servers"
        echo "concurrency $concurrency, round $round done"
    done
done

# ScoreBatch: 1,000 customers as columns, against the engine alone on the same rows.
churn_line="$(head -n 1 "$servers")"
churn_pid="$(cut -f2 <<<"$churn_line")" churn_address="$(cut -f3 <<<"$churn_line")"
batches="$work/batches.tsv"
for round in $(seq 1 "$rounds"); do
    for concurrency in 1 4; do
        rates="$(throughput "$churn_pid" "$churn_address" /churn.v1.ScoringService/ScoreBatch \
            "$work/batch.bin" "$concurrency")"
        latency="$(taskset -c 1 "$closed_loop" "$churn_address" /churn.v1.ScoringService/ScoreBatch \
            "$work/batch.bin" "$concurrency" "$run_seconds")"
        printf '%s\t%s\t%s\t%s\n' "$concurrency" "$round" "$rates" \
            "$(grep -o 'p50_us=[0-9.]*' <<<"$latency" | cut -d= -f2)" >>"$batches"
    done
    taskset -c 0 "$floor" inprocess "$model" "$work/score.bin" "$work/batch.bin" >>"$work/inprocess.txt"
done

mkdir -p benches/results
report="benches/results/compare-$(date -u +%Y%m%d-%H%M%S).md"
"$python" benches/peers/report.py "$work" "$rounds" "$run_seconds" >"$report"
cat "$report"
echo "written to $report"

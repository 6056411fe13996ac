#!/usr/bin/env bash
# Two churnserve binaries side by side, for a change that must not cost speed: `Score` of
# the first hold-out customer by the bundled logistic regression, serial (the closed-loop
# client of tests/benches/closed_loop.rs: mean, p50, p99) and at 16 concurrent calls (h2load:
# requests/s), in interleaved rounds so that both see the same machine. Each server is
# pinned to CPU 0 and the load generators to CPU 1. Prints each round, then the medians and
# the ratios NEW ÷ BASELINE.
#
#   benches/versus.sh BASELINE_BINARY [NEW_BINARY]     NEW defaults to target/release/churnserve
#   ROUNDS=5 RUN_SECONDS=4 by default (about 3 minutes)
#
# A baseline of an earlier commit:
#   git worktree add /tmp/baseline COMMIT && (cd /tmp/baseline && scripts/build-release.sh)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
baseline="${1:?usage: benches/versus.sh BASELINE_BINARY [NEW_BINARY]}"
new="${2:-target/release/churnserve}"
rounds="${ROUNDS:-5}"
run_seconds="${RUN_SECONDS:-4}"

command -v h2load >/dev/null || { apt-get update && apt-get install -y nghttp2-client; }
[[ -x "$new" ]] || scripts/build-release.sh
closed_loop="$(cargo bench --locked -p tests --bench closed_loop --no-run 2>&1 |
    grep -o 'target/release/deps/closed_loop-[0-9a-f]*' | head -n 1)"
[[ -x "$closed_loop" ]] || { echo "cannot build the closed-loop client"; exit 1; }
[[ -x .venv-peers/bin/python ]] || python3 -m venv .venv-peers
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
    proto/churn/v1/common.proto proto/churn/v1/scoring.proto proto/inference/grpc_predict_v2.proto
"$python" benches/peers/request.py "$work" body score "$work/score.bin"

# Starts BINARY pinned to CPU 0 with a registry of its own; prints its pid and address.
start() {
    local name="$1" binary="$2"
    taskset -c 0 "$binary" serve --listen 127.0.0.1:0 --http-listen off \
        --data-dir "$work/$name" >"$work/$name.log" 2>&1 &
    local pid=$! address=""
    for _ in $(seq 1 600); do
        address="$(grep -o 'listening on [0-9.:]*' "$work/$name.log" | awk '{print $3}' || true)"
        [[ -n "$address" ]] && break
        sleep 0.1
    done
    [[ -n "$address" ]] || { cat "$work/$name.log"; exit 1; }
    echo "$pid $address"
}
read -r baseline_pid baseline_address < <(start baseline "$baseline")
read -r new_pid new_address < <(start new "$new")
pids+=("$baseline_pid" "$new_pid")
for address in "$baseline_address" "$new_address"; do
    "$python" benches/peers/request.py "$work" check score "$address" >/dev/null
done

path=/churn.v1.ScoringService/Score
runs="$work/runs.tsv"
for round in $(seq 1 "$rounds"); do
    for name in baseline new; do
        address="$baseline_address"
        [[ "$name" == new ]] && address="$new_address"
        latency="$(taskset -c 1 "$closed_loop" "$address" "$path" "$work/score.bin" 1 "$run_seconds")"
        rate="$(taskset -c 1 h2load -D "$run_seconds" -c 16 -m 1 -d "$work/score.bin" \
            -H 'content-type: application/grpc' -H 'te: trailers' "http://$address$path" |
            awk '/^finished in/ { gsub(",", "", $4); print $4 }')"
        field() { grep -o "$1=[0-9.]*" <<<"$latency" | cut -d= -f2; }
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$(field mean_us)" "$(field p50_us)" \
            "$(field p99_us)" "$rate" | tee -a "$runs"
    done
done

"$python" - "$runs" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
fields = ["serial mean µs", "serial p50 µs", "serial p99 µs", "16 concurrent requests/s"]
medians = {name: [statistics.median(float(r[2 + i]) for r in rows if r[1] == name)
                  for i in range(len(fields))] for name in ("baseline", "new")}
print(f"\n{'':26}{'baseline':>12}{'new':>12}{'new ÷ baseline':>16}")
for i, field in enumerate(fields):
    b, n = medians["baseline"][i], medians["new"][i]
    print(f"{field:26}{b:12,.1f}{n:12,.1f}{n / b:16.3f}")
PY

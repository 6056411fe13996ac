#!/usr/bin/env bash
# churnserve's `Score` against the floors of tests/benches/floor.rs, in interleaved rounds
# of one run: serial (one caller, one connection; closed-loop client: mean, p50, p99)
# against a bare tonic server that runs the same ONNX Runtime session and nothing else,
# and at 16 concurrent calls (h2load: requests/s) against a tonic echo server. All serve
# `Score` of the first hold-out customer by the bundled logistic regression; each server
# is pinned to CPU 0 and the load generators to CPU 1. Prints the rounds, the medians and
# the ratios (issue 30's goals: serial at most 1.1x the floor, 16 concurrent at least 0.9x
# the echo server).
#
#   benches/floor.sh [CHURNSERVE_BINARY]     ROUNDS=5 RUN_SECONDS=4 (about 3 minutes)
#   FLAME=FILE.svg benches/floor.sh          also flame graphs of churnserve's serial Score
#                                            (FILE) and of Score at 16 concurrent calls
#                                            (FILE-concurrent.svg; perf, 15 s each, DWARF
#                                            call graphs; inferno) and where their samples
#                                            go (benches/flame_summary.py), the second in
#                                            microseconds per request
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
churnserve="${1:-target/release/churnserve}"
rounds="${ROUNDS:-5}"
run_seconds="${RUN_SECONDS:-4}"
model=models/telco-logreg.onnx

[[ -x "$churnserve" ]] || scripts/build-release.sh
source benches/lib.sh
read -r churn_pid churn_address < <(start churnserve "$churnserve" serve --listen 127.0.0.1:0 \
    --http-listen off --data-dir "$work/registry")
pids+=("$churn_pid")
read -r engine_pid engine_address < <(start floor "$floor" serve "$model")
pids+=("$engine_pid")
read -r echo_pid echo_address < <(start echo "$floor" echo)
pids+=("$echo_pid")

runs="$work/runs.tsv"
for round in $(seq 1 "$rounds"); do
    for name in churnserve floor; do
        address="$churn_address"
        [[ "$name" == floor ]] && address="$engine_address"
        latency="$(serial "$address")"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$(field mean_us "$latency")" \
            "$(field p50_us "$latency")" "$(field p99_us "$latency")" "$(concurrent "$address")" |
            tee -a "$runs"
    done
    printf '%s\techo\t0\t0\t0\t%s\n' "$round" "$(concurrent "$echo_address")" | tee -a "$runs"
done

"$python" - "$runs" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
def median(name, column):
    return statistics.median(float(r[column]) for r in rows if r[1] == name)
print(f"\n{'':28}{'churnserve':>12}{'floor':>12}{'ratio':>8}  goal")
for label, column in (("serial mean µs", 2), ("serial p50 µs", 3), ("serial p99 µs", 4)):
    c, f = median("churnserve", column), median("floor", column)
    goal = "≤ 1.10" if column < 4 else ""
    print(f"{label:28}{c:12,.1f}{f:12,.1f}{c / f:8.3f}  {goal}")
c, e = median("churnserve", 5), median("echo", 5)
print(f"{'16 concurrent requests/s':28}{c:12,.0f}{e:12,.0f}{c / e:8.3f}  ≥ 0.90 (floor: tonic echo)")
c, f = c, median("floor", 5)
print(f"{'  against bare tonic + ORT':28}{c:12,.0f}{f:12,.0f}{c / f:8.3f}")
PY

if [[ -n "${FLAME:-}" ]]; then
    command -v perf >/dev/null || { apt-get update && apt-get install -y linux-perf; }
    command -v inferno-flamegraph >/dev/null || cargo install --locked inferno
    # Records churnserve for 15 s while LOAD runs on CPU 1, draws FILE and says where the
    # samples go.
    profile() {
        local file="$1" title="$2"
        shift 2
        "$@" >"$work/load.out" &
        local client=$!
        sleep 1
        perf record -q -F 2999 --call-graph dwarf,16384 -p "$churn_pid" -o "$work/perf.data" -- sleep 15
        wait "$client" || true
        perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf --all >"$work/stacks.folded"
        inferno-flamegraph --minwidth 0.5 --title "$title" <"$work/stacks.folded" >"$file"
        echo "flame graph: $file"
    }
    profile "$FLAME" "churnserve: serial Score" \
        taskset -c 1 "$closed_loop" "$churn_address" /churn.v1.ScoringService/Score "$work/score.bin" 1 20
    python3 benches/flame_summary.py "$work/stacks.folded"
    # At 16 concurrent calls churnserve's core is saturated, so a part's share of the
    # samples times the time per request (1 / requests per second) is its CPU per request.
    run_seconds=20
    profile "${FLAME%.svg}-concurrent.svg" "churnserve: Score at 16 concurrent calls" \
        concurrent "$churn_address"
    rate="$(cat "$work/load.out")"
    echo "at 16 concurrent calls while profiled: $rate requests/s"
    python3 benches/flame_summary.py "$work/stacks.folded" "$(python3 -c "print(1e6 / $rate)")"
fi

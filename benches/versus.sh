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

[[ -x "$new" ]] || scripts/build-release.sh
source benches/lib.sh
read -r baseline_pid baseline_address < <(start baseline "$baseline" serve --listen 127.0.0.1:0 \
    --http-listen off --data-dir "$work/baseline")
pids+=("$baseline_pid")
read -r new_pid new_address < <(start new "$new" serve --listen 127.0.0.1:0 --http-listen off \
    --data-dir "$work/new")
pids+=("$new_pid")

runs="$work/runs.tsv"
for round in $(seq 1 "$rounds"); do
    for name in baseline new; do
        address="$baseline_address"
        [[ "$name" == new ]] && address="$new_address"
        latency="$(serial "$address")"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$(field mean_us "$latency")" \
            "$(field p50_us "$latency")" "$(field p99_us "$latency")" "$(concurrent "$address")" |
            tee -a "$runs"
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

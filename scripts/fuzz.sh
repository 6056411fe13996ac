#!/usr/bin/env bash
# Runs the libFuzzer targets in fuzz/ (all, or those named after SECONDS) for SECONDS each
# (default 60; the test command uses 60, longer runs: scripts/fuzz.sh 1800), one per core
# at a time, starting from the committed seeds (fuzz/seeds, written by fuzz/make_seeds.py)
# and the corpus earlier runs grew (fuzz/corpus, not committed). A crash fails the script
# and leaves its input in fuzz/artifacts/TARGET/; turn it into a regression test before
# fixing it. Each run's executions and time are appended to fuzz/runs.log.
#
# Needs the nightly toolchain (cargo fuzz's instrumentation flags; installed with rustup if
# missing) and installs cargo-fuzz.
# The targets run without a sanitizer (-s none): the code under test has no `unsafe`, and
# ONNX Runtime, an uninstrumented C++ library, shares the process.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${1:-60}"
targets=(customer onnx_graph dataset_csv kserve_infer)
[[ $# -gt 1 ]] && targets=("${@:2}")

rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal ||
    { echo "scripts/fuzz.sh: the nightly Rust toolchain is needed and rustup could not install it" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
scripts/setup-onnxruntime.sh >/dev/null
cd fuzz
cargo +nightly fuzz build -s none
# Runs one target for $seconds; a crash prints the end of its log and fails.
run_target() {
    local target="$1" log seeds=() runs
    mkdir -p "corpus/$target"
    [[ -d "seeds/$target" ]] && seeds=("seeds/$target")
    log="$(mktemp)"
    if ! cargo +nightly fuzz run -s none "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "scripts/fuzz.sh: $target failed; its input is in fuzz/artifacts/$target/" >&2
        return 1
    fi
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)"
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $target ${seconds}s ${runs} executions, corpus $(ls "corpus/$target" | wc -l) inputs" |
        tee -a runs.log
    rm -f "$log"
}
# A target runs on one core for a fixed time: one per core at once (FUZZ_JOBS to change).
jobs="${FUZZ_JOBS:-$(nproc)}"
running=0
failed=0
for target in "${targets[@]}"; do
    run_target "$target" &
    running=$((running + 1))
    if [[ $running -ge $jobs ]]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
done
while [[ $running -gt 0 ]]; do
    wait -n || failed=1
    running=$((running - 1))
done
exit $failed

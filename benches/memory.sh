#!/usr/bin/env bash
# Resident memory of churnserve in a soak (tests/benches/memory.rs: 3 models x 3 versions,
# a model cache of 2, 6 callers, an alias move every 200 ms, a registration every 5 s),
# with the allocator it ships (mimalloc, serving ONNX Runtime's C++ heap too; with the
# image's MIMALLOC_PURGE_DELAY=10 and with mimalloc's own default) and with glibc's malloc,
# in alternate rounds of the same run: the peak resident set of each, the
# peak of each third of the run (growth), and Score calls per second.
#
#   benches/memory.sh            SECONDS_PER_RUN=180 ROUNDS=1 by default (about 15 minutes)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${SECONDS_PER_RUN:-180}"
rounds="${ROUNDS:-1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

scripts/setup-onnxruntime.sh >/dev/null
# The glibc build first, then the shipped one, so target/release keeps the shipped binary.
cargo build --release --locked -p churnserve --bin churnserve --no-default-features
cp target/release/churnserve "$work/churnserve-glibc"
cargo build --release --locked -p churnserve --bin churnserve
cp target/release/churnserve "$work/churnserve-mimalloc"
cp .onnxruntime/libonnxruntime.so.1.31.1 "$work/"
bench="$(cargo bench --locked -p tests --bench memory --no-run 2>&1 |
    grep -o 'target/release/deps/memory-[0-9a-f]*' | head -n 1)"
[[ -x "$bench" ]] || { echo "cannot build the memory bench"; exit 1; }

echo "memory soak: $seconds s per run, $rounds round(s), $(nproc) cores"
for ((round = 1; round <= rounds; round++)); do
    # mimalloc as the image and scripts/run.sh run it, with its own default purge delay
    # (1 s in v3), and glibc.
    MIMALLOC_PURGE_DELAY=10 "$bench" "$work/churnserve-mimalloc" "mimalloc, purge delay 10 ms (shipped)" "$seconds"
    MIMALLOC_PURGE_DELAY=1000 "$bench" "$work/churnserve-mimalloc" "mimalloc, purge delay 1 s (its default)" "$seconds"
    "$bench" "$work/churnserve-glibc" glibc "$seconds"
done

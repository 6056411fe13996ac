#!/usr/bin/env bash
# The soak (crates/churnserve/tests/soak.rs): a real churnserve process scored at
# concurrency 8 for SECONDS (default 600) while versions are registered, the production
# alias moves every 100 ms and version-number requests evict and reload sessions; fails on
# any failed Score call or a resident set that keeps growing, and prints the figures.
# PROFILE=release for release builds (the test command uses the debug build, 60 s).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup-onnxruntime.sh >/dev/null
# The debug build is the test command's one debug build, which has the otlp feature.
profile=(--features churnserve/otlp)
[[ "${PROFILE:-debug}" == release ]] && profile=(--release)
SOAK_SECONDS="${1:-600}" cargo test --locked "${profile[@]}" -p churnserve --test process -- \
    soak:: --ignored --nocapture 2>&1 | grep -E '^soak:|test result|panicked|assert|failed'
exit "${PIPESTATUS[0]}"

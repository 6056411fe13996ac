#!/usr/bin/env bash
# The one command that runs every check: formatting, lints, every Rust test (real ONNX
# Runtime, real server on ephemeral ports), and the regeneration of the bundled models
# and fixtures by models/train.py, compared with what is committed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

step "onnx runtime"
scripts/setup-onnxruntime.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --locked --workspace --lib --bins --tests 2>&1 | tee "$log"
totals="$(awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed", passed, failed }' "$log")"

step "models/train.py --check (python training environment in .venv)"
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r models/requirements.txt
.venv/bin/python models/train.py --check

step "summary"
echo "rust tests: $totals"

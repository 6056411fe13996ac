#!/usr/bin/env bash
# Builds what a deployment runs: ONNX Runtime from the pinned PyPI wheel into
# .onnxruntime/, then the release churnserve and churnctl. scripts/run.sh and the
# Dockerfile both call this, so the README's steps and the image's cannot drift apart.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup-onnxruntime.sh
cargo build --release --locked -p churnserve -p churnctl

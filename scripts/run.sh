#!/usr/bin/env bash
# The one command that sets everything up and starts churnserve on the bundled Telco
# churn models: fetches ONNX Runtime, builds the release binaries, serves.
# Extra arguments go to `churnserve serve` (e.g. --listen 0.0.0.0:50051 --data-dir /srv/churn).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build-release.sh
# As the container image sets it (see the Dockerfile): freed memory goes back within 10 ms.
export MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-10}"
exec target/release/churnserve serve --listen "${CHURNSERVE_LISTEN:-127.0.0.1:50051}" --data-dir "${CHURNSERVE_DATA_DIR:-$root/data}" "$@"

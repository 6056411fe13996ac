#!/usr/bin/env bash
# Issue 33's figures in one run: drift counting's cost on Score and ScoreBatch, DriftReport
# over a week of three replicas' minutes, the Parquet export of 10 million predictions
# (tests/benches/drift.rs), then the prediction log's cost and RealizedPerformance over 10
# million predictions and 1 million outcomes, from the sums against the full join, on SQLite
# and PostgreSQL (tests/benches/outcomes.rs). PostgreSQL is the one named by
# CHURNSERVE_TEST_POSTGRES_URL, or one started here with scripts/postgres.sh.
#
#   benches/monitoring.sh        about 45 minutes on 2 cores
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup-onnxruntime.sh >/dev/null
work="$(mktemp -d)"
cleanup() {
    [[ -f "$work/postgres/url" ]] && scripts/postgres.sh stop "$work/postgres" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
if [[ -z "${CHURNSERVE_TEST_POSTGRES_URL:-}" ]]; then
    # The cluster runs as the `postgres` user when we are root: it must enter the folder.
    chmod 755 "$work"
    CHURNSERVE_TEST_POSTGRES_URL="$(scripts/postgres.sh start "$work/postgres" | tail -n 1)"
    export CHURNSERVE_TEST_POSTGRES_URL
fi
cargo build --locked --release -p churnserve
cargo bench --locked -p tests --bench drift
cargo bench --locked -p tests --bench outcomes

#!/usr/bin/env bash
# The one command that runs every check: formatting, lints, every Rust test (real ONNX
# Runtime, real server on ephemeral ports), the regeneration of the bundled models and
# fixtures by models/train.py, compared with what is committed, and stock KServe V2
# clients (tritonclient, grpcurl) against a running server.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

# A one-off build from a clean clone gains nothing from incremental caches, which would be
# a third of target/ on CI's disk.
export CARGO_INCREMENTAL=0

step "onnx runtime"
scripts/setup-onnxruntime.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings

# Whatever ends the run, what it started is stopped and what it wrote is removed.
scratch="$(mktemp -d)"
chmod 755 "$scratch"  # the PostgreSQL cluster in it runs as its own user
cleanup() {
    [[ -n "${server_pid:-}" ]] && kill "$server_pid" 2>/dev/null
    [[ -f "$scratch/postgres/url" ]] && scripts/postgres.sh stop "$scratch/postgres" 2>/dev/null
    [[ -f "$scratch/s3/port" ]] && scripts/s3.sh stop "$scratch/s3"
    rm -rf "$scratch"
}
trap cleanup EXIT

# Starts `churnserve serve` on ephemeral ports with a fresh data directory named $1 in the
# scratch space; sets $address (gRPC) and $http_address.
start_server() {
    local server_log="$scratch/$1.log"
    target/debug/churnserve serve --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --data-dir "$scratch/$1" >"$server_log" 2>&1 &
    server_pid=$!
    address=""
    for _ in $(seq 1 300); do
        address="$(grep -o 'listening on [0-9.:]*' "$server_log" | awk '{print $3}' || true)"
        [[ -n "$address" ]] && break
        sleep 0.1
    done
    [[ -n "$address" ]] || { cat "$server_log"; echo "the server did not start"; exit 1; }
    http_address="$(grep -o 'on http://[0-9.:]*' "$server_log" | head -n 1 | sed 's|on http://||')"
}

stop_server() {
    kill "$server_pid"
    wait "$server_pid" || true
    server_pid=""
}

step "a throwaway PostgreSQL cluster for the registry's conformance suite and the replica tests (scripts/postgres.sh)"
CHURNSERVE_TEST_POSTGRES_URL="$(scripts/postgres.sh start "$scratch/postgres")"
export CHURNSERVE_TEST_POSTGRES_URL

step "a throwaway S3-compatible server for the artifact store (scripts/s3.sh; s3s-fs is built into .tools/ once)"
eval "$(scripts/s3.sh start "$scratch/s3")"

step "cargo test"
log="$scratch/test.log"
cargo test --locked --workspace --lib --bins --tests 2>&1 | tee "$log"

step "the otlp cargo feature: clippy, and spans exported to a real OTLP collector"
cargo clippy --locked -p churnserve --all-targets --features otlp -- -D warnings
cargo test --locked -p churnserve --features otlp --test otlp 2>&1 | tee -a "$log"
totals="$(awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed", passed, failed }' "$log")"

step "models/train.py --check (python training environment in .venv)"
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r models/requirements.txt
.venv/bin/python models/train.py --check

step "KServe V2 clients (tritonclient gRPC and HTTP, grpcurl) and the Prometheus parser against a running server (python clients in .venv-clients; the stubs of clients/python checked against proto/)"
if [[ ! -x .venv-clients/bin/python ]]; then
    python3 -m venv .venv-clients
fi
.venv-clients/bin/python -m pip install --quiet --disable-pip-version-check --no-cache-dir -r tests/clients/requirements.txt
.venv-clients/bin/python clients/python/generate_stubs.py --check
.venv-clients/bin/python -m pip install --quiet --disable-pip-version-check ./clients/python
start_server data
PATH="$root/.venv-clients/bin:$PATH" .venv-clients/bin/python tests/clients/kserve_check.py "$address" "$http_address"
.venv-clients/bin/python tests/clients/metrics_check.py "$address" "$http_address"
stop_server

step "the web console in headless Chromium (Debian's chromium, installed when missing; playwright-core from npm, pinned in tests/console): every page at 1280x800 and 390x844 against the API's numbers; screenshots in target/console-screenshots"
if ! command -v chromium >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/console && npm ci --no-audit --no-fund --loglevel=error)
start_server console
.venv-clients/bin/python tests/console/api_facts.py "$address" "$scratch/console-facts.json"
node tests/console/console.test.mjs "$http_address" "$scratch/console-facts.json" target/console-screenshots
stop_server

step "hadolint Dockerfile (Docker itself cannot run here; the image build shares scripts/build-release.sh)"
.venv-clients/bin/hadolint Dockerfile

step "soak: 60 s of scoring while the registry churns (scripts/soak.sh; longer: scripts/soak.sh 600)"
scripts/soak.sh 60

step "deploy/: yamllint, every overlay and the KServe files rendered by kubectl kustomize and validated (deploy/validate.py), each overlay's Deployment run as the kubelet would (tests/deploy/probe_check.py, release build)"
command -v kubectl >/dev/null || { echo "kubectl is needed to render deploy/ (kubectl kustomize)"; exit 1; }
.venv-clients/bin/yamllint --strict -c .yamllint.yaml deploy/
.venv-clients/bin/python deploy/validate.py
# Every debug build has run by now: its directory makes room for the release build, and
# for PySpark and Ray (for the Python client's step below): most of a gigabyte installed,
# twice that while PySpark's wheel builds, so before the release build rather than beside
# it (requirements.txt again, so that its pins hold).
rm -rf target/debug
.venv-clients/bin/python -m pip install --quiet --disable-pip-version-check --no-cache-dir -r tests/clients/requirements.txt -r tests/clients/requirements-jobs.txt
cargo build --release --locked -p churnserve --bin churnserve
.venv-clients/bin/python tests/deploy/probe_check.py single-node replicated

step "the Python client (clients/python, and PySpark and Ray, installed above): pytest against real servers (release build), and score_spark / score_ray on PySpark and Ray in local mode (Java 17) through two replicas on PostgreSQL and S3"
if ! command -v java >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
(cd clients/python && CHURNSERVE_BIN="$root/target/release/churnserve" "$root/.venv-clients/bin/python" -m pytest -q -s -p no:cacheprovider)

# The fuzz build below needs the disk more than a release build kept for nothing.
rm -rf target/release

step "fuzz targets, 60 s each from their seeds (nightly toolchain, cargo fuzz; longer: scripts/fuzz.sh 1800)"
scripts/fuzz.sh 60

step "summary"
echo "rust tests: $totals"

#!/usr/bin/env bash
# The one command that runs every check (what CI runs, through .ci/run), or some tiers:
#   scripts/test.sh              every tier; independent tiers run side by side
#   scripts/test.sh TIER...      only those, in the order given
# Tiers:
#   lint     cargo fmt --check; clippy on every target, with the otlp feature, -D warnings
#   rust     cargo test --workspace (debug): unit tests, the registry's conformance suite on
#            SQLite and on PostgreSQL + S3, the real server on ephemeral ports, the CLIs,
#            crashes, replicas, the OTLP exporter
#   models   models/train.py --check: every bundled model and fixture regenerated and compared
#   clients  stock KServe V2 clients (tritonclient, grpcurl) and the Prometheus parser
#            against a running server; the Python stubs against proto/
#   browser  every console page in headless Chromium against the API's numbers
#   deploy   hadolint, yamllint, kustomize + schema validation, each overlay run as the
#            kubelet would
#   python   the Python client's tests against real servers
#   spark    score_spark and score_ray on PySpark and Ray in local mode, two replicas on
#            PostgreSQL and S3; export-predictions read back with pyarrow (local disk and S3)
# Every tier runs the debug build: a release build of the server would be seven more
# minutes of CI's compiling for tests that run as well on the debug one (the spark tier
# takes 25 s longer on it; the benchmarks are where speed is measured).
#   soak     60 s of scoring while the registry churns (scripts/soak.sh; longer: scripts/soak.sh 600)
#   fuzz     each libFuzzer target for 30 s (scripts/fuzz.sh; longer: scripts/fuzz.sh 1800)
# Each tier installs what it needs (Debian packages, Python environments, npm packages) when
# it is missing, builds what it runs (once: cargo does nothing the second time) and starts
# and stops its own servers. Nothing here deletes a build directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

all_tiers=(lint rust models clients browser deploy python spark soak fuzz)
# A one-off build from a clean clone gains nothing from incremental caches, which would be
# a third of target/ on CI's disk.
export CARGO_INCREMENTAL=0
# The otlp feature is built into the one debug build, so that its test needs no second one.
cargo_features=(--features churnserve/otlp)
logs="$root/target/test-logs"
mkdir -p "$logs"

say() { printf '==> %s\n' "$*"; }

# Runs "$@" holding the lock named $1, so that tiers running side by side prepare a shared
# thing (a Python environment, a Debian package) once.
locked() {
    local name="$1"
    shift
    mkdir -p "$root/target/locks"
    # The command runs without the lock's descriptor: a server it starts must not hold the
    # lock for as long as it runs.
    (
        flock 9
        "$@" 9>&-
    ) 9>"$root/target/locks/$name"
}

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    say "installing Debian's ${missing[*]}"
    [[ -f "$root/target/locks/apt-updated" ]] || { apt-get update -qq && touch "$root/target/locks/apt-updated"; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

venv() {
    local dir="$1"
    shift
    [[ -x "$dir/bin/python" ]] || python3 -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir "$@"
}

need_onnxruntime() { locked onnxruntime scripts/setup-onnxruntime.sh; }
need_models_venv() { locked venv venv .venv -r models/requirements.txt; }
need_clients_venv() {
    locked venv venv .venv-clients -r tests/clients/requirements.txt
    locked venv .venv-clients/bin/python -m pip install --quiet --disable-pip-version-check --no-cache-dir ./clients/python
}
# PySpark and Ray (a gigabyte installed), beside requirements.txt's pins.
need_jobs_venv() {
    need_clients_venv
    locked venv .venv-clients/bin/python -m pip install --quiet --disable-pip-version-check --no-cache-dir \
        -r tests/clients/requirements.txt -r tests/clients/requirements-jobs.txt
}
need_debug_build() {
    need_onnxruntime
    locked cargo cargo test --locked --workspace "${cargo_features[@]}" --no-run --quiet
}
need_s3_server() { locked s3s scripts/s3.sh build; }

scratch="$(mktemp -d)"
chmod 755 "$scratch" # a PostgreSQL cluster in it runs as its own user
cleanup() {
    local pids
    pids="$(jobs -p)"
    [[ -n "$pids" ]] && kill $pids 2>/dev/null
    for cluster in "$scratch"/*/postgres; do
        [[ -f "$cluster/url" ]] && scripts/postgres.sh stop "$cluster" 2>/dev/null
    done
    for s3 in "$scratch"/*/s3; do
        [[ -d "$s3" ]] && scripts/s3.sh stop "$s3" 2>/dev/null
    done
    rm -rf "$scratch"
}
trap cleanup EXIT

# Starts `BINARY serve` on ephemeral ports with a fresh data directory $2; prints the
# server's pid, gRPC address and HTTP address on one line.
start_server() {
    local binary="$1" data="$2" log="$2.log"
    mkdir -p "$(dirname "$data")"
    "$binary" serve --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --data-dir "$data" >"$log" 2>&1 &
    local pid=$! address=""
    for _ in $(seq 1 300); do
        address="$(grep -o 'listening on [0-9.:]*' "$log" | awk '{print $3}' || true)"
        [[ -n "$address" ]] && break
        sleep 0.1
    done
    [[ -n "$address" ]] || { cat "$log" >&2; echo "the server did not start" >&2; return 1; }
    echo "$pid $address $(grep -o 'on http://[0-9.:]*' "$log" | head -n 1 | sed 's|on http://||')"
}

tier_lint() {
    need_onnxruntime
    cargo fmt --all --check
    locked cargo cargo clippy --locked --workspace --all-targets "${cargo_features[@]}" -- -D warnings
}

tier_rust() {
    need_debug_build
    need_s3_server
    # Every test binary runs even when one fails, so that one failure hides no other.
    cargo test --locked --no-fail-fast --workspace "${cargo_features[@]}"
}

tier_models() {
    need_models_venv
    .venv/bin/python models/train.py --check
}

tier_clients() {
    need_debug_build
    need_clients_venv
    .venv-clients/bin/python clients/python/generate_stubs.py --check
    local pid address http_address
    read -r pid address http_address < <(start_server target/debug/churnserve "$scratch/clients/data")
    [[ -n "$http_address" ]] || return 1
    PATH="$root/.venv-clients/bin:$PATH" .venv-clients/bin/python tests/clients/kserve_check.py "$address" "$http_address"
    .venv-clients/bin/python tests/clients/metrics_check.py "$address" "$http_address"
    kill "$pid"
    wait "$pid" || true
}

tier_browser() {
    need_debug_build
    need_clients_venv
    locked apt apt_install chromium
    (cd tests/console && locked npm npm ci --no-audit --no-fund --loglevel=error)
    local pid address http_address
    read -r pid address http_address < <(start_server target/debug/churnserve "$scratch/browser/data")
    [[ -n "$http_address" ]] || return 1
    .venv-clients/bin/python tests/console/api_facts.py "$address" "$scratch/browser/facts.json"
    node tests/console/console.test.mjs "$http_address" "$scratch/browser/facts.json" target/console-screenshots
    kill "$pid"
    wait "$pid" || true
}

tier_deploy() {
    need_clients_venv
    command -v kubectl >/dev/null || { echo "kubectl is needed to render deploy/ (kubectl kustomize)"; return 1; }
    .venv-clients/bin/hadolint Dockerfile
    .venv-clients/bin/yamllint --strict -c .yamllint.yaml deploy/
    .venv-clients/bin/python deploy/validate.py
    need_debug_build
    need_s3_server
    local backing="$scratch/deploy"
    mkdir -p "$backing"
    CHURNSERVE_TEST_POSTGRES_URL="$(locked apt scripts/postgres.sh start "$backing/postgres")"
    export CHURNSERVE_TEST_POSTGRES_URL
    eval "$(scripts/s3.sh start "$backing/s3")"
    CHURNSERVE_BIN="$root/target/debug/churnserve" \
        .venv-clients/bin/python tests/deploy/probe_check.py single-node replicated
}

python_tests() {
    (cd clients/python && CHURNSERVE_BIN="$root/target/debug/churnserve" \
        "$root/.venv-clients/bin/python" -m pytest -q -s -p no:cacheprovider "$@")
}

tier_python() {
    need_debug_build
    need_clients_venv
    python_tests tests/test_client.py tests/test_experiments.py tests/test_monitoring.py
}

tier_spark() {
    need_debug_build
    need_jobs_venv
    need_s3_server
    command -v java >/dev/null || locked apt apt_install openjdk-17-jre-headless
    locked apt apt_install postgresql
    python_tests tests/test_spark.py tests/test_ray.py tests/test_export.py
}

tier_soak() {
    need_debug_build
    scripts/soak.sh 60
}

tier_fuzz() {
    need_onnxruntime
    # Every target at once: the lane ends half a minute after its build, beside the tests.
    FUZZ_JOBS=4 scripts/fuzz.sh 30
}

# Runs one tier, its output in target/test-logs/TIER.log; prints how it ended and how long
# it took, and the log itself when it failed.
run_tier() {
    local tier="$1" started=$SECONDS status=0
    say "$tier: started"
    # In the background and waited for: a subshell tested with || would run with set -e off.
    ("tier_$tier") >"$logs/$tier.log" 2>&1 &
    wait $! || status=$?
    local took=$((SECONDS - started))
    if [[ $status -eq 0 ]]; then
        say "$tier: passed in ${took}s"
    else
        say "$tier: FAILED in ${took}s (exit $status); the end of target/test-logs/$tier.log:"
        tail -n 60 "$logs/$tier.log"
    fi
    echo "$tier $status $took" >>"$logs/summary"
    return $status
}

# Counts every test runner's results in the logs of the tiers that ran.
summary() {
    local tier status took
    say "summary (logs in target/test-logs)"
    while read -r tier status took; do
        printf '    %-8s %-6s %4ss\n' "$tier" "$([[ $status -eq 0 ]] && echo passed || echo FAILED)" "$took"
    done <"$logs/summary"
    # cargo's "test result:" lines and pytest's closing line.
    cat "$logs"/*.log | awk '
        /^test result:/ { passed += $4; failed += $6 }
        /^[0-9]+ passed/ || /^[0-9]+ failed/ {
            for (i = 1; i < NF; i++) {
                if ($(i + 1) ~ /^passed/) passed += $i
                if ($(i + 1) ~ /^failed/) failed += $i
            }
        }
        END { printf "tests: %d passed, %d failed\n", passed, failed }'
}

tiers=("$@")
[[ ${#tiers[@]} -eq 0 ]] && tiers=("${all_tiers[@]}")
for tier in "${tiers[@]}"; do
    declare -F "tier_$tier" >/dev/null || { echo "unknown tier '$tier'; tiers: ${all_tiers[*]}" >&2; exit 2; }
done
# The logs of an earlier run would be counted again.
rm -f "$logs"/*.log "$logs/summary"
started=$SECONDS
failed=0

if [[ $# -gt 0 ]]; then
    for tier in "${tiers[@]}"; do
        run_tier "$tier" || failed=1
        # A tier run alone shows everything it printed.
        [[ $failed -eq 0 ]] && cat "$logs/$tier.log"
    done
else
    # Downloads first, side by side with the compiler: Python environments, npm packages,
    # Debian packages and the S3 test server have nothing to do with each other.
    say "preparing: ONNX Runtime, Python environments, npm and Debian packages, in the background"
    need_onnxruntime
    ( need_models_venv; need_jobs_venv ) >"$logs/prepare-python.log" 2>&1 &
    prepare_python=$!
    ( locked apt apt_install chromium postgresql openjdk-17-jre-headless
      cd tests/console && locked npm npm ci --no-audit --no-fund --loglevel=error ) >"$logs/prepare-packages.log" 2>&1 &
    prepare_packages=$!
    # Lint first, alone: it is the quickest to fail and its check build is all CPU.
    run_tier lint || failed=1
    # The fuzzer (its own nightly build, then half a minute per target) from here on, at
    # the lowest priority: it takes the cycles the builds and then the tests leave idle
    # (linking, single-crate steps, servers waiting), never the reverse, so that no test's
    # timing depends on it. It starts no server.
    (
        renice -n 19 -p "$BASHPID" >/dev/null
        run_tier fuzz
    ) &
    lane_fuzz=$!
    # Then the build: the S3 test server, then every test target of the debug profile.
    say "building the debug profile"
    need_s3_server >"$logs/build.log" 2>&1
    need_debug_build >>"$logs/build.log" 2>&1 || { cat "$logs/build.log"; exit 1; }
    wait "$prepare_python" || { cat "$logs/prepare-python.log"; failed=1; }
    wait "$prepare_packages" || { cat "$logs/prepare-packages.log"; failed=1; }
    # The tests one tier at a time: the Rust suite stops and restarts its PostgreSQL and S3
    # servers on their ports, which a server another tier starts meanwhile could take.
    for tier in rust soak models clients browser deploy python spark; do
        run_tier "$tier" || failed=1
    done
    wait "$lane_fuzz" || failed=1
    # What each tier printed, for whoever reads CI's output.
    for tier in "${all_tiers[@]}"; do
        [[ -f "$logs/$tier.log" ]] && { echo; say "$tier: output"; cat "$logs/$tier.log"; }
    done
fi

say "took $((SECONDS - started))s"
summary
exit $failed

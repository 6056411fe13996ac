# Shared by benches/versus.sh and benches/floor.sh (sourced, after `cd` to the repository):
# the closed-loop client, the request body, and servers pinned to CPU 0.
#
# After sourcing: $closed_loop, $floor (the floor servers of tests/benches/floor.rs),
# $python (with grpc_tools), $work (a temporary directory, removed on exit, with score.bin:
# the first hold-out customer's `Score` request, gRPC-framed) and `start NAME COMMAND...`.

command -v h2load >/dev/null || { apt-get update && apt-get install -y nghttp2-client; }
bench_binary() {
    cargo bench --locked -p tests --bench "$1" --no-run 2>&1 |
        grep -o "target/release/deps/$1-[0-9a-f]*" | head -n 1
}
closed_loop="$(bench_binary closed_loop)"
floor="$(bench_binary floor)"
[[ -x "$closed_loop" && -x "$floor" ]] || { echo "cannot build the bench clients"; exit 1; }
[[ -x .venv-peers/bin/python ]] || python3 -m venv .venv-peers
.venv-peers/bin/python -m pip install --quiet --disable-pip-version-check -r benches/peers/requirements.txt
python=.venv-peers/bin/python

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
"$python" -m grpc_tools.protoc -Iproto --python_out="$work" --grpc_python_out="$work" \
    proto/churn/v1/common.proto proto/churn/v1/scoring.proto proto/inference/grpc_predict_v2.proto
"$python" benches/peers/request.py "$work" body score "$work/score.bin"

# Starts COMMAND pinned to CPU 0, logging to $work/NAME.log, waits for its `listening on
# ADDRESS` line and checks one Score answer; prints its pid and address.
start() {
    local name="$1"
    shift
    taskset -c 0 "$@" >"$work/$name.log" 2>&1 &
    local pid=$! address=""
    for _ in $(seq 1 600); do
        address="$(grep -o 'listening on [0-9.:]*' "$work/$name.log" | awk '{print $3}' || true)"
        [[ -n "$address" ]] && break
        sleep 0.1
    done
    [[ -n "$address" ]] || { cat "$work/$name.log" >&2; exit 1; }
    "$python" benches/peers/request.py "$work" check score "$address" >/dev/null
    echo "$pid $address"
}

# `closed_loop` on CPU 1: one caller, RUN_SECONDS; prints its mean_us, p50_us, ... line.
serial() { taskset -c 1 "$closed_loop" "$1" /churn.v1.ScoringService/Score "$work/score.bin" 1 "$run_seconds"; }
# h2load on CPU 1 at 16 concurrent calls for RUN_SECONDS; prints requests/s.
concurrent() {
    taskset -c 1 h2load -D "$run_seconds" -c 16 -m 1 -d "$work/score.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://$1/churn.v1.ScoringService/Score" | awk '/^finished in/ { gsub(",", "", $4); print $4 }'
}
# One field (mean_us, p50_us, ...) of a closed_loop line.
field() { grep -o "$1=[0-9.]*" <<<"$2" | cut -d= -f2; }

#!/usr/bin/env bash
# A throwaway S3-compatible server (s3s-fs, from crates.io, pinned), for the tests and for
# trying replicas on one machine.
#   scripts/s3.sh start DIR   serves DIR/data on a free loopback port (the same port again
#                             when DIR holds a stopped server) with the bucket `churnserve`,
#                             and prints the variables a client needs, as `export` lines
#                             (and where the server keeps the objects, for tests)
#   scripts/s3.sh stop DIR    stops it
#   scripts/s3.sh build       only builds the server
# The server is built once into .tools/ of the repository (under a lock: tests running side
# by side may start servers at the same moment).
set -euo pipefail

version="0.14.1"
command="${1:?usage: scripts/s3.sh start|stop DIR | build}"
dir="${2:-}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
server="$root/.tools/bin/s3s-fs"

built() { [[ -x "$server" ]] && "$server" --version | grep -q "$version"; }
if ! built; then
    mkdir -p "$root/.tools"
    (
        flock 9
        if ! built; then
            echo "building s3s-fs $version into .tools/ (once; about a minute)" >&2
            # Unoptimised: a test server for small objects, built in half the time.
            CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --locked --debug --root "$root/.tools" \
                s3s-fs --version "$version" --features binary >&2
        fi
    ) 9>"$root/.tools/build.lock"
fi
[[ "$command" == build ]] && exit 0
[[ -n "$dir" ]] || { echo "usage: scripts/s3.sh start|stop DIR | build" >&2; exit 2; }

case "$command" in
start)
    if [[ ! -f "$dir/port" ]]; then
        mkdir -p "$dir/data/churnserve"
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' > "$dir/port"
        printf 'churn-%s\n' "$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')" > "$dir/secret"
    fi
    port="$(cat "$dir/port")"
    secret="$(cat "$dir/secret")"
    "$server" --host 127.0.0.1 --port "$port" --access-key churnserve --secret-key "$secret" \
        "$dir/data" >>"$dir/server.log" 2>&1 &
    echo $! > "$dir/pid"
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    cat <<VARS
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ALLOW_HTTP=true
export AWS_ACCESS_KEY_ID=churnserve
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=us-east-1
export CHURNSERVE_TEST_S3_BUCKET=churnserve
export CHURNSERVE_TEST_S3_ROOT=$dir/data
VARS
    ;;
stop)
    if [[ -f "$dir/pid" ]]; then
        kill "$(cat "$dir/pid")" 2>/dev/null || true
        while kill -0 "$(cat "$dir/pid")" 2>/dev/null; do sleep 0.05; done
        rm -f "$dir/pid"
    fi
    ;;
*)
    echo "usage: scripts/s3.sh start|stop DIR" >&2
    exit 2
    ;;
esac

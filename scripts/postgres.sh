#!/usr/bin/env bash
# A throwaway PostgreSQL cluster, for the tests and for trying replicas on one machine.
#   scripts/postgres.sh start DIR   creates a cluster in DIR on a free loopback port (or
#                                   starts the one already there) and prints its URL
#                                   (database `postgres`)
#   scripts/postgres.sh stop DIR    stops it (DIR can then be removed)
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user.
# Debian's `postgresql` package is installed when missing (as root).
set -euo pipefail

command="${1:?usage: scripts/postgres.sh start|stop DIR}"
dir="${2:?usage: scripts/postgres.sh start|stop DIR}"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [[ -z "$(bindir)" ]]; then
    [[ "$(id -u)" == 0 ]] || { echo "PostgreSQL is not installed: apt-get install postgresql" >&2; exit 1; }
    echo "installing Debian's postgresql" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
bin="$(bindir)"

as_owner() {
    if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

init() {
    mkdir -p "$dir"
    if [[ "$(id -u)" == 0 ]]; then chown postgres: "$dir"; fi
    local port password
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    password="churn-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
    printf '%s\n' "$password" > "$dir/pw"
    if [[ "$(id -u)" == 0 ]]; then chown postgres: "$dir/pw"; fi
    as_owner "$bin/initdb" --pgdata "$dir/data" --username churn --pwfile "$dir/pw" \
        --auth scram-sha-256 --encoding UTF8 --no-sync >/dev/null
    rm -f "$dir/pw"
    cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
max_connections = 300
CONF
    printf 'postgres://churn:%s@127.0.0.1:%s/postgres\n' "$password" "$port" > "$dir/url"
}

case "$command" in
start)
    [[ -f "$dir/url" ]] || init
    as_owner "$bin/pg_ctl" --pgdata "$dir/data" --log "$dir/server.log" --wait start >/dev/null
    cat "$dir/url"
    ;;
stop)
    as_owner "$bin/pg_ctl" --pgdata "$dir/data" --mode fast --wait stop >/dev/null
    ;;
*)
    echo "usage: scripts/postgres.sh start|stop DIR" >&2
    exit 2
    ;;
esac

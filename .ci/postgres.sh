#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the store contract tests and print the DSN to use:
#
#     eval "$(bash .ci/postgres.sh)"      # sets GATEWAY_TEST_PG_DSN
#     bash .ci/postgres.sh stop           # stops it again
#
# Installs PostgreSQL from the distribution's packages when no server binaries are found.
# Idempotent: a cluster that is already running is reused. Only the export line goes to
# stdout; progress goes to stderr. Works as root (the server runs as the `postgres` user)
# and as an ordinary user (the server runs as that user).
#
# Settings (environment): GATEWAY_PG_DIR (default /tmp/gateway-pg), GATEWAY_PG_PORT
# (default 54329), GATEWAY_PG_DB (default gateway_test).
set -euo pipefail

PG_DIR="${GATEWAY_PG_DIR:-/tmp/gateway-pg}"
PG_PORT="${GATEWAY_PG_PORT:-54329}"
PG_DB="${GATEWAY_PG_DB:-gateway_test}"
DATA="$PG_DIR/data"
SOCKET_DIR="$PG_DIR/run"
LOG="$PG_DIR/server.log"

say() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    # Debian keeps the server binaries out of PATH, one folder per major version.
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then
        echo "$dir"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

BINDIR="$(find_bindir)"
if [[ -z "$BINDIR" ]]; then
    if [[ "$(id -u)" != 0 ]]; then
        say "PostgreSQL is not installed and installing it needs root"
        exit 1
    fi
    say "installing PostgreSQL from the distribution's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends postgresql >&2
    BINDIR="$(find_bindir)"
    [[ -n "$BINDIR" ]] || { say "PostgreSQL binaries not found after installing"; exit 1; }
fi

if [[ "${1:-}" == "stop" ]]; then
    if [[ -f "$DATA/PG_VERSION" ]]; then
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
    fi
    exit 0
fi

if [[ "$(id -u)" == 0 ]] && ! id postgres >/dev/null 2>&1; then
    # The Debian package creates this user; a bare machine with only the binaries may not.
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

mkdir -p "$PG_DIR"
if [[ "$(id -u)" == 0 ]]; then
    chown postgres: "$PG_DIR"
fi
as_owner mkdir -p "$SOCKET_DIR"

if [[ ! -f "$DATA/PG_VERSION" ]]; then
    say "creating a cluster in $DATA"
    as_owner "$BINDIR/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-sync >&2
fi

server_ready() {
    "$BINDIR/pg_isready" -q -h "$SOCKET_DIR" -p "$PG_PORT" -d postgres -U postgres
}

server_process_alive() {
    # A postmaster killed with -9 can linger as a zombie (containers often have no init to
    # reap it), and then pg_ctl still believes it runs: look at the process state instead.
    local pid
    pid="$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)"
    [[ -n "$pid" && -r "/proc/$pid/stat" ]] && [[ "$(awk '{print $3}' "/proc/$pid/stat")" != Z ]]
}

if ! server_ready; then
    if ! server_process_alive; then
        rm -f "$DATA/postmaster.pid"
        say "starting PostgreSQL on socket $SOCKET_DIR port $PG_PORT"
        # Unix socket only (no TCP port to collide with); a throwaway test cluster does not
        # need fsync, which keeps the contract suite fast.
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start \
            -o "-p $PG_PORT -k $SOCKET_DIR -c listen_addresses='' -c fsync=off -c max_connections=200" >&2 \
            || { say "PostgreSQL did not start; its log:"; tail -n 20 "$LOG" >&2; exit 1; }
    fi
    for _ in $(seq 1 60); do
        server_ready && break
        sleep 1
    done
    server_ready || { say "PostgreSQL is not accepting connections"; exit 1; }
fi

psql_as_postgres() {
    as_owner "$BINDIR/psql" -h "$SOCKET_DIR" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -tA "$@"
}

if [[ "$(psql_as_postgres -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != "1" ]]; then
    say "creating database $PG_DB"
    psql_as_postgres -c "CREATE DATABASE $PG_DB" >&2
fi

echo "export GATEWAY_TEST_PG_DSN='postgresql+psycopg://postgres@/$PG_DB?host=$SOCKET_DIR&port=$PG_PORT'"

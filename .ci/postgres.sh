#!/usr/bin/env bash
# Install (if missing) and start a throwaway PostgreSQL on loopback for the store tests.
# Prints the SQLAlchemy URL to use as REDRAFT_TEST_POSTGRES_URL on its last line.
set -euo pipefail
# A free loopback port unless one is given, so a stale server never blocks the run.
PORT="${REDRAFT_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq postgresql) >&2
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
DATA=$(mktemp -d /tmp/redraft-pg.XXXXXX)
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$DATA"
cd "$DATA"  # the postgres user cannot enter the caller's directory
run_pg "$PGBIN/initdb" -D "$DATA/data" -A trust -U postgres >&2
run_pg "$PGBIN/pg_ctl" -D "$DATA/data" -l "$DATA/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c max_connections=100" start >&2
echo "$PGBIN/pg_ctl -D $DATA/data stop -m fast" > "$DATA/stop"
echo "$DATA" >&2
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"

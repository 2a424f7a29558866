#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for development and tests (no systemd needed).
#   scripts/pg-dev.sh start   → starts it (if not running) and prints DATABASE_URL
#   scripts/pg-dev.sh stop    → stops it and deletes its data
# Settings trade durability for speed (fsync off): never point real data at it.
# Override the location/port with FREEHOLD_PG_ROOT / FREEHOLD_PG_PORT.
set -euo pipefail

PGROOT=${FREEHOLD_PG_ROOT:-/tmp/freehold-pg}
PGDATA=$PGROOT/data
PGPORT=${FREEHOLD_PG_PORT:-54329}
PGDB=freehold_test

pgbin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2
    exit 1
  fi
  echo "$dir"
}

# The server refuses to run as root, so run its tools as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local bin
  bin=$(pgbin)
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    rm -rf "$PGROOT"
    if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres "$PGROOT"; else mkdir -p "$PGROOT"; fi
    as_pg "$bin/initdb" -D "$PGDATA" -U postgres -A trust --no-sync -E UTF8 >/dev/null
  fi
  if ! as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$PGDATA" -l "$PGROOT/pg.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGROOT -c fsync=off -c synchronous_commit=off" start >/dev/null
  fi
  if [ -z "$(as_pg "$bin/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PGDB'")" ]; then
    as_pg "$bin/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE $PGDB"
  fi
  echo "postgres://postgres@127.0.0.1:$PGPORT/$PGDB"
}

stop() {
  local bin
  bin=$(pgbin)
  if [ -s "$PGDATA/PG_VERSION" ]; then
    as_pg "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PGROOT"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

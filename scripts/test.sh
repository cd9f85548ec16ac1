#!/usr/bin/env bash
# Runs everything CI runs: formatting, lints, the sqlx offline-data check,
# every test, against a real PostgreSQL, Redis and S3-compatible server, and
# schemathesis against the server and its OpenAPI document
# (scripts/schemathesis/run.sh).
#
# Uses DATABASE_URL, REDIS_URL and S3_ENDPOINT (with S3_ACCESS_KEY,
# S3_SECRET_KEY, S3_REGION) when they are set. Otherwise it starts a
# throwaway PostgreSQL (initdb + pg_ctl in a temporary directory, on a free
# port), a throwaway Redis and a throwaway moto_server, and stops them on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rookery-test.XXXXXX")"
PG_DATA=""
REDIS_PIDFILE=""
MOTO_PID=""
cleanup() {
  local status=$?
  if [[ -n "$PG_DATA" && -f "$PG_DATA/postmaster.pid" ]]; then
    as_pg pg_ctl -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [[ -n "$REDIS_PIDFILE" && -f "$REDIS_PIDFILE" ]]; then
    kill "$(cat "$REDIS_PIDFILE")" 2>/dev/null || true
  fi
  if [[ -n "$MOTO_PID" ]]; then
    kill "$MOTO_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT INT TERM

source scripts/lib.sh

# initdb refuses to run as root; as root, run the PostgreSQL tools as 'postgres'.
as_pg() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- env PATH="$PATH" "$@"
  else
    "$@"
  fi
}

find_pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

start_postgres() {
  local bin port
  bin="$(find_pg_bin)" || true
  [[ -n "$bin" ]] || die "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them with:
    sudo apt-get install postgresql        # Debian/Ubuntu
    brew install postgresql@16             # macOS
or set DATABASE_URL to an existing server."
  export PATH="$bin:$PATH"
  if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    chown postgres "$WORK"
  fi
  port="$(free_port)"
  PG_DATA="$WORK/pg"
  log "starting a throwaway PostgreSQL on port $port"
  as_pg initdb -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
  # Durability is pointless for a throwaway cluster; speed is not.
  as_pg pg_ctl -D "$PG_DATA" -l "$WORK/postgres.log" -w -t 60 \
    -o "-p $port -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
    start >/dev/null || { cat "$WORK/postgres.log" >&2; die "PostgreSQL did not start"; }
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

start_redis() {
  local port
  command -v redis-server >/dev/null 2>&1 || die "redis-server not found. Install it with:
    sudo apt-get install redis-server      # Debian/Ubuntu
    brew install redis                     # macOS
or set REDIS_URL to an existing server."
  port="$(free_port)"
  REDIS_PIDFILE="$WORK/redis.pid"
  log "starting a throwaway Redis on port $port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "$REDIS_PIDFILE" --logfile "$WORK/redis.log" --dir "$WORK" >/dev/null
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  export REDIS_URL="redis://127.0.0.1:$port"
}

start_moto() {
  local port
  command -v moto_server >/dev/null 2>&1 || die "moto_server not found (an S3-compatible server for the media tests). Install it with:
    pip install \"moto[server]\"
or set S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY to an existing S3-compatible server."
  port="$(free_port)"
  log "starting a throwaway moto_server (S3) on port $port"
  moto_server -H 127.0.0.1 -p "$port" >"$WORK/moto.log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$MOTO_PID" 2>/dev/null || { cat "$WORK/moto.log" >&2; die "moto_server did not start"; }
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { cat "$WORK/moto.log" >&2; die "moto_server did not start"; }
  export S3_ENDPOINT="http://127.0.0.1:$port" S3_ACCESS_KEY=test S3_SECRET_KEY=test
  # Not us-east-1: creating a bucket there must not name a location
  # constraint, and rust-s3 always sends one.
  export S3_REGION=eu-west-1
}

command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"
cargo sqlx --version >/dev/null 2>&1 || die "sqlx-cli not found. Install it with:
    cargo install sqlx-cli --version 0.8.6 --locked --no-default-features --features postgres,rustls"

[[ -n "${DATABASE_URL:-}" ]] || start_postgres
[[ -n "${REDIS_URL:-}" ]] || start_redis
[[ -n "${S3_ENDPOINT:-}" ]] || start_moto

log "cargo fmt --check"
cargo fmt --all -- --check

# Compile against the committed .sqlx data, as Docker builds do.
export SQLX_OFFLINE=true

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

log "checking that .sqlx is in step with the queries and migrations"
CHECK_DB="rookery_sqlx_check_$$"
CHECK_URL="${DATABASE_URL%/*}/$CHECK_DB"
DATABASE_URL="$CHECK_URL" cargo sqlx database drop -y >/dev/null 2>&1 || true
DATABASE_URL="$CHECK_URL" cargo sqlx database setup --source migrations >/dev/null
DATABASE_URL="$CHECK_URL" SQLX_OFFLINE=false cargo sqlx prepare --check --workspace -- --all-targets ||
  { DATABASE_URL="$CHECK_URL" cargo sqlx database drop -y >/dev/null 2>&1 || true
    die ".sqlx is stale: run 'cargo sqlx prepare --workspace -- --all-targets' against a migrated database and commit it"; }
DATABASE_URL="$CHECK_URL" cargo sqlx database drop -y >/dev/null 2>&1 || true

log "cargo test"
cargo test --workspace --all-targets

log "schemathesis: the server against its OpenAPI document"
scripts/schemathesis/run.sh

#!/usr/bin/env bash
# Checks the server against its own OpenAPI document with schemathesis (every
# check): starts the debug `rookery` binary on a free port against a fresh
# database, signs users up through the API and runs schemathesis with their
# credentials. Fails on any failed check.
#
# Needs DATABASE_URL (any database on the server; a fresh one is created and
# dropped next to it), REDIS_URL, S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY
# and S3_REGION (a fresh bucket is created and left: S3 servers keep what
# they are given, moto until it stops), as scripts/test.sh provides, plus
# curl, python3 and the schemathesis version in requirements.txt beside this
# file. SCHEMATHESIS_MAX_EXAMPLES (default 30) bounds the cases per operation
# and phase; SCHEMATHESIS_SEED picks the seed (a fixed one by default, so a
# CI run is reproducible; set another, or "random", to explore).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=scripts/schemathesis
SEED="${SCHEMATHESIS_SEED:-20261202}"
[[ "$SEED" == random ]] && SEED=""

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

S3_REGION="${S3_REGION:-us-east-1}"
for var in DATABASE_URL REDIS_URL S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY; do
  [[ -n "${!var:-}" ]] || die "$var is not set (scripts/test.sh sets it)"
done
PINNED="$(sed -n 's/^schemathesis==//p' "$HERE/requirements.txt")"
command -v schemathesis >/dev/null 2>&1 ||
  die "schemathesis not found. Install it with: pip install -r $HERE/requirements.txt"
INSTALLED="$(schemathesis --version | awk '{print $NF}')"
[[ "$INSTALLED" == "$PINNED" ]] ||
  die "schemathesis $INSTALLED is installed; this script is pinned to $PINNED (pip install -r $HERE/requirements.txt)"
command -v curl >/dev/null 2>&1 || die "curl not found"

MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-30}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/rookery-schemathesis.XXXXXX")"
DB="rookery_schemathesis_$$"
DB_URL="${DATABASE_URL%/*}/$DB"
BUCKET="rookery-schemathesis-$$"
SERVER_PID=""
cleanup() {
  local status=$?
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  DATABASE_URL="$DB_URL" cargo sqlx database drop -y >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT INT TERM

source scripts/lib.sh

# The binary of the current sources, from the same build as the tests.
cargo build --quiet --bin rookery
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
BIN="$TARGET_DIR/debug/rookery"

DATABASE_URL="$DB_URL" cargo sqlx database create

# A bucket of its own on the S3 server, signed as any S3 server wants it
# (us-east-1 takes no location constraint; every other region needs one).
LOCATION=()
if [[ "$S3_REGION" != us-east-1 ]]; then
  LOCATION=(-H 'content-type: application/xml' --data
    "<CreateBucketConfiguration><LocationConstraint>$S3_REGION</LocationConstraint></CreateBucketConfiguration>")
fi
curl -sSf -o /dev/null -X PUT "${S3_ENDPOINT%/}/$BUCKET" "${LOCATION[@]}" \
  --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" ||
  die "could not create the bucket $BUCKET on $S3_ENDPOINT"

PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
# Logins are throttled per address; every request here comes from one.
DATABASE_URL="$DB_URL" S3_BUCKET="$BUCKET" ROOKERY_BIND="127.0.0.1:$PORT" \
  ROOKERY_PUBLIC_URL="$BASE" ROOKERY_LOGIN_PER_MINUTE=100000 ROOKERY_REGISTER_PER_MINUTE=100000 ROOKERY_SHUTDOWN_TIMEOUT=1 \
  ROOKERY_LOG=warn ROOKERY_LOG_FORMAT=json \
  JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -d '\n')" \
  "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "$BASE/readyz" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server did not start"; }
  sleep 0.2
done
curl -sf -o /dev/null "$BASE/readyz" || { cat "$WORK/server.log" >&2; die "the server is not ready"; }

# POSTs JSON and prints the answer.
post() {
  local path=$1 body=$2 auth=${3:-}
  curl -sSf -X POST "$BASE$path" -H 'content-type: application/json' \
    ${auth:+-H "authorization: Bearer $auth"} -d "$body"
}

# Prints field $2 of the JSON object $1.
field() {
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# Signs up a user and sets USER_ID, PASSWORD, TOKEN, REFRESH_TOKEN, API_KEY
# and API_KEY_ID.
sign_up() {
  local name=$1 answer
  PASSWORD="password-of-$name"
  answer="$(post /api/v1/auth/register "{\"username\": \"$name\", \"email\": \"$name@example.com\", \"password\": \"$PASSWORD\"}")"
  USER_ID="$(field "$answer" id)"
  answer="$(post /api/v1/auth/login "{\"login\": \"$name\", \"password\": \"$PASSWORD\"}")"
  TOKEN="$(field "$answer" access_token)"
  REFRESH_TOKEN="$(field "$answer" refresh_token)"
  answer="$(post /api/v1/me/api-keys '{"name": "schemathesis"}' "$TOKEN")"
  API_KEY="$(field "$answer" key)"
  API_KEY_ID="$(field "$answer" id)"
}

# Something to find: users to follow and block, a post with a comment. The
# names are not the document's examples (alice), which are free to register.
sign_up st_bob
BLOCK_USER_ID=$USER_ID
post /api/v1/posts '{"text": "hello #schemathesis"}' "$TOKEN" >/dev/null
sign_up st_carol
FOLLOW_USER_ID=$USER_ID
POST_ID="$(field "$(post /api/v1/posts '{"text": "hello @st_bob"}' "$TOKEN")" id)"
post "/api/v1/posts/$POST_ID/comments" '{"text": "hi"}' "$TOKEN" >/dev/null

export ST_ANSWERS_FILE="$WORK/answers"
: >"$ST_ANSWERS_FILE"
FAILED=0
# schemathesis RUN_NAME USER [filters...]: one run, as a fresh user's.
run() {
  local name=$1 user=$2
  shift 2
  sign_up "$user"
  log "schemathesis: $name (as $user, up to $MAX_EXAMPLES cases per operation and phase)"
  ST_TOKEN="$TOKEN" ST_API_KEY="$API_KEY" ST_LOGIN="$user" ST_PASSWORD="$PASSWORD" \
    ST_REFRESH_TOKEN="$REFRESH_TOKEN" ST_API_KEY_ID="$API_KEY_ID" \
    ST_BLOCK_USER_ID="$BLOCK_USER_ID" ST_FOLLOW_USER_ID="$FOLLOW_USER_ID" \
    schemathesis --config-file "$HERE/schemathesis.toml" run "$BASE/openapi.json" \
    --checks all --max-examples "$MAX_EXAMPLES" --workers 2 --no-color \
    ${SEED:+--seed "$SEED"} "$@" || FAILED=1
}

STARTED=$SECONDS
# The real-time transports never answer a plain request and end: the
# WebSocket upgrade, the long poll and the SSE stream are tested in tests/api.
STREAMS=(--exclude-path /api/v1/stream --exclude-path /api/v1/events --exclude-path /api/v1/events/stream)
# These end the caller's session, credentials or account: each has a run and
# a user of its own.
DESTRUCTIVE=("PUT /api/v1/me/password" "DELETE /api/v1/me/api-keys/{id}" "DELETE /api/v1/me")
run "every operation but the destructive ones" st_alice "${STREAMS[@]}" \
  --exclude-name "${DESTRUCTIVE[0]}" --exclude-name "${DESTRUCTIVE[1]}" --exclude-name "${DESTRUCTIVE[2]}"
run "changing the password" st_dave --include-name "${DESTRUCTIVE[0]}"
run "revoking API keys" st_erin --include-name "${DESTRUCTIVE[1]}"
run "deleting the account" st_frank --include-name "${DESTRUCTIVE[2]}"

TESTED="$(sed 's/^[^ ]* //' "$ST_ANSWERS_FILE" | sort -u)"
WITH_2XX="$(sed -n 's/^2xx //p' "$ST_ANSWERS_FILE" | sort -u)"
log "schemathesis: $(grep -c . <<<"$WITH_2XX") of $(grep -c . <<<"$TESTED") operations tested answered 2xx at least once, in $((SECONDS - STARTED)) s"
WITHOUT="$(comm -23 <(echo "$TESTED") <(echo "$WITH_2XX"))"
[[ -z "$WITHOUT" ]] || printf 'never 2xx: %s\n' "$WITHOUT" | sed '2,$s/^/           /' >&2
if ((FAILED)); then
  tail -n 50 "$WORK/server.log" >&2
  die "schemathesis found failures (above)"
fi

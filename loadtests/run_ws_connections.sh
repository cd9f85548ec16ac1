#!/usr/bin/env bash
# Runs ws_connections.js and measures the server's resident memory (VmRSS of
# its process) before the connections, with all of them open, and after they
# close. Prints bytes per connection = (RSS with - RSS before) / connections.
#
#   SERVER_PID=$(pgrep -n rookery)  # or leave unset: found by the port
#   CONNS=10000 ./run_ws_connections.sh
# Every other variable (PER_VU, HOLD, OPEN_RATE, BASE_URL, KEYS_FILE) goes to k6.
set -euo pipefail
cd "$(dirname "$0")"

PORT="${PORT:-8080}"
CONNS="${CONNS:-10000}"
export CONNS
HOLD="${HOLD:-60}"
export HOLD
if [[ -z "${SERVER_PID:-}" ]]; then
  SERVER_PID="$(ss -Htlnp "sport = :$PORT" | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2)"
fi
[[ -n "$SERVER_PID" && -r "/proc/$SERVER_PID/status" ]] || { echo "no server process on port $PORT: set SERVER_PID" >&2; exit 1; }
# k6 needs one descriptor per socket, and so does the server (raise its limit before starting it).
ulimit -n "$(ulimit -Hn)"
server_nofile="$(awk '/Max open files/ {print $4}' "/proc/$SERVER_PID/limits")"
if (( server_nofile < CONNS + 100 )); then
  echo "warning: the server may open only $server_nofile files; start it after 'ulimit -n $((CONNS + 1000))'" >&2
fi

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status"; }
established() { ss -Htn state established "( sport = :$PORT )" | wc -l; }

before_kib="$(rss_kib)"
before_conns="$(established)"
echo "server pid $SERVER_PID: VmRSS ${before_kib} KiB with $before_conns connections before the test"

LOG="${LOG:-/tmp/ws_connections.k6.log}"
k6 run ws_connections.js >"$LOG" 2>&1 &
K6_PID=$!

peak_conns=0
peak_kib=0
deadline=$((SECONDS + HOLD + 600))
while kill -0 "$K6_PID" 2>/dev/null && (( SECONDS < deadline )); do
  sleep 2
  n="$(established)"
  kib="$(rss_kib)"
  echo "t=${SECONDS}s connections=$n VmRSS=${kib}KiB"
  if (( n > peak_conns )); then peak_conns=$n; fi
  # The measurement: all connections open, and held for a moment.
  if (( n >= before_conns + CONNS )); then
    sleep 5
    n="$(established)"
    kib="$(rss_kib)"
    with_conns=$n
    with_kib=$kib
    echo "all open: connections=$n VmRSS=${kib}KiB"
    break
  fi
done
wait "$K6_PID" || true
sleep 5
after_kib="$(rss_kib)"

if [[ -z "${with_kib:-}" ]]; then
  echo "not all $CONNS connections opened (peak $peak_conns); see $LOG" >&2
  tail -n 40 "$LOG" >&2
  exit 1
fi
opened=$((with_conns - before_conns))
per=$(( (with_kib - before_kib) * 1024 / opened ))
echo "----"
echo "connections held:        $opened"
echo "VmRSS before:            ${before_kib} KiB"
echo "VmRSS with connections:  ${with_kib} KiB"
echo "VmRSS after closing:     ${after_kib} KiB (peak VmHWM $(hwm_kib) KiB)"
echo "bytes per connection:    $per ($(( per / 1024 )) KiB; target <= 16384)"
echo "k6 summary:"
grep -E 'ws_opened|ws_failed|ws_closed_early|ws_connect_ms' "$LOG" || true

# Shared by scripts/test.sh and scripts/schemathesis/run.sh (sourced).

# A TCP port nothing listens on, below Linux's ephemeral range (32768+), where
# outgoing connections, even closed ones in TIME_WAIT, can make a free-looking
# port unbindable.
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((10000 + RANDOM % 22000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "error: no free TCP port found" >&2
  return 1
}

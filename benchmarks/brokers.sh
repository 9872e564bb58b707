# Sourced by the on/off benchmark scripts: brokers of this worktree, each in
# a data directory of its own, stopped when the script exits.
#
#   source "$HERE/brokers.sh"
#   start NAME [ENV=VALUE...]   # sets PORT (AMQP), API and METRICS (0: none)
#
# start runs in the calling shell (not in a $(...) subshell), so that the
# broker's pid reaches `pids` and the EXIT trap stops it: a broker left
# running would keep holding /tmp/bench.lock, inherited from flock.
PY="${PY:-$ROOT/.venv/bin/python}"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start() {
  local name=$1; shift
  env "$@" "$PY" -m leveret broker --port 0 --prometheus-port 0 --management-port 0 \
      --data-dir "$work/$name" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    if grep -q 'listening on' "$work/$name.log"; then break; fi
    sleep 0.1
  done
  PORT=$(grep -oP 'Leveret \S+ listening on [^\s]+:\K\d+' "$work/$name.log")
  API=$(grep -oP 'management API at http://[^\s]+:\K\d+' "$work/$name.log" || echo 0)
  METRICS=$(grep -oP 'Prometheus metrics on http://[^\s]+:\K\d+' "$work/$name.log" || echo 0)
}

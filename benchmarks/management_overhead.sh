#!/usr/bin/env bash
# Benchmark (not a test): what the management API costs the per-message path.
#
# Starts two brokers of this worktree: A with management_enabled=false, B with
# the API on and a client polling GET /api/queues every second, then runs
# benchmarks/compare.sh A B (A and B in turn first) for pubsub-16 and confirms-16 (B/A >= 0.97
# is the goal).  Run it under `flock /tmp/bench.lock`.
#
#   [ON_FIRST=1] benchmarks/management_overhead.sh [PAIRS]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="$ROOT/.venv/bin/python"
COMPARE="${COMPARE:-$HERE/compare.sh}"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start() {   # start NAME EXTRA_ENV... ; sets PORT (AMQP) and API (0: none)
  # Runs in this shell (not in a $(...) subshell), so that its pid reaches
  # `pids` and the trap stops the broker: a broker left running would keep
  # holding /tmp/bench.lock, inherited from flock.
  local name=$1; shift
  env "$@" "$PY" -m leveret broker --port 0 --management-port 0 --prometheus-port 0 \
      --data-dir "$work/$name" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    if grep -q 'listening on' "$work/$name.log"; then break; fi
    sleep 0.1
  done
  PORT=$(grep -oP 'Leveret \S+ listening on [^\s]+:\K\d+' "$work/$name.log")
  API=$(grep -oP 'management API at http://[^\s]+:\K\d+' "$work/$name.log" || echo 0)
}

# ON_FIRST=1 starts the broker with the API first (the broker started second
# was seen to lose 1-2 % whatever its build).
if [[ "${ON_FIRST:-0}" == 1 ]]; then
  start on LEVERET_MANAGEMENT_ENABLED=true
  B_AMQP=$PORT
  B_API=$API
  start off LEVERET_MANAGEMENT_ENABLED=false
  A_AMQP=$PORT
else
  start off LEVERET_MANAGEMENT_ENABLED=false
  A_AMQP=$PORT
  start on LEVERET_MANAGEMENT_ENABLED=true
  B_AMQP=$PORT
  B_API=$API
fi
echo "A (API off): amqp $A_AMQP   B (API on, polled): amqp $B_AMQP api $B_API" >&2

"$PY" - "$B_API" <<'PY' &
import base64, sys, time, urllib.request
request = urllib.request.Request(f'http://127.0.0.1:{sys.argv[1]}/api/queues')
request.add_header('Authorization', 'Basic ' + base64.b64encode(b'guest:guest').decode())
while True:
    try:
        urllib.request.urlopen(request, timeout=5).read()
    except OSError:
        pass
    time.sleep(1)
PY
pids+=($!)

PAIRS="${1:-3}" ONLY="${ONLY:-^(pubsub-16|confirms-16)$}" \
  bash "$COMPARE" "amqp://guest:guest@127.0.0.1:$A_AMQP/" "amqp://guest:guest@127.0.0.1:$B_AMQP/"

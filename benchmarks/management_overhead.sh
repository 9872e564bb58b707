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
COMPARE="${COMPARE:-$HERE/compare.sh}"
source "$HERE/brokers.sh"

# ON_FIRST=1 starts the broker with the API first (the broker started second
# was seen to lose up to 4-5 % whatever its build: benchmarks/two_brokers.sh).
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

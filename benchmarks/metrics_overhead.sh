#!/usr/bin/env bash
# Benchmark (not a test): what the Prometheus metrics and the Celery-aware
# accounting cost the per-message path.
#
# Starts two brokers of this worktree: A with prometheus_enabled=false and
# celery_accounting=false, B with both on and a client scraping /metrics every
# 5 seconds (as a Prometheus server would, more often than its default 15 s),
# then runs benchmarks/compare.sh A B (A and B in turn first; B/A >= 0.97 is the goal).  The
# variants are compare.sh's ONLY regex (first argument): the message path
# with pubsub-16, pubsub-1k and confirms-16 (the default), the Celery
# accounting with 'celery' (compare.sh's Celery workloads: every message a
# task).  Run it under `flock /tmp/bench.lock`.
#
#   [ON_FIRST=1] benchmarks/metrics_overhead.sh ['^(pubsub-16|pubsub-1k|confirms-16)$' | celery] [PAIRS]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="$ROOT/.venv/bin/python"
COMPARE="${COMPARE:-$HERE/compare.sh}"
ONLY_VARIANTS="${1:-^(pubsub-16|pubsub-1k|confirms-16)$}"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start() {   # start NAME EXTRA_ENV... ; sets PORTS="<amqp port> <metrics port or 0>"
  # Run in this shell (not in a subshell), so that the trap stops the broker.
  local name=$1; shift
  env "$@" "$PY" -m leveret broker --port 0 --prometheus-port 0 --management-port 0 \
      --data-dir "$work/$name" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    if grep -q 'listening on' "$work/$name.log"; then break; fi
    sleep 0.1
  done
  PORTS="$(grep -oP 'Leveret \S+ listening on [^\s]+:\K\d+' "$work/$name.log") \
$(grep -oP 'Prometheus metrics on http://[^\s]+:\K\d+' "$work/$name.log" || echo 0)"
}

# ON_FIRST=1 starts the broker with metrics and accounting first: the broker
# started second was seen to lose up to 4-5 % whatever its build (an A/A run
# of two identical brokers gave 0.955 on pubsub-16).
if [[ "${ON_FIRST:-0}" == 1 ]]; then
  start on LEVERET_PROMETHEUS_ENABLED=true LEVERET_CELERY_ACCOUNTING=true
  read -r B_AMQP B_METRICS <<<"$PORTS"
  start off LEVERET_PROMETHEUS_ENABLED=false LEVERET_CELERY_ACCOUNTING=false
  read -r A_AMQP _ <<<"$PORTS"
else
  start off LEVERET_PROMETHEUS_ENABLED=false LEVERET_CELERY_ACCOUNTING=false
  read -r A_AMQP _ <<<"$PORTS"
  start on LEVERET_PROMETHEUS_ENABLED=true LEVERET_CELERY_ACCOUNTING=true
  read -r B_AMQP B_METRICS <<<"$PORTS"
fi
echo "A (metrics and accounting off): amqp $A_AMQP   B (on, scraped): amqp $B_AMQP" \
     "metrics $B_METRICS" >&2
[ "$B_METRICS" != 0 ] || { echo "B serves no metrics" >&2; exit 2; }

"$PY" - "$B_METRICS" <<'PY' &
import sys, time, urllib.request
url = f'http://127.0.0.1:{sys.argv[1]}/metrics'
while True:
    try:
        urllib.request.urlopen(url, timeout=5).read()
    except OSError:
        pass
    time.sleep(5)
PY
pids+=($!)

PAIRS="${2:-3}" ONLY="$ONLY_VARIANTS" \
  bash "$COMPARE" "amqp://guest:guest@127.0.0.1:$A_AMQP/" "amqp://guest:guest@127.0.0.1:$B_AMQP/"

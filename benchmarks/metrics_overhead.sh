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
COMPARE="${COMPARE:-$HERE/compare.sh}"
ONLY_VARIANTS="${1:-^(pubsub-16|pubsub-1k|confirms-16)$}"
source "$HERE/brokers.sh"

# ON_FIRST=1 starts the broker with metrics and accounting first: the broker
# started second was seen to lose up to 4-5 % whatever its build (an A/A run
# of two identical brokers gave 0.955 on pubsub-16).
if [[ "${ON_FIRST:-0}" == 1 ]]; then
  start on LEVERET_PROMETHEUS_ENABLED=true LEVERET_CELERY_ACCOUNTING=true
  B_AMQP=$PORT B_METRICS=$METRICS
  start off LEVERET_PROMETHEUS_ENABLED=false LEVERET_CELERY_ACCOUNTING=false
  A_AMQP=$PORT
else
  start off LEVERET_PROMETHEUS_ENABLED=false LEVERET_CELERY_ACCOUNTING=false
  A_AMQP=$PORT
  start on LEVERET_PROMETHEUS_ENABLED=true LEVERET_CELERY_ACCOUNTING=true
  B_AMQP=$PORT B_METRICS=$METRICS
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

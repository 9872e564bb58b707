#!/usr/bin/env bash
# Benchmark (not a test): two brokers of this worktree, each with its own
# settings, compared by benchmarks/compare.sh (A started first, B second).
# With the same settings on both it is the A/A control of the on/off
# scripts: how much the broker started second loses whatever its build.
# Run it under `flock /tmp/bench.lock`.
#
#   benchmarks/two_brokers.sh "A_ENV..." "B_ENV..." [ONLY] [PAIRS]
#   benchmarks/two_brokers.sh "LEVERET_MANAGEMENT_ENABLED=false" \
#       "LEVERET_MANAGEMENT_ENABLED=false" '^pubsub-16$' 8
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="$ROOT/.venv/bin/python"
[ $# -ge 2 ] || { echo "usage: $0 \"A_ENV...\" \"B_ENV...\" [ONLY] [PAIRS]" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start() {   # start NAME "ENV..." ; sets PORT (in this shell, so the trap stops it)
  local name=$1 settings=$2
  # shellcheck disable=SC2086 # the settings are words on purpose
  env $settings "$PY" -m leveret broker --port 0 --prometheus-port 0 --management-port 0 \
      --data-dir "$work/$name" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    if grep -q 'listening on' "$work/$name.log"; then break; fi
    sleep 0.1
  done
  PORT=$(grep -oP 'Leveret \S+ listening on [^\s]+:\K\d+' "$work/$name.log")
}

start a "$1"
A_AMQP=$PORT
start b "$2"
B_AMQP=$PORT
echo "A ($1): amqp $A_AMQP   B ($2): amqp $B_AMQP" >&2
PAIRS="${4:-3}" ONLY="${3:-^pubsub-16$}" \
  bash "$HERE/compare.sh" "amqp://guest:guest@127.0.0.1:$A_AMQP/" "amqp://guest:guest@127.0.0.1:$B_AMQP/"

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
[ $# -ge 2 ] || { echo "usage: $0 \"A_ENV...\" \"B_ENV...\" [ONLY] [PAIRS]" >&2; exit 2; }
source "$HERE/brokers.sh"

# shellcheck disable=SC2086 # the settings are words on purpose
start a $1
A_AMQP=$PORT
start b $2
B_AMQP=$PORT
echo "A ($1): amqp $A_AMQP   B ($2): amqp $B_AMQP" >&2
PAIRS="${4:-3}" ONLY="${3:-^pubsub-16$}" \
  bash "$HERE/compare.sh" "amqp://guest:guest@127.0.0.1:$A_AMQP/" "amqp://guest:guest@127.0.0.1:$B_AMQP/"

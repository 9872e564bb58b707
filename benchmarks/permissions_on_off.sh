#!/usr/bin/env bash
# permissions_on_off.sh: compare.sh on the per-message path, with the permission
# checks (B: this worktree) against without them (A: $BASE, by default main as
# it was before its first merge of sec), both plain AMQP on fixed ports.
#
# Run it under the benchmark lock, from the repository:
#   flock /tmp/bench.lock benchmarks/permissions_on_off.sh
# Knobs: BASE (see above), PAIRS (3), BENCH_SECONDS (10),
#        ONLY (^(pubsub-16|pubsub-1k|confirms-16)$), URL_USER (guest:guest),
#        SWAP (0; 1: the checked build as A, to see what the order of the runs
#        costs, e.g. a broker still cleaning up its deleted durable queue).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PY:-$ROOT/.venv/bin/python}"
# main's first parent at its first "Merge sec": the broker without the checks.
SEC_MERGE="$(git -C "$ROOT" log --first-parent --merges --format=%H --grep='^Merge sec' main | tail -n 1)"
BASE="${BASE:-${SEC_MERGE:+$SEC_MERGE^1}}"
BASE="${BASE:?set BASE to a commit without the permission checks}"
WORK="$(mktemp -d /tmp/leveret-perm-bench.XXXXXX)"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  true
}
trap cleanup EXIT

# The base build: the same venv, run from an export of $BASE (its own leveret/).
mkdir -p "$WORK/base"
git -C "$ROOT" archive "$BASE" | tar -x -C "$WORK/base"

start() {  # dir port name
  (cd "$1" && exec "$PY" -m leveret broker --port "$2" --management-port 0 --prometheus-port 0 \
     --data-dir "$WORK/data-$3") >"$WORK/$3.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q 'listening on' "$WORK/$3.log" && return; sleep 0.1; done
  echo "broker $3 did not start" >&2; cat "$WORK/$3.log" >&2; exit 1
}
start "$WORK/base" 5691 base
start "$ROOT" 5692 checked

BASE_URL="amqp://${URL_USER:-guest:guest}@127.0.0.1:5691/"
CHECKED_URL="amqp://${URL_USER:-guest:guest}@127.0.0.1:5692/"
if [[ "${SWAP:-0}" == 1 ]]; then set -- "$CHECKED_URL" "$BASE_URL"; else set -- "$BASE_URL" "$CHECKED_URL"; fi
ONLY="${ONLY:-^(pubsub-16|pubsub-1k|confirms-16)$}" PY="$PY" "$HERE/compare.sh" "$@"

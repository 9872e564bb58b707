#!/usr/bin/env bash
# compare.sh URL_A [URL_B]
#
# A copy of ../shared/bench/compare.sh that runs this folder's amqp_bench.py
# (which speaks amqps:// too), and by default swaps the order within every
# second pair (ORDER=abba): on this 2-core machine whichever broker runs
# second in a pair was seen to lose up to 10-20 %, whatever its build, so a
# fixed order biases B/A. ORDER=ab runs A first always, as the shared script.
#
# Runs every benchmark variant against broker A and broker B alternately:
#   round 1: v1:A v1:B  v2:A v2:B ...   round 2: v1:B v1:A ...   (PAIRS rounds)
# so each (A,B) pair is measured back to back under the same background noise,
# and prints a table of medians plus the per-pair ratio B/A for every metric.
# With only URL_A it runs PAIRS repeats of A (that is how the baseline is taken).
#
# Environment knobs (defaults in brackets):
#   PY [a venv made on first use under ~/.cache/leveret-bench]  python with pamqp, uvloop, celery
#   PAIRS [3]        rounds (pairs)           BENCH_SECONDS [10]  steady-state window
#   BENCH_WARMUP [2] excluded warm-up         CONNS [400]  connections scenario size
#   TASKS [5000]     celery tasks             MESSAGES [200000] fill-drain messages
#   ONLY [regex]     run only variants whose label matches (grep -E)
#   ORDER [abba]     abba: B first in even pairs; ab: A first in every pair
# The *-paced variants publish at a fixed rate below saturation: what they
# compare is the broker CPU per message (the *_per_broker_core rows), which
# varies far less from run to run than a saturated throughput does.
#   SKIP [regex]     skip variants whose label matches
#   CEILING [0]      1 = also measure the generator ceiling (null broker) each round
#   OUT [results/run-<date>.jsonl]  raw JSON lines (one per run); re-summarize with
#                    $PY amqp_bench.py --summarize FILE.jsonl
# Both brokers must be reachable on this machine (loopback).  Queues/exchanges
# used are named bench.*.<pid> and deleted after each run.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "${PY:-}" ]; then
  VENV="${HOME}/.cache/leveret-bench/venv"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q pamqp uvloop celery >/dev/null || { echo "bench venv setup failed" >&2; exit 2; }
  fi
  PY="$VENV/bin/python"
fi
A="${1:?usage: compare.sh URL_A [URL_B]}"
B="${2:-}"
PAIRS="${PAIRS:-3}"
SECS="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-2}"
CONNS="${CONNS:-400}"
TASKS="${TASKS:-5000}"
MESSAGES="${MESSAGES:-200000}"
ONLY="${ONLY:-}"
SKIP="${SKIP:-}"
CEILING="${CEILING:-0}"
mkdir -p "$HERE/results"
OUT="${OUT:-$HERE/results/run-$(date +%Y%m%d-%H%M%S).jsonl}"
BENCH="$HERE/amqp_bench.py"

VARIANTS=(
  "pubsub-16|--scenario pubsub --size 16"
  "pubsub-1k|--scenario pubsub --size 1024"
  "pubsub-autoack-16|--scenario pubsub-autoack --size 16"
  "pubsub-autoack-1k|--scenario pubsub-autoack --size 1024"
  "confirms-16|--scenario confirms --size 16"
  "pubsub-16-paced|--scenario pubsub --size 16 --rate 40000"
  "pubsub-1k-paced|--scenario pubsub --size 1024 --rate 40000"
  "confirms-16-paced|--scenario confirms --size 16 --rate 30000"
  "confirms-1k|--scenario confirms --size 1024"
  "fanout-16|--scenario fanout --size 16"
  "fanout-1k|--scenario fanout --size 1024"
  "latency-16|--scenario latency --size 16 --rate 1000"
  "fill-drain-16|--scenario fill-drain --size 16 --messages $MESSAGES"
  "fill-drain-1k|--scenario fill-drain --size 1024 --messages $MESSAGES"
  "connections-$CONNS|--scenario connections --conns $CONNS"
  "celery-prefork2|--scenario celery --celery-pool prefork --celery-concurrency 2 --celery-results none --tasks $TASKS --phase-timeout 120"
  "celery-solo|--scenario celery --celery-pool solo --celery-results none --tasks $TASKS --phase-timeout 120"
  "celery-prefork2-rpc|--scenario celery --celery-pool prefork --celery-concurrency 2 --celery-results rpc --tasks $TASKS --phase-timeout 120"
  "celery-solo-rpc|--scenario celery --celery-pool solo --celery-results rpc --tasks $TASKS --phase-timeout 120"
)
CEILING_VARIANTS=(
  "ceiling-pubsub-16|--scenario pubsub --size 16 --null-broker"
  "ceiling-pubsub-1k|--scenario pubsub --size 1024 --null-broker"
  "ceiling-autoack-16|--scenario pubsub-autoack --size 16 --null-broker"
  "ceiling-confirms-16|--scenario confirms --size 16 --null-broker"
  "ceiling-fanout-16|--scenario fanout --size 16 --null-broker"
)

selected() {  # label -> 0 if it should run
  [[ -n "$ONLY" ]] && ! grep -qE -- "$ONLY" <<<"$1" && return 1
  [[ -n "$SKIP" ]] && grep -qE -- "$SKIP" <<<"$1" && return 1
  return 0
}

run_one() {  # label tag pair url args...
  local label=$1 tag=$2 pair=$3 url=$4; shift 4
  local t0=$SECONDS line
  # shellcheck disable=SC2068
  line=$("$PY" "$BENCH" --url "$url" $@ --seconds "$SECS" --warmup "$WARMUP" \
         --label "$label" --tag "$tag" --pair "$pair" 2>>"$OUT.stderr" | tail -n 1)
  if [[ "$line" != \{* ]]; then
    line="{\"label\": \"$label\", \"tag\": \"$tag\", \"pair\": $pair, \"error\": \"harness produced no JSON (see $OUT.stderr)\"}"
  fi
  echo "$line" >>"$OUT"
  local short
  short=$("$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); m=r.get("metrics") or {}; p=r.get("primary"); print(("ERROR "+r["error"][:100]) if r.get("error") else f"{p}={m.get(p)}")' "$line" 2>/dev/null)
  printf '%-22s %-4s pair %s  %4ss  %s\n' "$label" "$tag" "$pair" "$((SECONDS - t0))" "$short" >&2
}

{
  echo "# compare.sh $(date -Is)"
  echo "# host: $(hostname)  cores: $(nproc)  mem: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)  kernel: $(uname -r)"
  echo "# python: $("$PY" -c 'import sys,pamqp,uvloop; print(sys.version.split()[0], "pamqp", pamqp.__version__, "uvloop", uvloop.__version__)')"
  echo "# A=$A  B=${B:-<none>}  pairs=$PAIRS  order=${ORDER:-abba}  seconds=$SECS warmup=$WARMUP  out=$OUT"
} >&2

for ((i = 1; i <= PAIRS; i++)); do
  if [[ "$CEILING" == 1 ]]; then
    for v in "${CEILING_VARIANTS[@]}"; do
      label=${v%%|*}; args=${v#*|}
      selected "$label" || continue
      run_one "$label" null "$i" "$A" $args
    done
  fi
  for v in "${VARIANTS[@]}"; do
    label=${v%%|*}; args=${v#*|}
    selected "$label" || continue
    if [[ -n "$B" && "${ORDER:-abba}" == abba && $((i % 2)) == 0 ]]; then
      run_one "$label" B "$i" "$B" $args
      run_one "$label" A "$i" "$A" $args
    else
      run_one "$label" A "$i" "$A" $args
      [[ -n "$B" ]] && run_one "$label" B "$i" "$B" $args
    fi
  done
done

echo >&2
echo "# results: $OUT" >&2
"$PY" "$BENCH" --summarize "$OUT"

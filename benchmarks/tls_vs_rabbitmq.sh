#!/usr/bin/env bash
# tls_vs_rabbitmq.sh: compare.sh pubsub-16 and confirms-16 over TLS, RabbitMQ (A)
# against Leveret (B), both with the same throw-away certificate.
#
# Run it under the benchmark lock, from the repository:
#   flock /tmp/bench.lock benchmarks/tls_vs_rabbitmq.sh
# RabbitMQ (Debian's package) is started with a TLS listener on 5671 for the run
# and stopped after; Leveret listens for TLS on $LEVERET_TLS_PORT (5681).
# Knobs: PAIRS (3), BENCH_SECONDS (10), ONLY (pubsub-16|confirms-16).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PY:-$ROOT/.venv/bin/python}"
WORK="$(mktemp -d /tmp/leveret-tls-bench.XXXXXX)"
LEVERET_TLS_PORT="${LEVERET_TLS_PORT:-5681}"
LEVERET_PID=""
RABBITMQ_STARTED=0

cleanup() {
  [[ -n "$LEVERET_PID" ]] && kill "$LEVERET_PID" 2>/dev/null && wait "$LEVERET_PID" 2>/dev/null
  [[ "$RABBITMQ_STARTED" == 1 ]] && { rabbitmqctl -q stop >/dev/null 2>&1 || true; }
  true
}
trap cleanup EXIT

# A RabbitMQ someone else started has no TLS listener of ours: leave it alone.
if rabbitmqctl -q status >/dev/null 2>&1; then
  echo "RabbitMQ is already running (not started here): stop it first" >&2; exit 1
fi

# One CA, one server certificate for localhost, both brokers use it.
"$PY" - "$WORK" <<'PYEOF'
import sys, trustme
work = sys.argv[1]
ca = trustme.CA()
cert = ca.issue_cert('localhost', '127.0.0.1')
ca.cert_pem.write_to_path(f'{work}/ca.pem')
cert.cert_chain_pems[0].write_to_path(f'{work}/server.crt')
cert.private_key_pem.write_to_path(f'{work}/server.key')
PYEOF
chmod 755 "$WORK"; chmod 644 "$WORK"/*   # RabbitMQ runs as its own user

cat >"$WORK/rabbitmq.conf" <<CONF
listeners.tcp.default = 5672
listeners.ssl.default = 5671
ssl_options.cacertfile = $WORK/ca.pem
ssl_options.certfile = $WORK/server.crt
ssl_options.keyfile = $WORK/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
ulimit -n 65536 2>/dev/null || true
RABBITMQ_CONFIG_FILE="$WORK/rabbitmq.conf" rabbitmq-server -detached
RABBITMQ_STARTED=1
for _ in $(seq 60); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
rabbitmq-diagnostics -q listeners | grep -q 5671 || { echo "RabbitMQ has no TLS listener" >&2; exit 1; }

LEVERET_TLS_CERTFILE="$WORK/server.crt" LEVERET_TLS_KEYFILE="$WORK/server.key" \
LEVERET_TLS_PORT="$LEVERET_TLS_PORT" \
  "$PY" -m leveret broker --port 0 --management-port 0 --prometheus-port 0 --data-dir "$WORK/data" \
  >"$WORK/leveret.log" 2>&1 &
LEVERET_PID=$!
for _ in $(seq 100); do grep -q 'for TLS on' "$WORK/leveret.log" && break; sleep 0.1; done

QUERY="cafile=$WORK/ca.pem&server_hostname=localhost"
ONLY="${ONLY:-^(pubsub-16|confirms-16)$}" PY="$PY" "$HERE/compare.sh" \
  "amqps://guest:guest@127.0.0.1:5671/?$QUERY" \
  "amqps://guest:guest@127.0.0.1:$LEVERET_TLS_PORT/?$QUERY"

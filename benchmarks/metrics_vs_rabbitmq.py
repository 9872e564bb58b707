"""Comparison (not a test): Leveret's Prometheus families against a running
RabbitMQ's, for the same topology.

    ../shared/tools/rabbitmq.sh start && rabbitmq-plugins enable rabbitmq_prometheus
    python benchmarks/metrics_vs_rabbitmq.py [--rabbitmq amqp://guest:guest@127.0.0.1:5672/]
                                             [--rabbitmq-metrics http://127.0.0.1:15692]

Starts a Leveret of this checkout on free ports, builds on both brokers the
topology of ``tests/metrics/test_reference.py`` (two queues, ready and
unacked messages, a prefetch-5 consumer, a confirm-mode publisher, an
unroutable mandatory message, basic.get in both modes), scrapes
``/metrics`` and ``/metrics/per-object`` of both, and prints per endpoint:
the families both serve alike; those only RabbitMQ serves (and whether
``docs/metrics.md`` lists them as left out); those only Leveret serves;
differences of type or labels (and whether the doc lists them); and the
per-queue values of the topology's queues where they differ.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pika
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / 'docs' / 'metrics.md'
ENDPOINTS = ('/metrics', '/metrics/per-object')
FORMAT_LABELS = {'le', 'quantile'}
QUEUES = ('cmp.held', 'cmp.ready')


def families(text: str) -> dict[str, tuple[str, set[str], list[tuple[dict[str, str], float]]]]:
    found = {}
    for metric in text_string_to_metric_families(text):
        labels: set[str] = set()
        samples = []
        for sample in metric.samples:
            labels.update(set(sample.labels) - FORMAT_LABELS)
            samples.append((dict(sample.labels), sample.value))
        found[metric.name] = (metric.type, labels, samples)
    return found


def doc_table(heading: str) -> list[str]:
    section = DOC.read_text().split(f'### {heading}', 1)[1].split('\n#', 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if line.startswith('| `'):
            names.extend(re.findall(r'`([a-z_*]+)`', line.split(' | ')[0]))
    return names


def listed(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(n, p) for n in (name, name + '_total') for p in patterns)


def build_topology(url: str) -> pika.BlockingConnection:
    """The topology of tests/metrics/test_reference.py, kept open."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for name in QUEUES:
        ch.queue_delete(name)
    ch.queue_declare('cmp.held', durable=True)
    ch.queue_declare('cmp.ready')
    ch.confirm_delivery()
    for i in range(8):
        ch.basic_publish('', 'cmp.held', f'held {i}'.encode())
        ch.basic_publish('', 'cmp.ready', f'ready {i}'.encode())
    try:
        ch.basic_publish('amq.direct', 'nowhere', b'lost', mandatory=True)
    except pika.exceptions.UnroutableError:
        pass
    getter = conn.channel()
    getter.basic_get('cmp.ready', auto_ack=False)
    getter.basic_get('cmp.ready', auto_ack=True)
    consumer = conn.channel()
    consumer.basic_qos(prefetch_count=5)
    consumer.basic_consume('cmp.held', lambda *args: None)
    conn.process_data_events(time_limit=0.5)
    return conn


def start_leveret(tmp: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    log_path = tmp / 'broker.log'
    log = open(log_path, 'wb')
    proc = subprocess.Popen([sys.executable, '-m', 'leveret', 'broker', '--port', '0',
                             '--prometheus-port', '0', '--management-port', '0',
                             '--data-dir', str(tmp / 'data')], stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log_path.read_text()
        amqp = re.search(r'listening on [^\s]+:(\d+)', text)
        metrics = re.search(r'Prometheus metrics on http://[^\s]+:(\d+)/', text)
        if amqp and metrics:
            return (proc, f'amqp://guest:guest@127.0.0.1:{amqp.group(1)}/',
                    f'http://127.0.0.1:{metrics.group(1)}')
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(log_path.read_text())


def scrape(base: str) -> dict[str, dict]:
    # RabbitMQ's rates and per-object counters are refreshed by its own
    # collection interval (5 s by default): give it time to catch up.
    return {path: families(urllib.request.urlopen(base + path, timeout=60).read().decode())
            for path in ENDPOINTS}


def queue_values(fams: dict, endpoint: str) -> dict[str, dict[str, float]]:
    values: dict[str, dict[str, float]] = {}
    if endpoint != '/metrics/per-object':
        return values
    for name, (_, _, samples) in fams.items():
        if not name.startswith('rabbitmq_queue_'):
            continue
        for labels, value in samples:
            if labels.get('queue') in QUEUES and labels.get('vhost', '/') == '/':
                values.setdefault(name, {})[labels['queue']] = value
    return values


def compare(rabbit: dict, ours: dict, endpoint: str) -> dict:
    left_out, differ = doc_table('Left out'), doc_table('Labels that differ')
    alike, only_rabbit, only_ours, differing = [], [], [], []
    for name, (kind, labels, _) in sorted(rabbit.items()):
        if name not in ours:
            only_rabbit.append({'family': name, 'listed_as_left_out': listed(name, left_out)})
            continue
        our_kind, our_labels, _ = ours[name]
        if our_kind == kind and our_labels == labels:
            alike.append(name)
        else:
            differing.append({'family': name, 'rabbitmq': [kind, sorted(labels)],
                              'leveret': [our_kind, sorted(our_labels)],
                              'listed': listed(name, differ)})
    only_ours = sorted(name for name in ours if name not in rabbit)
    ours_q, rabbit_q = queue_values(ours, endpoint), queue_values(rabbit, endpoint)
    # Of the families both serve (the others are counted above).
    values = {name: {'rabbitmq': rabbit_q[name], 'leveret': ours_q[name]}
              for name in sorted(rabbit_q) if name in ours_q and rabbit_q[name] != ours_q[name]}
    return {
        'alike': len(alike),
        'only_rabbitmq': len(only_rabbit),
        'only_rabbitmq_not_listed': [f['family'] for f in only_rabbit
                                     if not f['listed_as_left_out']],
        'only_leveret': [n for n in only_ours if not n.startswith(('leveret_', 'python_'))],
        'only_leveret_own': len([n for n in only_ours if n.startswith(('leveret_', 'python_'))]),
        'type_or_labels_differ': differing,
        'topology_queue_families_compared': len(set(rabbit_q) & set(ours_q)),
        'topology_queue_values_differ': values,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--rabbitmq', default='amqp://guest:guest@127.0.0.1:5672/')
    parser.add_argument('--rabbitmq-metrics', default='http://127.0.0.1:15692')
    parser.add_argument('--settle', type=float, default=11.0,
                        help="seconds to wait for RabbitMQ's collection interval")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, metrics = start_leveret(Path(tmp))
        try:
            rabbit_conn = build_topology(args.rabbitmq)
            our_conn = build_topology(url)
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline:
                rabbit_conn.process_data_events(time_limit=0.5)
                our_conn.process_data_events(time_limit=0.5)
            rabbit, ours = scrape(args.rabbitmq_metrics), scrape(metrics)
            for conn in (rabbit_conn, our_conn):
                ch = conn.channel()
                for name in QUEUES:
                    ch.queue_delete(name)
                conn.close()
        finally:
            proc.terminate()
            proc.wait(30)
    report = {endpoint: compare(rabbit[endpoint], ours[endpoint], endpoint)
              for endpoint in ENDPOINTS}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

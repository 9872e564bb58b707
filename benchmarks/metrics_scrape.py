"""Benchmark (not a test): a Prometheus scrape of a broker with many queues,
and how long AMQP waits meanwhile.

    python benchmarks/metrics_scrape.py [--queues 10000] [--scrapes 10]

Starts a broker, declares the queues (a message in every tenth), then runs a
witness: a separate process that does AMQP round trips (a passive
queue.declare) back to back and records each one's time.  The broker is
scraped ``--scrapes`` times on ``/metrics`` and on ``/metrics/per-object``;
the figures are each scrape's duration and the longest round trip of the
witness during the scrapes (a stall of the event loop shows as a long round
trip), against the longest one before them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pika


def start_broker(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    log = open(log_path, 'wb')
    proc = subprocess.Popen([sys.executable, '-m', 'leveret', 'broker', '--port', '0',
                             '--prometheus-port', '0', '--management-port', '0',
                             '--data-dir', str(data_dir)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log_path.read_text()
        amqp = re.search(r'listening on [^\s]+:(\d+)', text)
        metrics = re.search(r'Prometheus metrics on http://[^\s]+:(\d+)/', text)
        if amqp and metrics:
            return proc, int(amqp.group(1)), int(metrics.group(1))
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(log_path.read_text())


def witness(url: str, seconds: float, out: mp.Queue) -> None:
    """Round trips back to back for ``seconds``: (wall time at start, seconds)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    samples = []
    end = time.time() + seconds
    while time.time() < end:
        start = time.time()
        ch.queue_declare('bench.q.0', passive=True)
        samples.append((start, time.time() - start))
    conn.close()
    out.put(samples)


def summary(rtts: list[float]) -> dict[str, float | int] | None:
    """Median, 99th percentile and longest round trip (ms), and how many took
    longer than 50 ms."""
    if not rtts:
        return None
    ordered = sorted(rtts)
    return {'round_trips': len(ordered),
            'median_ms': round(statistics.median(ordered) * 1000, 2),
            'p99_ms': round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
            'max_ms': round(ordered[-1] * 1000, 2),
            'over_50ms': sum(1 for r in ordered if r > 0.05)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--queues', type=int, default=10000)
    parser.add_argument('--scrapes', type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port, metrics_port = start_broker(Path(tmp) / 'data', Path(tmp) / 'broker.log')
        try:
            url = f'amqp://guest:guest@127.0.0.1:{port}/'
            conn = pika.BlockingConnection(pika.URLParameters(url))
            ch = conn.channel()
            for i in range(args.queues):
                ch.queue_declare(f'bench.q.{i}')
                if i % 10 == 0:
                    ch.basic_publish('', f'bench.q.{i}', b'x' * 100)
            conn.close()
            base = f'http://127.0.0.1:{metrics_port}'
            urllib.request.urlopen(base + '/metrics').read()        # warm up
            out: mp.Queue = mp.Queue()
            before = 2.0
            length = before + args.scrapes * 2 * 2.0 + 2.0
            probe = mp.Process(target=witness, args=(url, length, out))
            probe.start()
            time.sleep(before)
            windows: dict[str, list[tuple[float, float]]] = {'/metrics': [],
                                                             '/metrics/per-object': []}
            sizes = {}
            scrapes_end = time.time() + length - before - 1.0
            for path in windows:
                for _ in range(args.scrapes):
                    start = time.time()
                    body = urllib.request.urlopen(base + path, timeout=60).read()
                    windows[path].append((start, time.time()))
                    sizes[path] = len(body)
                    if time.time() > scrapes_end:
                        break
                    time.sleep(0.2)
            samples = out.get(timeout=length + 30)
            probe.join()
        finally:
            proc.terminate()
            proc.wait(30)
    quiet = [rtt for start, rtt in samples if start < windows['/metrics'][0][0]]
    report = {'queues': args.queues, 'witness_round_trips': len(samples),
              'witness_before_scrapes': summary(quiet)}
    for path, spans in windows.items():
        durations = [end - start for start, end in spans]
        during = [rtt for start, rtt in samples
                  if any(s <= start + rtt and start <= e for s, e in spans)]
        report[path] = {
            'scrapes': len(spans), 'bytes': sizes[path],
            'median_ms': round(statistics.median(durations) * 1000, 1),
            'max_ms': round(max(durations) * 1000, 1),
            'witness_during_scrapes': summary(during),
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

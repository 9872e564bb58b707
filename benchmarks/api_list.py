"""Benchmark (not a test): the management API's queue list with 10,000 queues.

Declares ``--queues`` queues, then polls ``GET /api/queues?page=1&page_size=500``
(and once the whole unpaged list) while a witness client in another process
does publish + get round trips: its waits show how long the broker's event
loop was held.  Reports the API's answer times and the witness's p99 and
worst wait during the polls (and before them, for comparison).

    python benchmarks/api_list.py          # starts a broker of its own

Goal: the page answers in under 200 ms and the loop is never held longer
than 50 ms.  Run it under ``flock /tmp/bench.lock``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parent))
from declare_rate import witness  # noqa: E402


def start_broker(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    log = data_dir / 'broker.log'
    proc = subprocess.Popen(
        [sys.executable, '-m', 'leveret', 'broker', '--port', '0', '--management-port', '0',
         '--data-dir', str(data_dir / 'data')],
        stdout=open(log, 'wb'), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log.read_text()
        amqp = re.search(r'Leveret \S+ listening on [^\s]+:(\d+)', text)
        api = re.search(r'management API at (http://\S+/api)/', text)
        if amqp and api:
            return proc, f'amqp://guest:guest@127.0.0.1:{amqp.group(1)}/', api.group(1)
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f'broker did not start:\n{log.read_text()}')


async def declare(url: str, queues: int) -> aio_pika.abc.AbstractConnection:
    """Declare the queues; the connection stays open (it holds nothing, but
    closing it at the end keeps aiormq quiet)."""
    connection = await aio_pika.connect(url)
    channels = [await connection.channel() for _ in range(8)]

    async def some(i: int) -> None:
        for n in range(i, queues, len(channels)):
            await channels[i].declare_queue(f'bench.list.q{n:05d}')

    await asyncio.gather(*(some(i) for i in range(len(channels))))
    return connection


def get(api: str, path: str) -> tuple[float, int]:
    request = urllib.request.Request(api + path)
    request.add_header('Authorization', 'Basic ' + base64.b64encode(b'guest:guest').decode())
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as answer:
        size = len(answer.read())
    return time.perf_counter() - started, size


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * p) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--queues', type=int, default=10_000)
    parser.add_argument('--polls', type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, api = start_broker(Path(tmp))
        loop = asyncio.new_event_loop()
        connection = None
        try:
            connection = loop.run_until_complete(declare(url, args.queues))
            stop, out = mp.Event(), mp.Queue()
            watcher = mp.Process(target=witness, args=(url, stop, out))
            watcher.start()
            time.sleep(6)                       # the witness alone (and a rate sample)
            polls_from = time.time()
            pages = []
            for _ in range(args.polls):
                pages.append(get(api, '/queues?page=1&page_size=500')[0])
                time.sleep(0.3)
            whole_from = time.time()
            whole, size = get(api, '/queues')
            time.sleep(0.2)
            stop.set()
            waits = out.get(timeout=60)
            watcher.join(10)
        finally:
            if connection is not None:
                loop.run_until_complete(connection.close())
            proc.terminate()
            proc.wait(15)
            loop.close()
    before = [w for t, w in waits if t < polls_from]
    during = [w for t, w in waits if polls_from <= t < whole_from]
    whole_list = [w for t, w in waits if t >= whole_from]
    result = {
        'queues': args.queues,
        'page_500_median_ms': round(statistics.median(pages) * 1000, 1),
        'page_500_worst_ms': round(max(pages) * 1000, 1),
        'whole_list_ms': round(whole * 1000, 1), 'whole_list_bytes': size,
        'witness_before_p99_ms': round(percentile(before, 0.99) * 1000, 2),
        'witness_before_worst_ms': round(max(before) * 1000, 2),
        'witness_during_pages_p99_ms': round(percentile(during, 0.99) * 1000, 2),
        'witness_during_pages_worst_ms': round(max(during) * 1000, 2),
        'witness_during_whole_list_worst_ms': round(max(whole_list) * 1000, 2),
    }
    print(json.dumps(result))


if __name__ == '__main__':
    main()

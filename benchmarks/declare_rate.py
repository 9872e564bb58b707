"""Benchmark (not a test): durable declarations per second, and what they cost
the other clients.

Declares ``--queues`` durable queues (10,000), each bound to a durable
exchange, from ``--declarers`` concurrent channels, while a witness client in
another process does publish + get round trips on a queue of its own.
Reports queue declarations/s, bindings/s and the witness's worst and p99
round trip.  Each declare-ok and bind-ok is sent only once its journal record
is synced, so this measures the definitions journal end to end.

    python benchmarks/declare_rate.py                 # starts a broker of its own
    python benchmarks/declare_rate.py --url amqp://guest:guest@127.0.0.1:5672/

Run it under ``flock /tmp/bench.lock``.  RabbitMQ 3.10 on this machine:
348 queues/s and 722 bindings/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aio_pika
import pika


def witness(url: str, stop: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """publish + basic.get round trips until ``stop``; sends ``(wall time, wait)``
    pairs, seconds."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    queue = ch.queue_declare('', exclusive=True).method.queue
    waits = []
    while not stop.is_set():
        started = time.perf_counter()
        ch.basic_publish('', queue, b'ping')
        while ch.basic_get(queue, auto_ack=True)[0] is None:
            pass
        waits.append((time.time(), time.perf_counter() - started))
        time.sleep(0.005)
    conn.close()
    out.put(waits)


async def declare(url: str, queues: int, declarers: int, prefix: str,
                  phases: dict[str, float]) -> tuple[float, float]:
    connection = await aio_pika.connect(url)
    setup = await connection.channel()
    exchange = await setup.declare_exchange(f'{prefix}.x', 'direct', durable=True)
    names = [f'{prefix}.q{i}' for i in range(queues)]
    declared: list[aio_pika.abc.AbstractQueue] = []

    async def declare_some(part: list[str], channel: aio_pika.abc.AbstractChannel) -> None:
        for name in part:
            declared.append(await channel.declare_queue(name, durable=True))

    channels = [await connection.channel() for _ in range(declarers)]
    phases['declare'] = time.time()
    started = time.perf_counter()
    await asyncio.gather(*(declare_some(names[i::declarers], channels[i])
                           for i in range(declarers)))
    queue_seconds = time.perf_counter() - started

    async def bind_some(part: list[aio_pika.abc.AbstractQueue]) -> None:
        for queue in part:
            await queue.bind(exchange, routing_key=queue.name)

    phases['bind'] = time.time()
    started = time.perf_counter()
    await asyncio.gather(*(bind_some(declared[i::declarers]) for i in range(declarers)))
    bind_seconds = time.perf_counter() - started
    phases['delete'] = time.time()
    for queue in declared:
        await queue.delete(if_unused=False, if_empty=False)
    await exchange.delete()
    phases['end'] = time.time()
    await connection.close()
    return queues / queue_seconds, queues / bind_seconds


def start_broker(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    log = data_dir / 'broker.log'
    proc = subprocess.Popen(
        [sys.executable, '-m', 'leveret', 'broker', '--port', '0', '--management-port', '0',
         '--data-dir', str(data_dir / 'data')],
        stdout=open(log, 'wb'), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.search(r'Leveret \S+ listening on [^\s]+:(\d+)', log.read_text())
        if found:
            return proc, f'amqp://guest:guest@127.0.0.1:{found.group(1)}/'
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f'broker did not start:\n{log.read_text()}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--url', help='an AMQP URL (default: start a Leveret broker)')
    parser.add_argument('--queues', type=int, default=10_000)
    parser.add_argument('--declarers', type=int, default=4,
                        help='concurrent declaring channels (default 4)')
    args = parser.parse_args()
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url
        if url is None:
            proc, url = start_broker(Path(tmp))
        try:
            stop, out = mp.Event(), mp.Queue()
            watcher = mp.Process(target=witness, args=(url, stop, out))
            watcher.start()
            time.sleep(0.5)
            prefix = f'bench.decl.{os.getpid()}'
            phases: dict[str, float] = {}
            queues_per_s, bindings_per_s = asyncio.run(
                declare(url, args.queues, args.declarers, prefix, phases))
            stop.set()
            timed = out.get(timeout=30)
            waits = sorted(wait for _, wait in timed)
            watcher.join(10)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(15)
    result = {
        'queues': args.queues, 'declarers': args.declarers,
        'queues_per_s': round(queues_per_s), 'bindings_per_s': round(bindings_per_s),
        'witness_round_trips': len(waits),
        'witness_p99_ms': round(waits[int(len(waits) * 0.99) - 1] * 1000, 2),
        'witness_worst_ms': round(waits[-1] * 1000, 2),
    }
    bounds = [('declaring', 'declare', 'bind'), ('binding', 'bind', 'delete'),
              ('deleting', 'delete', 'end')]
    for label, start, end in bounds:
        during = sorted(w for t, w in timed if phases[start] <= t < phases[end])
        if during:
            result[f'witness_{label}_p99_ms'] = round(during[int(len(during) * 0.99) - 1]
                                                      * 1000, 2)
            result[f'witness_{label}_worst_ms'] = round(during[-1] * 1000, 2)
    print(json.dumps(result))


if __name__ == '__main__':
    main()

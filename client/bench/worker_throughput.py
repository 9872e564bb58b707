"""Tasks per second: the Leveret worker against Celery's prefork worker,
same broker, same concurrency, in one run. A benchmark, not a test.

    python -m leveret.client.bench.worker_throughput [--tasks 10000] [--concurrency 2]
        [--broker-url URL] [--leveret-pool prefork] [--modes ignore,rpc,redis]
        [--redis-url URL] [--rounds 1]

Without ``--broker-url`` it starts a Leveret broker of its own. For each
worker and each mode (results ignored; results sent back in the rpc://
format; results stored in Redis), the queue is filled with ``--tasks``
trivial tasks first, then the worker is started. The clock starts when the
first message leaves the queue (so start-up is not counted) and stops when
the last task is done: all results are in the reply queue (rpc mode), or in
Redis (redis mode), or the result of a final task sent after the others is
(ignore mode).

In redis mode both workers run the same Celery app (``celery_tasks``, its
backend a Redis database emptied before each run): Celery's prefork worker,
and the Leveret worker storing through Celery's Redis backend from its pool
processes. Without ``--redis-url`` a ``redis-server`` of its own is started.
Both workers log at WARNING level, task events off (the defaults of both).

With ``--rounds N`` each mode is run N times, the two workers taking turns
to go first (Leveret then Celery, Celery then Leveret, ...): the ratio of
each round is of two runs next to each other in time, and the figure given
is their median, so that the machine speeding up or slowing down during the
run (it does, by a tenth and more) favours neither worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pika

from leveret.client import App

ROOT = Path(__file__).resolve().parents[2]


#: Results ignored, rpc:// results, a Redis result backend.
MODES = ('ignore', 'rpc', 'redis')


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    log_path = workdir / 'broker.log'
    proc = subprocess.Popen(
        [sys.executable, '-m', 'leveret', 'broker', '--port', '0', '--management-port', '0',
         '--prometheus-port', '0', '--data-dir', str(workdir / 'data'), '--log-level', 'info'],
        cwd=ROOT, stdout=open(log_path, 'wb'), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(rb'listening on [^\s]+:(\d+)', log_path.read_bytes())
        if found:
            return proc, f'amqp://guest:guest@127.0.0.1:{int(found.group(1))}/'
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f'broker did not start:\n{log_path.read_text()}')


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(['redis-server', '--port', str(port), '--bind', '127.0.0.1',
                             '--save', '', '--appendonly', 'no', '--dir', str(workdir)],
                            stdout=open(workdir / 'redis.log', 'wb'), stderr=subprocess.STDOUT)
    url = f'redis://127.0.0.1:{port}/0'
    import redis

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if redis.Redis.from_url(url).ping():
                return proc, url
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError('redis-server did not start')


def worker_command(kind: str, url: str, queue: str, concurrency: int, pool: str,
                   events: bool = False, mode: str = 'rpc') -> list[str]:
    extra = ['-E'] if events else []
    if kind == 'leveret' and mode == 'redis':
        return [sys.executable, '-m', 'leveret', 'worker', '-A',
                'leveret.client.bench.celery_tasks', '-b', url, '-P', pool, '-c',
                str(concurrency), '-Q', queue, '-l', 'warning', '--without-mingle',
                '-n', f'bench-leveret-{queue}@%h', *extra]
    if kind == 'celery':
        return [sys.executable, '-m', 'celery', '-A', 'leveret.client.bench.celery_tasks', '-b',
                url.rstrip('/') + '//', 'worker', '-P', 'prefork', '-c', str(concurrency),
                '-Q', queue, '-l', 'warning', '--without-mingle', '--without-gossip',
                '-n', f'bench-celery-{queue}@%h', *extra]
    return [sys.executable, '-m', 'leveret', 'worker', '-A', 'leveret.client.bench.leveret_tasks',
            '-b', url, '-P', pool, '-c', str(concurrency), '-Q', queue, '-l', 'warning',
            '--without-mingle', '-n', f'bench-leveret-{queue}@%h', *extra]


def queue_depth(channel: Any, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


async def preload(app: App, queue: str, reply_to: str, tasks: int, mode: str) -> None:
    """Publish the tasks (confirmed, 500 in flight), results to ``reply_to``."""
    for start in range(0, tasks, 500):
        batch = range(start, min(start + 500, tasks))
        if mode in ('rpc', 'redis'):
            sends = [app.send_task_async('bench.add', (i, i), queue=queue, reply_to=reply_to)
                     for i in batch]
        else:
            sends = [app.send_task_async('bench.noop', (i,), queue=queue, reply_to=reply_to,
                                         ignore_result=True) for i in batch]
        await asyncio.gather(*sends)
    if mode == 'ignore':
        # The last one has a result: when it is back, the run is over.
        await app.send_task_async('bench.add', (0, 0), queue=queue, reply_to=reply_to)


def run_one(kind: str, mode: str, url: str, tasks: int, concurrency: int, pool: str,
            workdir: Path, events: bool = False, redis_url: str | None = None) -> float:
    """Tasks per second of one worker in one mode.

    Results are left in their reply queue and counted by its depth, so that
    reading them costs the measurement nothing (and the same for both workers)."""
    suffix = uuid.uuid4().hex[:6]
    queue, replies = f'bench-{kind}-{mode}-{suffix}', f'bench-replies-{suffix}'
    app = App(url, publish_timeout=60)
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    channel.queue_declare(queue, durable=True)
    channel.queue_declare(replies)
    app.run_sync(preload(app, queue, replies, tasks, mode))
    total = tasks + (1 if mode == 'ignore' else 0)
    expected_results = 1 if mode == 'ignore' else tasks
    results_done: Any
    env = dict(os.environ)
    if mode == 'redis':
        import redis

        assert redis_url is not None
        store = redis.Redis.from_url(redis_url)
        store.flushdb()
        env['BENCH_RESULT_BACKEND'] = redis_url

        def results_done() -> int:
            return int(store.dbsize())
    else:
        def results_done() -> int:
            return queue_depth(channel, replies)
    log = open(workdir / f'{queue}.log', 'wb')
    worker = subprocess.Popen(worker_command(kind, url, queue, concurrency, pool, events, mode),
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True, env=env)
    try:
        while queue_depth(channel, queue) >= total:
            if worker.poll() is not None:
                log_text = (workdir / f'{queue}.log').read_text()
                raise RuntimeError(f'{kind} worker exited: {log_text}')
            time.sleep(0.002)
        started = time.perf_counter()
        deadline = started + 600
        while results_done() < expected_results:
            if time.perf_counter() > deadline or worker.poll() is not None:
                raise RuntimeError(f'{kind} worker did not finish: '
                                   f'{(workdir / f"{queue}.log").read_text()[-2000:]}')
            # Every 20 ms: polling more often took a tenth of a core from the
            # workers measured (0.3 % of a 7-second run at most is late).
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        channel.queue_delete(queue)
        channel.queue_delete(replies)
        conn.close()
        app.close()
    return tasks / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tasks', type=int, default=10000)
    parser.add_argument('--concurrency', type=int, default=2)
    parser.add_argument('--broker-url', help='default: start a Leveret broker')
    parser.add_argument('--leveret-pool', default='prefork',
                        choices=('prefork', 'threads', 'asyncio', 'solo'))
    parser.add_argument('--events', action='store_true',
                        help='both workers send task events (-E), as with Flower')
    parser.add_argument('--modes', default=','.join(MODES),
                        help=f'comma-separated: {", ".join(MODES)}')
    parser.add_argument('--redis-url', help='redis mode: default, start a redis-server')
    parser.add_argument('--rounds', type=int, default=1,
                        help='runs of each mode, the workers taking turns to go first')
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error('--rounds must be at least 1')
    modes = [m.strip() for m in args.modes.split(',') if m.strip()]
    if unknown := sorted(set(modes) - set(MODES)):
        parser.error(f'unknown mode(s): {", ".join(unknown)} (choose from {", ".join(MODES)})')
    if 'redis' in modes and args.redis_url is None and shutil.which('redis-server') is None:
        parser.error('redis mode needs redis-server on PATH, or --redis-url')
    with tempfile.TemporaryDirectory(prefix='leveret-bench-') as tmp:
        workdir = Path(tmp)
        broker = redis_proc = None
        url, redis_url = args.broker_url, args.redis_url
        if url is None:
            broker, url = start_broker(workdir)
        if 'redis' in modes and redis_url is None:
            redis_proc, redis_url = start_redis(workdir)
        try:
            #: mode -> worker -> its rate in each round.
            rates: dict[str, dict[str, list[float]]] = {}
            for mode in modes:
                by_kind = rates[mode] = {'leveret': [], 'celery': []}
                for round_ in range(args.rounds):
                    order = ('leveret', 'celery') if round_ % 2 == 0 else ('celery', 'leveret')
                    for kind in order:
                        rate = run_one(kind, mode, url, args.tasks, args.concurrency,
                                       args.leveret_pool, workdir, args.events, redis_url)
                        by_kind[kind].append(rate)
                        print(f'{mode:>6} results  {kind:>8} worker: {rate:8.0f} tasks/s',
                              flush=True)
        finally:
            if broker is not None:
                broker.send_signal(signal.SIGTERM)
                broker.wait(30)
            if redis_proc is not None:
                redis_proc.terminate()
                redis_proc.wait(30)
    ratios = {mode: [lev / cel for lev, cel in
                     zip(by_kind['leveret'], by_kind['celery'], strict=True)]
              for mode, by_kind in rates.items()}
    for mode, each in ratios.items():
        rounds = f' (median of {len(each)}: {" ".join(f"{r:.2f}" for r in each)})' \
            if len(each) > 1 else ''
        print(f'{mode:>6} results: Leveret/Celery = {statistics.median(each):.2f}x{rounds}')
    print(json.dumps({'tasks': args.tasks, 'concurrency': args.concurrency,
                      'leveret_pool': args.leveret_pool, 'events': args.events,
                      'rounds': args.rounds, 'rates': rates, 'ratios': ratios}))
    return 0


if __name__ == '__main__':
    sys.exit(main())

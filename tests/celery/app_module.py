"""The Celery app the Celery scenarios run.

The test fixtures copy this file into a directory of its own, under a module
name unique to the test module, next to a JSON file of the same stem holding
the broker URL, the Celery settings and where tasks keep their records. The
worker subprocess (``celery -A <module> worker``) and the test process import
the same file under the same name, so task names agree on both sides.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from celery import Celery, Task

SETTINGS: dict[str, Any] = json.loads(Path(__file__).with_suffix('.json').read_text())

app = Celery(Path(__file__).stem, broker=SETTINGS['broker_url'], backend='rpc://')
app.conf.update(SETTINGS['conf'])
# beat_schedule entries, task_annotations and task_routes may name their task
# without the (generated) module name.
for entry in (app.conf.beat_schedule or {}).values():
    if '.' not in entry['task']:
        entry['task'] = f'{app.main}.{entry["task"]}'
for setting in ('task_annotations', 'task_routes'):
    if isinstance(app.conf.get(setting), dict):
        app.conf[setting] = {(name if '.' in name or name == '*' else f'{app.main}.{name}'): value
                             for name, value in app.conf[setting].items()}
# task_queues as JSON: [{'name', 'exchange', 'exchange_type', 'routing_key', ...}].
if SETTINGS.get('queues'):
    from kombu import Exchange, Queue

    app.conf.task_queues = [
        Queue(q['name'], Exchange(q.get('exchange', q['name']), q.get('exchange_type', 'direct')),
              routing_key=q.get('routing_key', q['name']),
              queue_arguments=q.get('queue_arguments'), message_ttl=q.get('message_ttl'),
              max_priority=q.get('max_priority'), consumer_arguments=q.get('consumer_arguments'))
        for q in SETTINGS['queues']]


def record(entry: dict[str, Any]) -> None:
    """Append one JSON line to the records file (one write: lines never interleave)."""
    line = (json.dumps(entry, default=str) + '\n').encode()
    fd = os.open(SETTINGS['records'], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def describe(task: Task, label: str) -> dict[str, Any]:
    """How this run of the task reached the worker."""
    request = task.request
    return {
        'label': label,
        'id': request.id,
        'pid': os.getpid(),
        'started_at': time.time(),
        'retries': request.retries,
        'eta': request.eta,
        'hostname': request.hostname,
        'delivery_info': dict(request.delivery_info or {}),
        # Headers the broker adds when it dead-letters a message.
        'x-death': getattr(request, 'x-death', None),
        'x-first-death-exchange': getattr(request, 'x-first-death-exchange', None),
        'x-first-death-queue': getattr(request, 'x-first-death-queue', None),
        'x-first-death-reason': getattr(request, 'x-first-death-reason', None),
    }


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def fail(message: str) -> None:
    raise ValueError(message)


@app.task
def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task(bind=True)
def report(self: Task, label: str = '') -> dict[str, Any]:
    """Record how the task arrived, and return the same description."""
    entry = describe(self, label)
    record(entry)
    return entry


@app.task(bind=True)
def report_then_sleep(self: Task, label: str, seconds: float) -> dict[str, Any]:
    """Record the start, then take a while (long enough to be caught running)."""
    entry = describe(self, label)
    record(entry)
    time.sleep(seconds)
    return entry


@app.task(bind=True)
def retry_until(self: Task, retries_wanted: int) -> dict[str, Any]:
    """Retry with a 1 s countdown until the task has been retried ``retries_wanted`` times."""
    entry = describe(self, 'retry')
    record(entry)
    if self.request.retries < retries_wanted:
        raise self.retry(countdown=1)
    return entry


@app.task(bind=True, rate_limit='1/m')
def limited(self: Task, label: str = '') -> dict[str, Any]:
    """At most one a minute (after the first): record each run."""
    entry = describe(self, label)
    record(entry)
    return entry


@app.task(bind=True)
def report_then_wait(self: Task, label: str, gate: str) -> dict[str, Any]:
    """Record the start, then run until the file ``gate`` exists."""
    entry = describe(self, label)
    record(entry)
    while not os.path.exists(gate):
        time.sleep(0.02)
    return entry

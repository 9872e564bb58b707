"""Celery-aware accounting in process: the task-name bound, the counts per
task and queue, tasks waiting in a ready list, the ETA of a task."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from pamqp import commands as C

from leveret.broker.model import celery
from leveret.broker.model.celery import LATENCY_BOUNDS, OTHER, TaskNames, TaskStats
from leveret.broker.model.message import Message
from leveret.protocol import properties


def task_message(name: str, routed_at: float, **headers: object) -> Message:
    header = properties.encode(C.Basic.Properties(headers={'task': name, **headers}), 2)
    message = Message('', 'q', header, b'{}')
    message.task = (name, routed_at)
    return message


def test_task_names_past_the_bound_count_as_other():
    names = TaskNames(limit=2)
    assert names.name(b'proj.a') == 'proj.a'
    assert names.name(b'proj.b') == 'proj.b'
    assert names.name(b'proj.c') == OTHER
    assert names.name(b'proj.d') == OTHER
    assert names.name(b'proj.a') == 'proj.a'        # known names stay counted
    assert (len(names), names.overflowed) == (2, 2)


def test_counts_per_task_and_the_time_from_routing_to_first_delivery():
    tasks: dict[str, TaskStats] = {}
    now = time.monotonic()
    message = task_message('proj.add', now - 0.3)
    celery.published(tasks, message.task)
    celery.delivered(tasks, message, message.task)
    message.redelivered = True
    celery.delivered(tasks, message, message.task)   # a redelivery: no latency sample
    celery.rejected(tasks, message.task)
    celery.acked(tasks, message.task)
    stats = tasks['proj.add']
    assert (stats.published, stats.delivered, stats.redelivered, stats.acked,
            stats.rejected) == (1, 2, 1, 1, 1)
    assert stats.latency_count == 1
    bucket = stats.latency_counts.index(1)
    assert LATENCY_BOUNDS[bucket - 1] < 0.3 <= LATENCY_BOUNDS[bucket]
    assert 0.3 <= stats.latency_sum < 5


def test_waiting_tasks_per_name_with_the_oldest():
    messages = [task_message('a', 10.0), task_message('b', 11.0), task_message('a', 9.0),
                Message('', 'q', properties.encode(C.Basic.Properties(), 1), b'x')]
    assert celery.waiting(messages) == {'a': (2, 9.0), 'b': (1, 11.0)}


def test_the_eta_of_a_task():
    due = datetime.now(UTC) + timedelta(seconds=60)
    assert abs(celery.eta_of(task_message('a', 0, eta=due.isoformat())) - due.timestamp()) < 1e-3
    naive = due.replace(tzinfo=None).isoformat()       # naive: UTC, as Celery means it
    assert abs(celery.eta_of(task_message('a', 0, eta=naive)) - due.timestamp()) < 1e-3
    assert celery.eta_of(task_message('a', 0, eta=None)) is None
    assert celery.eta_of(task_message('a', 0, eta='tomorrow')) is None
    assert celery.eta_of(task_message('a', 0)) is None

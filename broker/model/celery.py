"""Celery-aware accounting: what happens to each task name in each queue.

A message whose headers name a Celery task (``protocol.celery_headers``)
is marked when it is routed: ``Message.task`` becomes ``(name, published
at)``, the name bounded by :class:`TaskNames`.  From then on the session
calls the functions below where it already counts the message (routed into
a queue, delivered, acked, rejected); each is a dict lookup and an integer
add, and none runs for a message that is not a task.

What is not counted is read when someone looks (:func:`waiting`,
:func:`eta_of`): the tasks waiting in a queue and the oldest of them come
from the queue's ready list, the tasks held with an ETA from the unacked
deliveries, so nothing per message is kept besides the mark.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from leveret.protocol.celery_headers import field

from .message import Message

#: The name under which tasks past the bound are counted.
OTHER = 'other'

#: Upper bounds of the publish-to-delivery histogram's buckets, seconds
#: (the last bucket, +Inf, is implicit).
LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                  5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

#: A task's mark on a message: its (bounded) name and when it was routed
#: (``time.monotonic()``).
TaskMark = tuple[str, float]


class TaskNames:
    """The distinct task names the broker counts, at most ``limit``.

    A name past the bound is counted as :data:`OTHER`, so a client that
    sends a new name with every message cannot grow the broker's memory.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._known: dict[bytes, str] = {}
        #: Messages counted as ``other`` because the bound was reached.
        self.overflowed = 0

    def __len__(self) -> int:
        return len(self._known)

    def name(self, raw: bytes) -> str:
        name = self._known.get(raw)
        if name is None:
            if len(self._known) >= self.limit:
                self.overflowed += 1
                return OTHER
            name = self._known[raw] = raw.decode('utf-8', 'replace')
        return name


class TaskStats:
    """The counts of one task name in one queue."""

    __slots__ = ('published', 'delivered', 'acked', 'rejected', 'redelivered',
                 'latency_counts', 'latency_sum')

    def __init__(self) -> None:
        self.published = 0
        self.delivered = 0
        self.acked = 0
        self.rejected = 0
        self.redelivered = 0
        #: First deliveries per bucket of :data:`LATENCY_BOUNDS` (+Inf last).
        self.latency_counts = [0] * (len(LATENCY_BOUNDS) + 1)
        self.latency_sum = 0.0

    @property
    def latency_count(self) -> int:
        return sum(self.latency_counts)


TaskTable = dict[str, TaskStats]


def _stats(tasks: TaskTable, name: str) -> TaskStats:
    stats = tasks.get(name)
    if stats is None:
        stats = tasks[name] = TaskStats()
    return stats


# --- called by the session where it counts a message --------------------------
def published(tasks: TaskTable, mark: TaskMark) -> None:
    """A task entered a queue (``tasks`` is the queue's table)."""
    stats = tasks.get(mark[0])
    if stats is None:
        stats = tasks[mark[0]] = TaskStats()
    stats.published += 1


def delivered(tasks: TaskTable, message: Message, mark: TaskMark) -> None:
    """A task went to a consumer (or to basic.get)."""
    stats = tasks.get(mark[0])
    if stats is None:
        stats = tasks[mark[0]] = TaskStats()
    stats.delivered += 1
    if message.redelivered:
        stats.redelivered += 1
    else:
        waited = time.monotonic() - mark[1]
        stats.latency_counts[bisect_left(LATENCY_BOUNDS, waited)] += 1
        stats.latency_sum += waited


def acked(tasks: TaskTable, mark: TaskMark) -> None:
    _stats(tasks, mark[0]).acked += 1


def rejected(tasks: TaskTable, mark: TaskMark) -> None:
    """basic.reject or basic.nack, requeued or not."""
    _stats(tasks, mark[0]).rejected += 1


# --- read when someone looks --------------------------------------------------
def waiting(messages: Iterable[Message]) -> dict[str, tuple[int, float]]:
    """Tasks among ``messages`` (a queue's ready list): per name, how many
    and when the oldest was routed (``time.monotonic()``)."""
    found: dict[str, tuple[int, float]] = {}
    for message in messages:
        mark = message.task
        if mark is None:
            continue
        name, at = mark
        seen = found.get(name)
        if seen is None:
            found[name] = (1, at)
        else:
            found[name] = (seen[0] + 1, at if at < seen[1] else seen[1])
    return found


def field_of(message: Message, key: str) -> Any:
    """One Celery header of a task message (``id``, ``root_id``, ...)."""
    return field(message.header, key)


def eta_of(message: Message) -> float | None:
    """The task's ETA as a Unix time, or None (no ETA, or not a date).

    Celery writes ISO 8601; a naive time is UTC (Celery's default).
    """
    value = field(message.header, 'eta')
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()

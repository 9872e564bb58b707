"""The last few minutes, sampled: queue depths for the dashboard's charts and
the Celery task counters for their rates.

Every :data:`INTERVAL` seconds the broker's queues are read once (their
depth: ready plus unacked) into a small ring buffer per queue, and each
task's counters into a sample, of which the last two give per-second rates
(the management API's rates come the same way from ``model/counters.py``).
The queues are read :data:`SLICE` at a time, yielding to the loop between
slices, so that 10,000 queues never hold up AMQP for long.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model.queue import Queue
    from ..model.vhost import VirtualHost
    from ..session import Sessions

#: Seconds between two samples.
INTERVAL = 5.0
#: Samples kept per queue: five minutes.
DEPTH_SAMPLES = 60
#: Queues read between two yields to the event loop.
SLICE = 1000

TaskKey = tuple[str, str, str]          # vhost, queue, task
#: The task counters rated, in the order of a sample.
RATED = ('published', 'delivered', 'acked', 'rejected')


class History:
    def __init__(self, vhosts: Mapping[str, VirtualHost], sessions: Sessions) -> None:
        self.vhosts = vhosts
        self.sessions = sessions
        #: (vhost, queue) -> depths, oldest first, one per INTERVAL.
        self.depths: dict[tuple[str, str], deque[int]] = {}
        self._tasks_last: tuple[float, dict[TaskKey, tuple[int, ...]]] = (0.0, {})
        self._tasks_prev: tuple[float, dict[TaskKey, tuple[int, ...]]] = (0.0, {})
        self._sampling: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sampling = asyncio.get_running_loop().create_task(self._sample_forever())

    def stop(self) -> None:
        if self._sampling is not None:
            self._sampling.cancel()
            self._sampling = None

    async def _sample_forever(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(INTERVAL)

    async def sample(self, now: float | None = None) -> None:
        """One sample of every queue's depth and every task's counters."""
        now = time.monotonic() if now is None else now
        unacked: dict[Queue, int] = {}
        for queue, _message in self.sessions.unacked():
            unacked[queue] = unacked.get(queue, 0) + 1
        queues = [(vhost.name, queue) for vhost in list(self.vhosts.values())
                  for queue in list(vhost.queues.values())]
        seen = set()
        tasks: dict[TaskKey, tuple[int, ...]] = {}
        for start in range(0, len(queues), SLICE):
            if start:
                await asyncio.sleep(0)
            for vhost_name, queue in queues[start:start + SLICE]:
                key = (vhost_name, queue.name)
                seen.add(key)
                ring = self.depths.get(key)
                if ring is None:
                    ring = self.depths[key] = deque(maxlen=DEPTH_SAMPLES)
                ring.append(len(queue.ready) + unacked.get(queue, 0))
                for name, stats in list(queue.celery_tasks.items()):
                    tasks[vhost_name, queue.name, name] = tuple(
                        getattr(stats, counter) for counter in RATED)
        for key in [k for k in self.depths if k not in seen]:
            del self.depths[key]
        self._tasks_prev, self._tasks_last = self._tasks_last, (now, tasks)

    def depth_history(self, vhost: str, queue: str) -> list[int]:
        return list(self.depths.get((vhost, queue), ()))

    def task_rates(self, key: TaskKey) -> dict[str, float]:
        """Per-second rate of each of :data:`RATED` over the last interval."""
        (t1, last), (t0, prev) = self._tasks_last, self._tasks_prev
        now_values, before = last.get(key), prev.get(key)
        if now_values is None or t1 <= t0:
            return dict.fromkeys(RATED, 0.0)
        before = before or (0,) * len(RATED)
        return {name: round((a - b) / (t1 - t0), 1)
                for name, a, b in zip(RATED, now_values, before, strict=False)}

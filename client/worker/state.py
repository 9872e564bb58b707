"""What the worker holds and has counted: its task requests by state, the
revoked ids, the totals and the prefetch count.

Plain data with no I/O and no event loop. The intake and the outcomes move
requests between the states; remote control, heartbeats and the stats read
them here instead of reaching into the worker::

    delivered -> ready (due: waits for a pool slot)  -> active (in the pool)
              -> held (eta in the future) -> ready      -> done: counted in total
"""

from __future__ import annotations

import itertools
import os
import time
from collections import OrderedDict, deque
from typing import Any

from .request import TaskRequest

#: Above this kombu sends prefetch 0 (unlimited); so do we.
PREFETCH_MAX = 65535
#: Revoked task ids remembered (oldest forgotten first).
REVOKES_MAX = 50000


class Prefetch:
    """The basic.qos prefetch count: ``base`` (concurrency x multiplier), one
    more for each delivery held for its eta (held tasks take no slot)."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.count = base

    @property
    def value(self) -> int:
        """The count to send in basic.qos (0: unlimited)."""
        return 0 if self.count > PREFETCH_MAX or self.base == 0 else self.count

    def change(self, delta: int) -> bool:
        """Count ``delta`` more held deliveries; False when the prefetch is
        unlimited (there is no new count to send)."""
        if self.base == 0:
            return False
        self.count += delta
        return True

    def resize(self, delta: int) -> bool:
        """The pool changed size: ``delta`` more (or fewer) prefetched messages;
        False when the prefetch is unlimited."""
        if self.base == 0 or not delta:
            return False
        self.base = max(self.base + delta, 1)
        self.count = max(self.count + delta, 1)
        return True

    def reset(self) -> None:
        """Nothing held any more (a new connection)."""
        self.count = self.base


class WorkerState:
    """The worker's requests by state, revoked ids and totals."""

    def __init__(self, prefetch_count: int) -> None:
        #: Due and waiting for a pool slot, in delivery order (part of Celery's "reserved").
        self.ready: deque[TaskRequest] = deque()
        #: Held until their eta, by job id (Celery's "scheduled").
        self.held: dict[int, TaskRequest] = {}
        #: Handed to the pool, by job id: queued in a pool process or running.
        self.active: dict[int, TaskRequest] = {}
        self.revoked: OrderedDict[str, None] = OrderedDict()
        #: Finished tasks by name (processed: succeeded, failed, retried, rejected, ignored).
        self.total: dict[str, int] = {}
        self.prefetch = Prefetch(prefetch_count)
        self.started_at = time.monotonic()
        #: Set once on a warm shutdown: nothing new starts.
        self.shutting_down = False
        self._job_ids = itertools.count(1)

    def next_job_id(self) -> int:
        return next(self._job_ids)

    def acks_may_wait(self, pending: int) -> bool:
        """Whether ``pending`` acks may wait to go out with later ones: while
        tasks are ready to start here, the deliveries the broker sends for
        the acks are not needed yet; and only while the acks hold less than
        half the prefetch window (with a prefetch of 1 or 2, never)."""
        window = self.prefetch.value
        return bool(self.ready) and (window == 0 or pending * 2 < window)

    def revoke(self, task_id: str) -> None:
        self.revoked[task_id] = None
        while len(self.revoked) > REVOKES_MAX:
            self.revoked.popitem(last=False)

    def count_done(self, name: str) -> None:
        self.total[name] = self.total.get(name, 0) + 1

    def running(self) -> list[TaskRequest]:
        """The tasks running now."""
        return [r for r in self.active.values() if r.time_start is not None]

    def reserved(self) -> list[TaskRequest]:
        """The tasks received, due and not running yet (queued in the pool included)."""
        return list(self.ready) + [r for r in self.active.values() if r.time_start is None]

    @property
    def processed(self) -> int:
        return sum(self.total.values())

    def heartbeat_fields(self) -> dict[str, Any]:
        """The fields of Celery's worker-heartbeat (and online/offline) events."""
        return {'active': len(self.running()), 'processed': self.processed,
                'loadavg': [round(x, 2) for x in os.getloadavg()]}

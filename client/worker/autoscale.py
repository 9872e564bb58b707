"""``--autoscale=MAX,MIN``: Celery's autoscaler, on the event loop.

Once a second the pool grows to as many slots as there are requests
received and not finished (up to MAX), or, once no task has come for
``KEEPALIVE`` seconds, shrinks toward that many (down to MIN). The prefetch
count follows MAX (``control autoscale`` changes MAX and MIN).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from .pools import Pool
from .state import WorkerState

log = logging.getLogger('leveret.worker')

#: Seconds without a new task before the pool shrinks (Celery's AUTOSCALE_KEEPALIVE).
KEEPALIVE = 30.0
INTERVAL = 1.0


class Autoscaler:
    def __init__(self, pool: Pool, state: WorkerState, max_concurrency: int,
                 min_concurrency: int, on_max_change: Callable[[int], None],
                 on_grown: Callable[[], None]) -> None:
        self.pool = pool
        #: Called once the pool has grown (ready requests can start).
        self.on_grown = on_grown
        self.state = state
        self.max_concurrency = max_concurrency
        self.min_concurrency = min_concurrency
        #: Called with the change of MAX (the prefetch count follows it).
        self.on_max_change = on_max_change
        self._last_scale_up: float | None = None
        self._last_received: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def processes(self) -> int:
        return self.pool.concurrency

    @property
    def qty(self) -> int:
        """Requests received and not finished (Celery's reserved requests)."""
        return len(self.state.ready) + len(self.state.active)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def task_received(self) -> None:
        self._last_received = time.monotonic()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                self.maybe_scale()
            except Exception:  # noqa: BLE001 - keep scaling whatever one step did
                log.exception('autoscaler')

    def maybe_scale(self) -> None:
        procs = self.processes
        wanted = min(self.qty, self.max_concurrency)
        if wanted > procs:
            self._last_scale_up = time.monotonic()
            self._grow(wanted - procs)
            return
        wanted = max(self.qty, self.min_concurrency, 1)
        if wanted < procs:
            last_active = max(filter(None, (self._last_scale_up, self._last_received)),
                              default=None)
            if last_active is not None and time.monotonic() - last_active > KEEPALIVE:
                self._shrink(procs - wanted)

    def update(self, max: int | None = None, min: int | None = None) -> tuple[int, int]:
        """``control autoscale``: new bounds; the pool is brought inside them now."""
        if max is not None:
            if max < self.processes:
                self._shrink(self.processes - max)
            if max != self.max_concurrency:
                self.on_max_change(max - self.max_concurrency)
            self.max_concurrency = max
        if min is not None:
            if min > self.processes:
                self._grow(min - self.processes)
            self.min_concurrency = min
        return self.max_concurrency, self.min_concurrency

    def _grow(self, n: int) -> None:
        log.info('Scaling up %s processes.', n)
        self.pool.grow(n)
        self.on_grown()

    def _shrink(self, n: int) -> None:
        log.info('Scaling down %s processes.', n)
        try:
            self.pool.shrink(n)
        except ValueError as exc:
            log.debug("autoscaler won't scale down: %s", exc)

    def info(self) -> dict[str, Any]:
        return {'max': self.max_concurrency, 'min': self.min_concurrency,
                'current': self.processes, 'qty': self.qty}

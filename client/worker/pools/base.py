"""What every pool offers the consumer.

A pool runs :class:`~leveret.client.worker.execute.Job`s, at most ``concurrency``
at a time, and calls ``on_done(outcome)`` on the event loop thread when one
finishes (or is lost: killed at its hard time limit, its process gone). A
pool that ``reports_start`` may hold a job before it runs: it calls
``on_started(job_id, pid)`` when the job starts, and a job taken back
before it started ends with an ``UNSTARTED`` outcome. Other pools start a
job when it is applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..execute import Job, Outcome
from ..tasks import Registry

OnDone = Callable[[Outcome], None]
OnStarted = Callable[[int, int], None]


class Pool:
    name = 'base'
    reports_start = False

    def __init__(self, registry: Registry, concurrency: int, loop: asyncio.AbstractEventLoop,
                 on_done: OnDone, on_started: OnStarted | None = None) -> None:
        self.registry = registry
        self.concurrency = concurrency
        self.loop = loop
        self.on_done = on_done
        self.on_started = on_started
        #: Every job applied and not done yet (started or not).
        self.running: dict[int, Job] = {}

    def start(self) -> None:
        """Start the pool's processes or threads."""

    def has_capacity(self) -> bool:
        return len(self.running) < self.concurrency

    def apply(self, job: Job) -> None:
        raise NotImplementedError

    def grow(self, n: int = 1) -> None:
        """``n`` more slots (``control pool_grow``, autoscale)."""
        raise NotImplementedError(f'the {self.name} pool cannot grow')

    def shrink(self, n: int = 1) -> None:
        """``n`` slots fewer, busy ones freed when their job ends."""
        raise NotImplementedError(f'the {self.name} pool cannot shrink')

    def restart(self) -> None:
        """Replace the pool's processes (``control pool_restart``)."""
        raise ValueError(f'the {self.name} pool has no processes to restart')

    def terminate_job(self, job_id: int, signum: int | None = None) -> bool:
        """Stop a running job at once (``revoke(terminate=True)``, with ``signum``
        where the job has a process of its own), if the pool can."""
        return False

    def cancel_job(self, job_id: int) -> bool:
        """Take back a job that has not started (it ends ``UNSTARTED``), if the pool holds it."""
        return False

    def cancel_waiting(self) -> int:
        """Take back every job that has not started; how many were asked back."""
        return 0

    def worker_pid(self, job_id: int) -> int | None:
        return None

    async def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the running jobs, then stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.running and loop.time() < deadline:
            await asyncio.sleep(0.05)
        self.stop()

    def stop(self) -> None:
        """Stop at once; running jobs are abandoned."""

    def kill(self) -> None:
        """Stop now, without waiting for anything (cold shutdown)."""
        self.stop()

    def info(self) -> dict[str, Any]:
        cls = type(self)
        # Named as Celery names its pools: the class, module:name.
        return {'max-concurrency': self.concurrency,
                'implementation': f'{cls.__module__}:{cls.__name__}',
                'processes': [], 'running': len(self.running)}

    def _done(self, outcome: Outcome) -> None:
        if self.running.pop(outcome.job_id, None) is not None:
            self.on_done(outcome)

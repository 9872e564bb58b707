"""What every pool offers the consumer.

A pool runs :class:`~client.worker.execute.Job`s, at most ``concurrency``
at a time, and calls ``on_done(outcome)`` on the event loop thread when one
finishes (or is lost: killed at its hard time limit, its process gone).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..execute import Job, Outcome
from ..tasks import Registry

OnDone = Callable[[Outcome], None]


class Pool:
    name = 'base'

    def __init__(self, registry: Registry, concurrency: int, loop: asyncio.AbstractEventLoop,
                 on_done: OnDone) -> None:
        self.registry = registry
        self.concurrency = concurrency
        self.loop = loop
        self.on_done = on_done
        self.running: dict[int, Job] = {}

    def start(self) -> None:
        """Start the pool's processes or threads."""

    def has_capacity(self) -> bool:
        return len(self.running) < self.concurrency

    def apply(self, job: Job) -> None:
        raise NotImplementedError

    def terminate_job(self, job_id: int) -> bool:
        """Stop a running job at once (``revoke(terminate=True)``), if the pool can."""
        return False

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
        return {'max-concurrency': self.concurrency, 'implementation': self.name,
                'processes': [], 'running': len(self.running)}

    def _done(self, outcome: Outcome) -> None:
        if self.running.pop(outcome.job_id, None) is not None:
            self.on_done(outcome)

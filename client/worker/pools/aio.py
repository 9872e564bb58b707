"""The asyncio pool: ``async def`` tasks run on the worker's own event loop,
``concurrency`` at a time; plain functions run in a threads pool.

A time limit cancels the coroutine (it sees ``CancelledError``) and the
task fails with SoftTimeLimitExceeded (soft limit) or TimeLimitExceeded.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..execute import Job, execute_async
from ..tasks import Runner
from .base import Pool
from .threads import ThreadPool


class AsyncioPool(Pool):
    name = 'asyncio'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threads = ThreadPool(self.registry, self.concurrency, self.loop, self._done)
        self.tasks: dict[int, asyncio.Task[None]] = {}

    def start(self) -> None:
        self.threads.start()

    def grow(self, n: int = 1) -> None:
        self.concurrency += n
        self.threads.grow(n)

    def shrink(self, n: int = 1) -> None:
        self.threads.shrink(n)
        self.concurrency -= n

    def apply(self, job: Job) -> None:
        runner = self.registry.get(job.name)
        self.running[job.job_id] = job
        # Celery's tracer (the app's own backend) runs in a thread, async tasks too.
        if runner is not None and runner.spec.is_async and not runner.traced:
            self.tasks[job.job_id] = self.loop.create_task(self._run(runner, job))
        else:
            self.threads.apply(job)

    async def _run(self, runner: Runner, job: Job) -> None:
        try:
            outcome = await execute_async(runner, job)
        finally:
            self.tasks.pop(job.job_id, None)
        self._done(outcome)

    def terminate_job(self, job_id: int, signum: int | None = None) -> bool:
        task = self.tasks.get(job_id)
        if task is None:
            return False
        task.cancel()
        return True

    def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        self.threads.stop()

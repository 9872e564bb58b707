"""The threads pool: ``concurrency`` threads share a job queue.

A thread cannot be killed. The soft time limit raises the task's
SoftTimeLimitExceeded inside its thread (``PyThreadState_SetAsyncExc``: it
lands at the next Python instruction, so not while the thread waits in C).
At the hard time limit the job is reported as failed and a new thread takes
the slot; the stuck thread exits whenever its task returns.
"""

from __future__ import annotations

import ctypes
import queue
import threading
from typing import Any

from ... import errors
from ..execute import Job, Outcome, execute, failure_outcome
from .base import Pool


def raise_in_thread(ident: int, exc_type: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))


class ThreadPool(Pool):
    name = 'threads'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        #: job id -> ident of the thread running it.
        self._owners: dict[int, int] = {}
        self._timers: dict[int, list[Any]] = {}
        self._retired: set[int] = set()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for _ in range(self.concurrency):
            self._spawn()

    def _spawn(self) -> None:
        thread = threading.Thread(target=self._work, name=f'leveret-pool-{len(self.threads)}',
                                  daemon=True)
        self.threads.append(thread)
        thread.start()

    def _work(self) -> None:
        ident = threading.get_ident()
        while ident not in self._retired:
            try:
                job = self._jobs.get()
                if job is None:
                    return
                with self._lock:
                    self._owners[job.job_id] = ident
                runner = self.registry.get(job.name)
                outcome = execute(runner, job) if runner is not None else \
                    failure_outcome(job, errors.NotRegistered(job.name), 0.0, None)
                with self._lock:
                    self._owners.pop(job.job_id, None)
                self.loop.call_soon_threadsafe(self._finished, outcome)
            except BaseException:  # a soft-limit exception that landed between jobs
                continue

    def grow(self, n: int = 1) -> None:
        self.concurrency += n
        for _ in range(n):
            self._spawn()

    def shrink(self, n: int = 1) -> None:
        """``n`` threads fewer: each exits once it is done with its job."""
        if n >= self.concurrency:
            raise ValueError(f"can't shrink the pool to {self.concurrency - n} threads")
        self.concurrency -= n
        for _ in range(n):
            self._jobs.put(None)

    def apply(self, job: Job) -> None:
        self.running[job.job_id] = job
        timers = []
        runner = self.registry.get(job.name)
        if job.soft_time_limit and runner is not None:
            timers.append(self.loop.call_later(job.soft_time_limit, self._soft_limit_hit, job,
                                               runner.soft_limit_error))
        if job.time_limit:
            timers.append(self.loop.call_later(job.time_limit, self._time_limit_hit, job))
        self._timers[job.job_id] = timers
        self._jobs.put(job)

    def _finished(self, outcome: Outcome) -> None:
        for timer in self._timers.pop(outcome.job_id, []):
            timer.cancel()
        self._done(outcome)

    def _soft_limit_hit(self, job: Job, error: type[BaseException]) -> None:
        with self._lock:
            ident = self._owners.get(job.job_id)
            if ident is not None:
                raise_in_thread(ident, error)

    def _time_limit_hit(self, job: Job) -> None:
        with self._lock:
            ident = self._owners.pop(job.job_id, None)
        if ident is None or job.job_id not in self.running:
            return
        self._retired.add(ident)
        self._spawn()
        outcome = failure_outcome(job, errors.TimeLimitExceeded(job.time_limit),
                                  job.time_limit or 0.0, None)
        outcome.error = errors.TimeLimitExceeded(job.time_limit)
        self._finished(outcome)

    def stop(self) -> None:
        for _ in self.threads:
            self._jobs.put(None)
        for thread in self.threads:
            thread.join(0.5)

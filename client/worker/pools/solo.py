"""The solo pool: one task at a time, run by the worker itself.

Plain functions run inline on the event loop's thread (nothing else happens
meanwhile, as in Celery's solo pool); a time limit raises inside the task
(SIGALRM). ``async def`` tasks are awaited on the loop.
"""

from __future__ import annotations

from ... import errors
from ..execute import Job, execute, execute_async, failure_outcome, soft_time_limit
from ..tasks import Runner
from .base import Pool


class SoloPool(Pool):
    name = 'solo'

    def apply(self, job: Job) -> None:
        runner = self.registry.get(job.name)
        self.running[job.job_id] = job
        if runner is None:
            self.loop.call_soon(self._done,
                                failure_outcome(job, errors.NotRegistered(job.name), 0, None))
        elif runner.spec.is_async and not runner.traced:
            self.loop.create_task(self._run_async(runner, job))
        else:
            limit, error = job.soft_time_limit, runner.soft_limit_error
            if not limit and job.time_limit:
                limit, error = job.time_limit, errors.TimeLimitExceeded
            try:
                with soft_time_limit(limit, error):
                    outcome = execute(runner, job)
            except error as exc:  # fired as the task returned
                outcome = failure_outcome(job, exc, limit or 0.0, None)
            self.loop.call_soon(self._done, outcome)

    async def _run_async(self, runner: Runner, job: Job) -> None:
        self._done(await execute_async(runner, job))

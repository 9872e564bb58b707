"""The tasks a worker can run, from a Leveret app or a Celery app.

A :class:`TaskSpec` holds what the main process needs to know about a task
(acks, time limits, results); its :class:`Runner` calls the task function
with the request pushed where the task looks for it (``self.request``,
Celery's request stack). Runners are used inside pool processes and threads.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from ..app import App, Task
from ..context import Request, current_request
from ..errors import SoftTimeLimitExceeded


@dataclass(frozen=True)
class TaskSpec:
    name: str
    acks_late: bool = False
    reject_on_worker_lost: bool = False
    ignore_result: bool = False
    track_started: bool = False
    time_limit: float | None = None
    soft_time_limit: float | None = None
    max_retries: int | None = 3
    default_retry_delay: float = 180.0
    is_async: bool = False
    #: 'leveret' or 'celery': who republishes on retry (Celery's retry() already did).
    kind: str = 'leveret'
    #: Celery's tracer runs it and the app's backend stores its results
    #: (:mod:`.celery_trace`); otherwise results go out in the rpc:// format.
    traced: bool = False
    #: Celery's ``store_errors_even_if_ignored``.
    store_errors_even_if_ignored: bool = False
    #: Celery's ``acks_on_failure_or_timeout``.
    acks_on_failure_or_timeout: bool = True
    #: Celery's rate limit (``'10/m'``; None: none), from the task or task_annotations.
    rate_limit: str | None = None


class Runner:
    """Calls one task function for a request."""

    spec: TaskSpec
    #: Run by Celery's tracer (``trace(job)``, :class:`.celery_trace.TracedRunner`).
    traced = False
    #: What to raise inside the task when its soft time limit is reached.
    soft_limit_error: type[BaseException] = SoftTimeLimitExceeded

    def push(self, request: Request) -> Any:
        """Make ``request`` the current one; what :meth:`pop` needs to undo it."""
        return None

    def pop(self, token: Any) -> None:
        """Undo :meth:`push`."""

    @contextmanager
    def request_pushed(self, request: Request) -> Iterator[None]:
        token = self.push(request)
        try:
            yield
        finally:
            self.pop(token)

    def call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError


class LeveretRunner(Runner):
    def __init__(self, task: Task) -> None:
        self.task = task
        self.spec = TaskSpec(
            name=task.name, acks_late=task.acks_late,
            reject_on_worker_lost=task.reject_on_worker_lost, ignore_result=task.ignore_result,
            track_started=task.track_started, time_limit=task.time_limit,
            soft_time_limit=task.soft_time_limit, max_retries=task.max_retries,
            default_retry_delay=task.default_retry_delay, is_async=task.is_async,
            rate_limit=task.rate_limit)

    def push(self, request: Request) -> Any:
        return current_request.set(request)

    def pop(self, token: Any) -> None:
        current_request.reset(token)

    def call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        return self.task(*args, **kwargs)


class CeleryRunner(Runner):
    """A task of an existing Celery app, run as Celery's tracer runs it."""

    def __init__(self, task: Any) -> None:
        from celery.app.trace import task_has_custom
        from celery.exceptions import SoftTimeLimitExceeded as CelerySoftTimeLimit

        self.task = task
        self.fun = task if task_has_custom(task, '__call__') else task.run
        self.soft_limit_error = CelerySoftTimeLimit
        self.spec = TaskSpec(
            name=task.name, acks_late=bool(task.acks_late),
            reject_on_worker_lost=bool(task.reject_on_worker_lost),
            ignore_result=bool(task.ignore_result), track_started=bool(task.track_started),
            time_limit=task.time_limit, soft_time_limit=task.soft_time_limit,
            max_retries=task.max_retries, default_retry_delay=task.default_retry_delay,
            is_async=inspect.iscoroutinefunction(task.run), kind='celery',
            traced=self.traced,
            store_errors_even_if_ignored=bool(task.store_errors_even_if_ignored),
            acks_on_failure_or_timeout=bool(getattr(task, 'acks_on_failure_or_timeout', True)),
            rate_limit=task.rate_limit or None)

    def push(self, request: Request) -> Any:
        from celery._state import _task_stack
        self.task.push_request(**celery_context(request))
        _task_stack.push(self.task)
        return None

    def pop(self, token: Any) -> None:
        from celery._state import _task_stack
        _task_stack.pop()
        self.task.pop_request()

    def call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        return self.fun(*args, **kwargs)


def celery_context(request: Request) -> dict[str, Any]:
    """The fields of Celery's ``Task.request`` (as its worker fills them:
    the message headers, then the delivery details)."""
    context = dict(request.headers)
    context.update(
        id=request.id, task=request.task, args=list(request.args), kwargs=request.kwargs,
        retries=request.retries, root_id=request.root_id, parent_id=request.parent_id,
        group=request.group, reply_to=request.reply_to, correlation_id=request.correlation_id,
        hostname=request.hostname, delivery_info=dict(request.delivery_info),
        timelimit=list(request.timelimit), called_directly=False, is_eager=False,
        eta=request.headers.get('eta'), expires=request.headers.get('expires'),
        ignore_result=request.ignore_result)
    return context


class Registry:
    """Task name -> runner, for one app."""

    def __init__(self, runners: dict[str, Runner], app: Any) -> None:
        self.runners = runners
        self.app = app

    def __contains__(self, name: str) -> bool:
        return name in self.runners

    def get(self, name: str) -> Runner | None:
        return self.runners.get(name)

    def update(self, name: str, **changes: Any) -> TaskSpec:
        """Change a task's settings at run time (``control rate_limit``,
        ``time_limit``); requests received from now on see them."""
        runner = self.runners[name]
        runner.spec = replace(runner.spec, **changes)
        task = getattr(runner, 'task', None)
        if self.is_celery and task is not None:  # what inspect registered shows
            for field, value in changes.items():
                setattr(task, field, value)
        return runner.spec

    def names(self) -> list[str]:
        """Registered task names, without Celery's built-in ``celery.*`` tasks."""
        return sorted(n for n in self.runners if not n.startswith('celery.'))

    @property
    def is_celery(self) -> bool:
        return not isinstance(self.app, App)

    @property
    def traced(self) -> bool:
        """Whether results go through the app's own backend (:mod:`.celery_trace`)."""
        return any(runner.traced for runner in self.runners.values())

    def process_started(self) -> None:
        """In a new prefork process: what Celery's pool does in its process
        initializer (no connection of the parent's reused, ``result.get()``
        refused inside tasks, ``worker_process_init`` sent)."""
        if not self.is_celery:
            return
        from celery import signals
        from celery._state import _set_task_join_will_block

        app = self.app
        app._after_fork()
        app._local.__dict__.pop('backend', None)
        if getattr(app, '_backend_cache', None) is not None:
            app._backend_cache = None
        _set_task_join_will_block(True)
        signals.worker_process_init.send(sender=None)

    def process_stopping(self) -> None:
        """A prefork process about to exit: ``worker_process_shutdown``."""
        if self.is_celery:
            from celery import signals
            signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)


def is_celery_app(obj: Any) -> bool:
    celery = sys.modules.get('celery')
    return celery is not None and isinstance(obj, celery.Celery)


def registry_for(app: Any) -> Registry:
    if isinstance(app, App):
        return Registry({name: LeveretRunner(task) for name, task in app.tasks.items()}, app)
    if is_celery_app(app):
        app.loader.import_default_modules()
        app.finalize(auto=True)
        runners: dict[str, Runner] = {}
        for name, task in app.tasks.items():
            runners[name] = CeleryRunner(task)
        return Registry(runners, app)
    raise TypeError(f'{app!r} is neither a Leveret App nor a Celery app')


"""Celery tasks whose results go through the app's own result backend
(Redis, a database, ...: anything but rpc://), run by Celery's own tracer.

Where the task runs (a prefork process, a thread, the solo pool), the job
goes through ``celery.app.trace.build_tracer`` as in Celery's pool
processes: STARTED (``track_started``), SUCCESS, FAILURE with its
traceback, RETRY; the result's children, group results and chords
(``on_chord_part_return``: Redis' native chords, the database backends'
``chord_unlock``); ``result_extended``; link callbacks, errbacks and the
chain sent on; Celery's task signals; ``backend.process_cleanup()``. The
main process records only what Celery's main process records (see
:mod:`.app_backend`).

With rpc:// (and without a backend) the worker keeps its own path: results
are published from the main process in the rpc:// format.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from typing import Any

from .. import states
from ..messages import saferepr
from . import execute
from .execute import UNSTORED, Job, Outcome, thread_loop
from .tasks import CeleryRunner, Registry, is_celery_app

log = logging.getLogger('leveret.worker')


def uses_app_backend(app: Any) -> bool:
    """Whether the results of a Celery app go through its own backend: it
    names one, and it is not rpc:// (which the worker writes itself)."""
    if not is_celery_app(app):
        return False
    from celery.app.backends import by_url
    from celery.backends.base import DisabledBackend
    from celery.backends.rpc import RPCBackend

    url = app.conf.result_backend
    if not url:
        return False
    backend_cls, _ = by_url(url, app.loader)
    return not issubclass(backend_cls, RPCBackend | DisabledBackend)


def backend_uri(app: Any) -> str:
    """The results URI the banner shows, password masked (as Celery's banner)."""
    if not is_celery_app(app):
        return 'rpc://'
    if not app.conf.result_backend:
        return 'disabled://'
    return str(app.backend.as_uri())


def request_dict(headers: dict[str, Any], args: list[Any], kwargs: dict[str, Any],
                 embed: dict[str, Any] | None, properties: dict[str, Any],
                 delivery_info: dict[str, Any], hostname: str) -> dict[str, Any]:
    """The request a Celery worker hands its tracer (``celery.worker.request.Request``'s
    ``request_dict`` with the message's embed merged in, as ``fast_trace_task`` does)."""
    request = dict(headers)
    request.update(properties=properties, reply_to=properties.get('reply_to'),
                   correlation_id=properties.get('correlation_id'), hostname=hostname,
                   delivery_info=delivery_info, args=args, kwargs=kwargs, is_eager=False)
    request.update(embed or {})
    return request


def job_request(job: Job) -> dict[str, Any]:
    return request_dict(job.headers, job.args, job.kwargs, job.embed, job.properties or {},
                        job.delivery_info, job.hostname)


class TracedRunner(CeleryRunner):
    """A Celery task run by Celery's tracer, which stores its states and result."""

    traced = True

    def __init__(self, task: Any, app: Any) -> None:
        super().__init__(task)
        self.app = app
        #: (pid, tracer): a tracer notes its process id when built (STARTED's pid).
        self._tracer: tuple[int, Any] | None = None
        self._lock = threading.Lock()

    def tracer(self, hostname: str) -> Any:
        pid = execute.current_pid()
        built = self._tracer
        if built is not None and built[0] == pid:
            return built[1]
        with self._lock:
            from celery.app.trace import build_tracer

            task = self.task
            if self.spec.is_async and not getattr(task, '_leveret_sync_run', False):
                # Celery's tracer calls run() and stores what it returns: run
                # the coroutine to its end on this thread's own loop.
                coroutine_function = task.run

                def run(*args: Any, **kwargs: Any) -> Any:
                    return thread_loop().run_until_complete(coroutine_function(*args, **kwargs))

                task.run = run
                task._leveret_sync_run = True
            # The worker logs one line for a result it could not store (UNSTORED),
            # not also Celery's warning with the traceback of each attempt.
            warnings.filterwarnings('ignore', 'Exception raised outside body',
                                    RuntimeWarning, 'celery.app.trace')
            tracer = build_tracer(task.name, task, hostname=hostname, app=self.app, eager=False)
            self._tracer = (pid, tracer)
            return tracer

    def trace(self, job: Job) -> Outcome:
        """Run ``job`` through Celery's tracer; the outcome carries no result body
        (the tracer stored it)."""
        from celery.exceptions import Reject

        pid = execute.current_pid()
        start = time.perf_counter()
        try:
            job.decode()
            request = job_request(job)
            retval, info, _, text = self.tracer(job.hostname)(
                job.headers.get('id'), job.args, job.kwargs, request)
        except Reject as exc:  # raised by an on_success handler: as Celery's pool does
            return Outcome(job.job_id, states.REJECTED, None, saferepr(exc), None,
                           time.perf_counter() - start, requeue=bool(exc.requeue), pid=pid)
        except Exception as exc:  # noqa: BLE001 - outside the task: the result was not stored
            return Outcome(job.job_id, UNSTORED, None, f'{type(exc).__name__}: {exc}', None,
                           time.perf_counter() - start, pid=pid)
        runtime = time.perf_counter() - start
        if info is None:
            return Outcome(job.job_id, states.SUCCESS, None, text or '', None, runtime, pid=pid)
        state = info.state
        outcome = Outcome(job.job_id, state, None, saferepr(info.retval), None, runtime,
                          pid=pid)
        if state == states.FAILURE:
            outcome.traceback = getattr(retval, 'traceback', None)
        elif state == states.RETRY:
            outcome.summary = str(info.retval)
        elif state == states.REJECTED:
            outcome.requeue = bool(getattr(info.retval, 'requeue', False))
        return outcome


def traced_registry(app: Any) -> Registry:
    """The registry of a Celery app whose results go through its backend."""
    from celery.app.trace import setup_worker_optimizations

    app.loader.import_default_modules()
    app.finalize(auto=True)
    setup_worker_optimizations(app)
    return Registry({name: TracedRunner(task, app) for name, task in app.tasks.items()}, app)


__all__ = ['TracedRunner', 'backend_uri', 'request_dict', 'traced_registry', 'uses_app_backend']

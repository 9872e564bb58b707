"""The states the worker's main process records in a Celery app's own result
backend, as Celery's main process does (``celery.worker.request.Request``):
REVOKED for a revoked or expired task found when due, FAILURE for a hard
time limit, a lost pool process, an unregistered task, a rejection without
requeue. Everything else is stored where the task runs (:mod:`.celery_trace`).

The calls block (a network round trip, the backend's own retries), so they
run one at a time on a thread of their own, in order; ``then(stored)`` is
called back on the event loop once the backend has answered, so that the
message is acked only after its result is stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..messages import TaskMessage
from .celery_trace import request_dict
from .request import TaskRequest

log = logging.getLogger('leveret.worker')

Then = Callable[[bool], None]


def celery_exception(exc: BaseException) -> BaseException:
    """Celery's own exception for a Leveret one of the same name (TimeLimitExceeded,
    WorkerLostError, TaskRevokedError, NotRegistered): what a Celery client
    rebuilds from the backend."""
    import celery.exceptions

    cls = getattr(celery.exceptions, type(exc).__name__, None)
    if cls is None or isinstance(exc, cls):
        return exc
    try:
        return cls(*exc.args)
    except Exception:  # noqa: BLE001 - an exception class with another signature
        return exc


class AppBackend:
    def __init__(self, app: Any, hostname: str) -> None:
        self.app = app
        self.hostname = hostname
        self._executor = ThreadPoolExecutor(1, thread_name_prefix='leveret-backend')

    def context(self, request: TaskRequest) -> Any:
        """Celery's ``Context`` of ``request`` (what its main process passes the backend)."""
        return self.message_context(request.message, request.raw_headers or {},
                                    request.delivery_info)

    def message_context(self, message: TaskMessage, headers: dict[str, Any],
                        delivery_info: dict[str, Any]) -> Any:
        from celery.app.task import Context

        properties = message.properties.model_dump()
        return Context(request_dict(dict(headers) or message.header_table(), message.args,
                                    message.kwargs, message.embed.model_dump(), properties,
                                    delivery_info, self.hostname))

    def mark_as_revoked(self, request: TaskRequest, reason: str, then: Then) -> None:
        context = self.context(request)
        self._run(lambda: self.app.backend.mark_as_revoked(
            request.id, reason, request=context, store_result=request.store_errors),
            f'REVOKED of {request.name}[{request.id}]', then)

    def mark_as_failure(self, request: TaskRequest, exc: BaseException, then: Then) -> None:
        context = self.context(request)
        error = celery_exception(exc)
        self._run(lambda: self.app.backend.mark_as_failure(
            request.id, error, request=context, store_result=request.store_errors),
            f'FAILURE of {request.name}[{request.id}]', then)

    def mark_unregistered(self, message: TaskMessage, headers: dict[str, Any],
                          delivery_info: dict[str, Any], exc: BaseException) -> None:
        context = self.message_context(message, headers, delivery_info)
        error = celery_exception(exc)
        self._run(lambda: self.app.backend.mark_as_failure(message.id, error, request=context),
                  f'FAILURE of {message.name}[{message.id}]', None)

    def revoke_unknown(self, task_id: str) -> None:
        """``control revoke`` of a task this worker does not hold: REVOKED in the
        backend unless it is done or running (Celery 5.7's ``_revoke``)."""
        from celery import states

        def mark() -> None:
            backend = self.app.backend
            state = backend.get_state(task_id)
            if state in (states.PENDING, states.RECEIVED, states.RETRY, states.REJECTED):
                backend.mark_as_revoked(task_id, reason='revoked', store_result=True)

        self._run(mark, f'REVOKED of {task_id}', None)

    def _run(self, call: Callable[[], Any], what: str, then: Then | None) -> None:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, call)

        def done(future: asyncio.Future[Any]) -> None:
            exc = future.exception()
            if exc is not None:
                log.error('could not store the %s in the result backend: %r', what, exc)
            if then is not None:
                then(exc is None)

        future.add_done_callback(done)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)

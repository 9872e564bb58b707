"""Task results: the latest state of each task, as it arrives on the reply
queue, and :class:`AsyncResult` to read it.

The store is fed by reply-queue consumers running on any event loop (the
sync bridge's or the caller's), and waited on from threads (``get``) or
coroutines (``get_async``).

An :class:`AsyncResult` reads through the :class:`ResultBackend` protocol,
which the :class:`~leveret.client.App` implements: this module never imports
the app (the app imports it).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import OrderedDict
from datetime import datetime
from typing import Any, Protocol

from . import errors, states
from .messages import ResultMessage, parse_iso


class ResultBackend(Protocol):
    """Where an :class:`AsyncResult` reads the state of its task."""

    def latest_result(self, task_id: str) -> ResultMessage | None:
        """The latest state change received for the task, if any."""

    def wait_for_result(self, task_id: str, timeout: float | None) -> ResultMessage:
        """Block until the task is ready (reading results if nothing does yet);
        raises :class:`~leveret.client.errors.TimeoutError` after ``timeout``."""

    async def wait_for_result_async(self, task_id: str,
                                    timeout: float | None) -> ResultMessage:
        """:meth:`wait_for_result` on the running event loop."""

    def forget_result(self, task_id: str) -> None:
        """Drop what is known of the task."""


_current: weakref.ref[ResultBackend] | None = None


def set_current_backend(backend: ResultBackend) -> None:
    """Make ``backend`` the one an AsyncResult made without ``app=`` reads
    (every new App does this, as Celery's ``current_app``)."""
    global _current
    _current = weakref.ref(backend)


def current_backend() -> ResultBackend:
    """The backend set last (the most recently created App)."""
    backend = _current() if _current is not None else None
    if backend is None:
        raise RuntimeError('no App has been created: pass app= or create an App first')
    return backend


class ResultStore:
    """The latest :class:`ResultMessage` per task id."""

    def __init__(self, max_ready: int = 10000) -> None:
        self.max_ready = max_ready
        self._cond = threading.Condition()
        self._latest: OrderedDict[str, ResultMessage] = OrderedDict()
        self._ready_count = 0
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    def put(self, result: ResultMessage) -> None:
        with self._cond:
            previous = self._latest.pop(result.task_id, None)
            if previous is not None and previous.ready:
                self._ready_count -= 1
            self._latest[result.task_id] = result
            if result.ready:
                self._ready_count += 1
                self._evict()
            self._cond.notify_all()
            waiters = self._waiters.pop(result.task_id, [])
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    def _evict(self) -> None:
        # Results nobody asked for: forget the oldest finished ones.
        while self._ready_count > self.max_ready:
            for task_id, result in self._latest.items():
                if result.ready:
                    del self._latest[task_id]
                    self._ready_count -= 1
                    break

    def get(self, task_id: str) -> ResultMessage | None:
        with self._cond:
            return self._latest.get(task_id)

    def forget(self, task_id: str) -> None:
        with self._cond:
            result = self._latest.pop(task_id, None)
            if result is not None and result.ready:
                self._ready_count -= 1

    def wait(self, task_id: str, timeout: float | None) -> ResultMessage:
        with self._cond:
            if not self._cond.wait_for(lambda: self._is_ready(task_id), timeout):
                raise errors.TimeoutError(f'task {task_id} not ready within {timeout}s')
            return self._latest[task_id]

    async def wait_async(self, task_id: str, timeout: float | None) -> ResultMessage:
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                if self._is_ready(task_id):
                    return self._latest[task_id]
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.setdefault(task_id, []).append((loop, future))
            try:
                async with asyncio.timeout(timeout):
                    await future
            except TimeoutError:
                raise errors.TimeoutError(
                    f'task {task_id} not ready within {timeout}s') from None

    def _is_ready(self, task_id: str) -> bool:
        result = self._latest.get(task_id)
        return result is not None and result.ready

    def clear(self) -> None:
        with self._cond:
            self._latest.clear()
            self._ready_count = 0
            self._waiters.clear()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncResult:
    """The result of a task sent by this process (``rpc://`` results go to the
    sender's reply queue only)."""

    def __init__(self, id: str, app: ResultBackend | None = None,
                 task_name: str | None = None) -> None:
        self.id = id
        self.backend = app if app is not None else current_backend()
        self.task_name = task_name

    @property
    def app(self) -> ResultBackend:
        """Celery's name for where the result comes from."""
        return self.backend

    def __repr__(self) -> str:
        return f'<AsyncResult: {self.id}>'

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def _latest(self) -> ResultMessage | None:
        return self.backend.latest_result(self.id)

    @property
    def state(self) -> str:
        latest = self._latest()
        return latest.status if latest is not None else states.PENDING

    status = state

    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    @property
    def result(self) -> Any:
        """The return value, the exception of a failure, or None while pending."""
        latest = self._latest()
        return latest.value() if latest is not None else None

    info = result

    @property
    def traceback(self) -> str | None:
        latest = self._latest()
        return latest.traceback if latest is not None else None

    @property
    def date_done(self) -> datetime | None:
        """When the task finished (a timezone-aware datetime), as Celery's."""
        latest = self._latest()
        return parse_iso(latest.date_done) if latest is not None else None

    def get(self, timeout: float | None = None, propagate: bool = True) -> Any:
        """Wait for the task to finish; its return value, or raise its exception."""
        return self._outcome(self.backend.wait_for_result(self.id, timeout), propagate)

    async def get_async(self, timeout: float | None = None, propagate: bool = True) -> Any:
        return self._outcome(await self.backend.wait_for_result_async(self.id, timeout),
                             propagate)

    wait = get

    @staticmethod
    def _outcome(result: ResultMessage, propagate: bool) -> Any:
        value = result.value()
        if propagate and result.status in states.PROPAGATE_STATES:
            if isinstance(value, BaseException):
                raise value
            raise errors.TaskRevokedError(value)
        return value

    def forget(self) -> None:
        self.backend.forget_result(self.id)

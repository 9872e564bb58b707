"""Running one task: a :class:`Job` in, an :class:`Outcome` out.

Both are picklable, so the same code runs in a prefork child, a thread, or
on the worker's event loop. The outcome carries the result message body
ready to publish (serialized where the task ran, off the main process).
A job for a prefork child may carry its message as delivered
(:class:`RawMessage`): the child reads and validates it, not the busy main
process.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .. import errors, states
from ..context import Request
from ..messages import ResultMessage, TaskMessage, parse_iso, saferepr, utcnow
from .delivery import decode_table
from .tasks import Runner

IGNORED = 'IGNORED'
#: The outcome of a job taken back before it started (a pool that queues jobs).
UNSTARTED = 'UNSTARTED'
#: The outcome of a job whose message turned out not to be a valid task message
#: where it was read (see :class:`RawMessage`); it never started.
INVALID = 'INVALID'
#: The outcome of a job that ran but whose result the app's backend could not
#: store (it cannot be reached): see :mod:`.celery_trace`.
UNSTORED = 'UNSTORED'


@dataclass
class RawMessage:
    """A task message as delivered (protocol v2), not read yet."""

    #: The AMQP headers table, its 4-byte length first.
    headers: bytes
    body: bytes
    #: The properties :meth:`TaskMessage.from_wire` takes.
    properties: dict[str, Any]


@dataclass
class Job:
    """A task to run. It carries the message's headers as delivered; the
    :class:`Request` the task sees is built from them where it runs (a
    pool process), not in the busy main process."""

    job_id: int
    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    headers: dict[str, Any]
    delivery_info: dict[str, Any]
    reply_to: str | None
    correlation_id: str | None
    hostname: str
    ignore_result: bool = False
    #: Send a result message (the caller has a reply queue and wants it).
    wants_result: bool = True
    soft_time_limit: float | None = None
    time_limit: float | None = None
    #: Return the value itself (the message carries a chain or callbacks to send it to).
    wants_value: bool = False
    #: The message as delivered; args, kwargs, headers and wants_value come from it
    #: in :meth:`decode`, where the job runs.
    raw: RawMessage | None = None
    #: The message's embed (callbacks, errbacks, chain, chord) and properties,
    #: for Celery's tracer (:mod:`.celery_trace`).
    embed: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    _request: Request | None = field(default=None, repr=False)

    def fields(self) -> tuple[Any, ...]:
        """Every field but the request cache (built where the job runs), as
        plain values: what the prefork pool's pipe carries (see
        :mod:`.pools.pipes`). Every field must be listed:
        tests/worker/test_pipes.py round-trips them all."""
        raw = self.raw
        return (self.job_id, self.name, self.args, self.kwargs, self.headers,
                self.delivery_info, self.reply_to, self.correlation_id, self.hostname,
                self.ignore_result, self.wants_result, self.soft_time_limit, self.time_limit,
                self.wants_value, None if raw is None else (raw.headers, raw.body, raw.properties),
                self.embed, self.properties)

    @classmethod
    def from_fields(cls, fields: tuple[Any, ...]) -> Job:
        """The job :meth:`fields` describes."""
        *head, raw, embed, properties = fields
        return cls(*head, raw=None if raw is None else RawMessage(*raw), embed=embed,
                   properties=properties)

    def decode(self) -> None:
        """Read the delivered message, if the job carries one. Raises when it is
        not a valid task message (the same validation the main process does for
        the messages it reads itself)."""
        raw = self.raw
        if raw is None:
            return
        headers = decode_table(raw.headers, 0)[0]
        name, args, kwargs, embed = TaskMessage.read_parts(headers, raw.properties, raw.body)
        if name != self.name:
            raise ValueError(f'task name {name!r}, expected {self.name!r}')
        self.headers, self.args, self.kwargs = headers, args, kwargs
        self.wants_value = bool(embed['chain'] or embed['callbacks'])
        self.embed = embed
        self.properties = raw.properties
        self.raw = None
        self._request = None

    @property
    def request(self) -> Request:
        if self._request is None:
            h = self.headers
            self._request = Request(
                id=h.get('id'), task=self.name, args=tuple(self.args), kwargs=self.kwargs,
                retries=h.get('retries') or 0, eta=parse_iso(h.get('eta')),
                expires=parse_iso(h.get('expires')), root_id=h.get('root_id'),
                parent_id=h.get('parent_id'), group=h.get('group'), reply_to=self.reply_to,
                correlation_id=self.correlation_id, hostname=self.hostname,
                headers=dict(h), delivery_info=self.delivery_info,
                timelimit=(self.time_limit, self.soft_time_limit),
                ignore_result=self.ignore_result, called_directly=False)
        return self._request


@dataclass
class RetryPlan:
    eta: str
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: False when the task's own code already sent the retry (Celery's retry()).
    republish: bool = True


@dataclass
class Outcome:
    job_id: int
    state: str
    #: The rpc:// result to publish for this state, if any.
    result_body: bytes | None = None
    #: Short text of the return value or exception, for logs and events.
    summary: str = ''
    traceback: str | None = None
    runtime: float = 0.0
    retry: RetryPlan | None = None
    requeue: bool = False
    pid: int = 0
    #: The process running the task died under it.
    worker_lost: bool = False
    #: The return value, when the job asked for it.
    value: Any = None
    #: The message carries a chain or callbacks to send ``value`` to.
    follow_up: bool = False
    #: The exception of a failure decided outside the task (a lost process, a
    #: hard time limit), for the app's backend to record (:mod:`.app_backend`).
    error: BaseException | None = None

    def fields(self) -> tuple[Any, ...]:
        """Every field, as :meth:`Job.fields` (unpickled in the busy main process)."""
        return (self.job_id, self.state, self.result_body, self.summary, self.traceback,
                self.runtime, self.retry, self.requeue, self.pid, self.worker_lost, self.value,
                self.follow_up, self.error)

    @classmethod
    def from_fields(cls, fields: tuple[Any, ...]) -> Outcome:
        return cls(*fields)


#: This process's id (os.getpid() is a system call; a task outcome needs it).
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


def current_pid() -> int:
    """This process's id, without a system call (kept up to date across forks)."""
    return _pid


os.register_at_fork(after_in_child=_forked)


def _celery_exception(exc: BaseException, name: str) -> bool:
    module = sys.modules.get('celery.exceptions')
    cls = getattr(module, name, None) if module is not None else None
    return cls is not None and isinstance(exc, cls)


def failure_outcome(job: Job, exc: BaseException, runtime: float, tb: str | None,
                    status: str = states.FAILURE) -> Outcome:
    """The outcome of ``job`` failing with ``exc`` (after ``runtime`` seconds)."""
    body = None
    if job.wants_result:
        req = job.request
        body = ResultMessage.failure(req.id or '', exc, tb, status=status,
                                     group_id=req.group, parent_id=req.parent_id).body()
    return Outcome(job.job_id, status, body, saferepr(exc), tb, runtime, pid=_pid)


def _success(job: Job, value: Any, runtime: float) -> Outcome:
    body = None
    if job.wants_result:
        req = job.request
        try:
            body = ResultMessage.success(req.id or '', value, group_id=req.group,
                                         parent_id=req.parent_id).body()
        except (TypeError, ValueError) as exc:
            error = errors.EncodeError(f'cannot serialize the return value: {exc}')
            return failure_outcome(job, error, runtime, None)
    return Outcome(job.job_id, states.SUCCESS, body, saferepr(value), None, runtime,
                   pid=_pid, value=value if job.wants_value else None,
                   follow_up=job.wants_value)


def _retry(job: Job, exc: BaseException, runtime: float, republish: bool) -> Outcome:
    reason = getattr(exc, 'exc', None)
    plan = None
    if isinstance(exc, errors.Retry):
        eta = exc.retry_eta
        if eta is None:
            when = exc.when
            eta = when if not isinstance(when, int | float) else \
                utcnow() + timedelta(seconds=when)
        if eta is None:
            eta = utcnow()
        plan = RetryPlan(eta=eta.isoformat(), args=_listed(exc.retry_args),
                         kwargs=exc.retry_kwargs, options=exc.retry_options,
                         republish=republish)
    elif not republish:
        plan = RetryPlan(eta=utcnow().isoformat(), republish=False)
    body = None
    if job.wants_result:
        req = job.request
        message = ResultMessage.failure(req.id or '', reason, None, status=states.RETRY) \
            if reason is not None else ResultMessage(task_id=req.id or '', status=states.RETRY)
        body = message.body()
    return Outcome(job.job_id, states.RETRY, body, str(exc), None, runtime, retry=plan,
                   pid=_pid)


def _listed(args: Any) -> list[Any] | None:
    return list(args) if args is not None else None


def _classify(job: Job, exc: BaseException, runtime: float) -> Outcome:
    """The outcome of a task that raised ``exc``."""
    if isinstance(exc, errors.Retry):
        return _retry(job, exc, runtime, republish=True)
    if _celery_exception(exc, 'Retry'):
        return _retry(job, exc, runtime, republish=False)
    if isinstance(exc, errors.Reject) or _celery_exception(exc, 'Reject'):
        return Outcome(job.job_id, states.REJECTED, None, saferepr(exc), None, runtime,
                       requeue=bool(getattr(exc, 'requeue', False)), pid=_pid)
    if isinstance(exc, errors.Ignore) or _celery_exception(exc, 'Ignore'):
        return Outcome(job.job_id, IGNORED, None, saferepr(exc), None, runtime, pid=_pid)
    return failure_outcome(job, exc, runtime, traceback.format_exc())


def _finish(job: Job, value: Any, runtime: float) -> Outcome:
    pending = job.request.pending_retry
    if pending is not None:
        # retry(throw=False): republish, but the task's value is its result.
        outcome = _retry(job, pending, runtime, republish=True)
        success = _success(job, value, runtime)
        success.retry = outcome.retry
        return success
    return _success(job, value, runtime)


_local = threading.local()


def thread_loop() -> asyncio.AbstractEventLoop:
    """An event loop of this thread, for async tasks run from sync code."""
    loop = getattr(_local, 'loop', None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop


def execute(runner: Runner, job: Job) -> Outcome:
    """Run ``job`` here, synchronously (async tasks on this thread's own loop)."""
    if runner.traced:  # Celery's tracer and the app's backend (.celery_trace)
        return runner.trace(job)  # type: ignore[attr-defined, no-any-return]
    start = time.perf_counter()
    try:
        job.decode()  # a no-op unless the job carries its message unread
        token = runner.push(job.request)
        try:
            value = runner.call(job.args, job.kwargs)
            # isawaitable() asks the Awaitable ABC: not for the common None.
            if value is not None and inspect.isawaitable(value):
                value = thread_loop().run_until_complete(_awaited(value))
        finally:
            runner.pop(token)
    except BaseException as exc:  # the task's failure is the outcome
        if isinstance(exc, KeyboardInterrupt | SystemExit) and not _in_child():
            raise
        return _classify(job, exc, time.perf_counter() - start)
    return _finish(job, value, time.perf_counter() - start)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


async def execute_async(runner: Runner, job: Job) -> Outcome:
    """Run ``job`` on the running loop; reaching the time limit cancels it."""
    start = time.perf_counter()
    limit = job.soft_time_limit or job.time_limit
    deadline = asyncio.timeout(limit)
    try:
        job.decode()
        with runner.request_pushed(job.request):
            value = runner.call(job.args, job.kwargs)
            if inspect.isawaitable(value):
                async with deadline:
                    value = await value
    except Exception as exc:
        runtime = time.perf_counter() - start
        if limit is not None and deadline.expired():
            error = runner.soft_limit_error() if job.soft_time_limit \
                else errors.TimeLimitExceeded(job.time_limit)
            return failure_outcome(job, error, runtime, ''.join(traceback.format_exception(exc)))
        return _classify(job, exc, runtime)
    return _finish(job, value, time.perf_counter() - start)


_child = False


def mark_child() -> None:
    global _child
    _child = True


def _in_child() -> bool:
    return _child


@contextmanager
def soft_time_limit(seconds: float | None, error: type[BaseException]) -> Iterator[None]:
    """Raise ``error`` in the running code after ``seconds`` (SIGALRM: main thread only)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise error()

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

"""``App``, ``Task`` and sending tasks by name.

Every blocking call has a coroutine twin named with ``_async``
(``delay``/``delay_async``, ``apply_async``/``apply_async_async``,
``send_task``/``send_task_async``, ``get``/``get_async``). The blocking ones
run the coroutine on a private event loop thread, so a web app can call them
without an event loop of its own; the coroutines run on the caller's loop.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import threading
import uuid
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, overload

from . import bridge, errors
from .config import Settings
from .context import Request, current_request
from .messages import ResultMessage, make_task_message, utcnow
from .producer import Producer
from .result import AsyncResult, ResultStore, current_backend, set_current_backend
from .transport import QueueSpec

F = TypeVar('F', bound=Callable[..., Any])

#: "Not given" for options where None means something (max_retries=None: forever).
_UNSET: Any = object()


def current_app() -> App:
    """The most recently created :class:`App`."""
    app = current_backend()
    assert isinstance(app, App), 'only an App sets itself as the current backend'
    return app


#: Options of ``apply_async`` that become message fields (the rest are routing).
SEND_OPTIONS = frozenset({
    'countdown', 'eta', 'expires', 'priority', 'queue', 'routing_key', 'exchange', 'headers',
    'task_id', 'ignore_result', 'time_limit', 'soft_time_limit', 'retries', 'root_id',
    'parent_id', 'group_id', 'group_index', 'shadow', 'reply_to', 'delivery_mode', 'timeout',
})


class App:
    """A Celery-protocol application: task registry, settings, producer; the
    :class:`~leveret.client.result.ResultBackend` its AsyncResults read."""

    def __init__(self, broker_url: str | None = None, *, main: str | None = None,
                 **settings: Any) -> None:
        if broker_url is not None:
            settings['broker_url'] = broker_url
        self.conf = Settings(**settings)
        self.main = main
        self.tasks: dict[str, Task] = {}
        self.results = ResultStore()
        self._lock = threading.Lock()
        self._reset_process_state()
        bridge.register_fork_reset(self)
        atexit.register(_close_at_exit, weakref.ref(self))
        set_current_backend(self)

    def __repr__(self) -> str:
        return f'<App {self.main or ""} {self.conf.broker_url}>'

    def _reset_process_state(self) -> None:
        #: The reply queue of this process (Celery's ``oid``): new in each child.
        self.oid = str(uuid.uuid4())
        self._producers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Producer] = \
            weakref.WeakKeyDictionary()
        self._bridge: bridge.LoopThread | None = None

    def after_fork_in_child(self) -> None:
        """In a forked child: let go of the parent's loop thread and connections."""
        bridge.keep_forever((self._producers, self._bridge))
        self._lock = threading.Lock()
        self.results.clear()
        self._reset_process_state()

    # --- tasks ---------------------------------------------------------------
    @overload
    def task(self, fun: F) -> Task: ...

    @overload
    def task(self, fun: None = None, **options: Any) -> Callable[[F], Task]: ...

    def task(self, fun: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Register a function as a task: ``@app.task`` or ``@app.task(name=..., bind=True)``."""
        def register(f: Callable[..., Any]) -> Task:
            task = Task(self, f, **options)
            self.tasks[task.name] = task
            return task
        return register(fun) if fun is not None else register

    def gen_task_name(self, fun: Callable[..., Any]) -> str:
        module = fun.__module__
        if module == '__main__' and self.main:
            module = self.main
        return f'{module}.{fun.__qualname__}'

    # --- sending -------------------------------------------------------------
    def send_task(self, name: str, args: tuple[Any, ...] | list[Any] | None = None,
                  kwargs: dict[str, Any] | None = None, **options: Any) -> AsyncResult:
        """Send a task by name (it may be defined only in the worker)."""
        return self.run_sync(self.send_task_async(name, args, kwargs, **options))

    async def send_task_async(self, name: str, args: tuple[Any, ...] | list[Any] | None = None,
                              kwargs: dict[str, Any] | None = None,
                              **options: Any) -> AsyncResult:
        unknown = set(options) - SEND_OPTIONS
        if unknown:
            raise TypeError(f'unknown apply_async options: {", ".join(sorted(unknown))}')
        task = self.tasks.get(name)
        conf = self.conf
        parent = current_request.get()
        root_id, parent_id = options.get('root_id'), options.get('parent_id')
        if parent is not None and not parent.called_directly:
            root_id = root_id or parent.root_id or parent.id
            parent_id = parent_id or parent.id
        ignore_result = options.get('ignore_result')
        if ignore_result is None and task is not None:
            ignore_result = task.ignore_result  # by name only: None, as Celery's send_task
        priority = options.get('priority')
        if priority is None:
            priority = task.priority if task and task.priority is not None \
                else conf.task_default_priority
        message = make_task_message(
            name, args, kwargs, task_id=options.get('task_id'),
            countdown=options.get('countdown'), eta=options.get('eta'),
            expires=options.get('expires', task.expires if task else None),
            priority=priority, reply_to=options.get('reply_to') or self.oid,
            retries=options.get('retries', 0), root_id=root_id, parent_id=parent_id,
            group_id=options.get('group_id'), group_index=options.get('group_index'),
            time_limit=options.get('time_limit', task.time_limit if task else None),
            soft_time_limit=options.get('soft_time_limit',
                                        task.soft_time_limit if task else None),
            ignore_result=ignore_result, shadow=options.get('shadow'),
            delivery_mode=options.get('delivery_mode', conf.task_default_delivery_mode),
            headers=options.get('headers'))
        exchange, routing_key, declare = self._route(
            options.get('queue') or (task.queue if task else None),
            options.get('exchange'), options.get('routing_key'))
        await self.producer().send(message, exchange=exchange, routing_key=routing_key,
                                   declare=declare, timeout=options.get('timeout'))
        return AsyncResult(message.id, app=self, task_name=name)

    def _route(self, queue: str | None, exchange: str | None,
               routing_key: str | None) -> tuple[str, str, list[QueueSpec]]:
        """(exchange, routing key, queues to declare) of a task message."""
        if exchange:
            return exchange, routing_key or queue or self.conf.task_default_queue, []
        name = queue or routing_key or self.conf.task_default_queue
        return '', name, [self.queue_spec(name)]

    def queue_spec(self, name: str) -> QueueSpec:
        """A task queue as Celery declares it (durable), with configured arguments."""
        return QueueSpec(name, durable=True,
                         arguments=dict(self.conf.task_queue_arguments.get(name, {})))

    # --- results -------------------------------------------------------------
    def AsyncResult(self, task_id: str) -> AsyncResult:  # noqa: N802 - Celery's name
        return AsyncResult(task_id, app=self)

    def ensure_result_consumer(self) -> None:
        """Make sure results sent to this process's reply queue are being read."""
        self.run_sync(self.ensure_result_consumer_async())

    async def ensure_result_consumer_async(self) -> None:
        await self.producer().ensure_reply_consumer()

    # The ResultBackend protocol (what AsyncResult reads).
    def latest_result(self, task_id: str) -> ResultMessage | None:
        return self.results.get(task_id)

    def wait_for_result(self, task_id: str, timeout: float | None) -> ResultMessage:
        self.ensure_result_consumer()
        return self.results.wait(task_id, timeout)

    async def wait_for_result_async(self, task_id: str,
                                    timeout: float | None) -> ResultMessage:
        await self.ensure_result_consumer_async()
        return await self.results.wait_async(task_id, timeout)

    def forget_result(self, task_id: str) -> None:
        self.results.forget(task_id)

    # --- plumbing ------------------------------------------------------------
    def producer(self) -> Producer:
        """The producer of the running event loop."""
        loop = asyncio.get_running_loop()
        producer = self._producers.get(loop)
        if producer is None:
            producer = self._producers[loop] = Producer(self.conf, self.oid, self.results)
        return producer

    def run_sync(self, coro: Any) -> Any:
        """Run ``coro`` on the app's loop thread and wait for it (what the
        blocking calls do)."""
        with self._lock:
            if self._bridge is None:
                self._bridge = bridge.LoopThread(name=f'leveret-client-{id(self):x}')
            loop_thread = self._bridge
        # The coroutines bound their own waits; this is only a safety net.
        return loop_thread.run(coro, timeout=self.conf.publish_timeout * 3 + 5)

    def close(self) -> None:
        """Close the connections of the sync API (the async ones close with their loops)."""
        with self._lock:
            loop_thread, self._bridge = self._bridge, None
        if loop_thread is not None:
            producer = self._producers.get(loop_thread.loop)
            if producer is not None:
                try:
                    loop_thread.run(producer.close(), timeout=5)
                except Exception:  # closing on the way out: nothing left to do
                    pass
            loop_thread.stop()

    async def close_async(self) -> None:
        producer = self._producers.pop(asyncio.get_running_loop(), None)
        if producer is not None:
            await producer.close()


def _close_at_exit(ref: weakref.ref[App]) -> None:
    app = ref()
    if app is not None:
        app.close()


class Task:
    """A task function with its options; call it to run it here, ``delay`` it
    to run it on a worker."""

    def __init__(self, app: App, fun: Callable[..., Any], *, name: str | None = None,
                 bind: bool = False, queue: str | None = None, priority: int | None = None,
                 acks_late: bool | None = None, reject_on_worker_lost: bool | None = None,
                 ignore_result: bool | None = None, track_started: bool | None = None,
                 max_retries: int | None = _UNSET,
                 default_retry_delay: float | None = None, time_limit: float | None = None,
                 soft_time_limit: float | None = None,
                 expires: float | datetime | None = None,
                 rate_limit: str | None = None) -> None:
        conf = app.conf
        self.app = app
        self.fun = fun
        self.name = name or app.gen_task_name(fun)
        self.bind = bind
        self.queue = queue
        self.priority = priority
        self.acks_late = conf.task_acks_late if acks_late is None else acks_late
        self.reject_on_worker_lost = (conf.task_reject_on_worker_lost
                                      if reject_on_worker_lost is None else reject_on_worker_lost)
        self.ignore_result = conf.task_ignore_result if ignore_result is None else ignore_result
        self.track_started = conf.task_track_started if track_started is None else track_started
        self.max_retries: int | None = conf.task_max_retries if max_retries is _UNSET \
            else max_retries
        self.default_retry_delay = (conf.task_default_retry_delay
                                    if default_retry_delay is None else default_retry_delay)
        self.time_limit = conf.task_time_limit if time_limit is None else time_limit
        self.soft_time_limit = (conf.task_soft_time_limit
                                if soft_time_limit is None else soft_time_limit)
        self.expires = expires
        #: Celery's rate limit syntax (``'10/m'``), applied by the worker (needs kombu).
        self.rate_limit = rate_limit
        self.is_async = inspect.iscoroutinefunction(fun)
        functools.update_wrapper(self, fun)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f'<Task {self.name}>'

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.bind:
            return self.fun(self, *args, **kwargs)
        return self.fun(*args, **kwargs)

    @property
    def request(self) -> Request:
        request = current_request.get()
        return request if request is not None else Request()

    # --- sending -------------------------------------------------------------
    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        return self.apply_async(args, kwargs)

    async def delay_async(self, *args: Any, **kwargs: Any) -> AsyncResult:
        return await self.apply_async_async(args, kwargs)

    def apply_async(self, args: tuple[Any, ...] | list[Any] | None = None,
                    kwargs: dict[str, Any] | None = None, **options: Any) -> AsyncResult:
        """Send the task: ``countdown``, ``eta``, ``expires``, ``priority``, ``queue``,
        ``routing_key``, ``exchange``, ``headers``, ``task_id``, ``ignore_result``..."""
        return self.app.send_task(self.name, args, kwargs, **options)

    async def apply_async_async(self, args: tuple[Any, ...] | list[Any] | None = None,
                                kwargs: dict[str, Any] | None = None,
                                **options: Any) -> AsyncResult:
        return await self.app.send_task_async(self.name, args, kwargs, **options)

    def AsyncResult(self, task_id: str) -> AsyncResult:  # noqa: N802 - Celery's name
        return AsyncResult(task_id, app=self.app, task_name=self.name)

    # --- inside a worker -----------------------------------------------------
    def retry(self, args: tuple[Any, ...] | list[Any] | None = None,
              kwargs: dict[str, Any] | None = None, exc: BaseException | None = None,
              throw: bool = True, eta: datetime | None = None, countdown: float | None = None,
              max_retries: int | None = None, **options: Any) -> errors.Retry:
        """Send this task again, ``retries`` + 1, after ``countdown`` seconds (or at ``eta``).

        Raises :class:`~leveret.client.errors.Retry` (raise it on: ``raise self.retry(...)``),
        which tells the worker to republish the message; past ``max_retries``
        raises ``exc`` or :class:`~leveret.client.errors.MaxRetriesExceededError`."""
        request = self.request
        if request.called_directly:
            raise exc if exc is not None else errors.Retry('Task can be retried', None)
        retries = request.retries + 1
        limit = self.max_retries if max_retries is None else max_retries
        if not eta and countdown is None:
            countdown = self.default_retry_delay
        if limit is not None and retries > limit:
            if exc is not None:
                raise exc
            raise errors.MaxRetriesExceededError(
                f"Can't retry {self.name}[{request.id}] args:{request.args} "
                f'kwargs:{request.kwargs}')
        when_eta = eta or utcnow() + timedelta(seconds=countdown or 0)
        retry = errors.Retry(exc=exc, when=eta or countdown, retry_args=args,
                             retry_kwargs=kwargs, retry_eta=when_eta, retry_options=options)
        if throw:
            raise retry
        # Not thrown: the worker republishes when the task returns.
        request.pending_retry = retry
        return retry

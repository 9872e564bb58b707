"""The worker: consume task messages, run them in a pool, report outcomes.

Life of a task message::

    delivered -> decoded -> (unregistered: rejected, FAILURE result)
              -> received event -> eta in the future? held, unacked, prefetch +1
              -> ready -> a pool slot frees -> (revoked or expired: REVOKED)
              -> started: acked now unless acks_late; started event; STARTED result
              -> outcome: result published, events, acked (acks_late), retry republished

Everything here runs on the event loop thread and never awaits on the hot
path: broker writes go through the :class:`~.publisher.Outbox`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import resource
import signal
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
from pamqp import commands as spec

from .. import errors, states
from ..messages import ResultMessage, TaskMessage, make_task_message, parse_iso
from ..transport import RETRYABLE, normalize_url
from . import banner
from .connection import ConsumerConnection
from .control import RemoteControl
from .delivery import Delivery
from .events import EventDispatcher, LamportClock
from .execute import IGNORED, INVALID, UNSTARTED, Job, Outcome
from .frames import FrameWriter, Settler
from .options import WorkerOptions
from .pools import POOLS, Pool
from .publisher import Outbox, Publisher
from .request import TaskRequest, scan_headers, wire_properties
from .tasks import Registry

log = logging.getLogger('leveret.worker')

#: Above this kombu sends prefetch 0 (unlimited); so do we.
PREFETCH_MAX = 65535
#: Revoked task ids remembered (oldest forgotten first).
REVOKES_MAX = 50000
RECONNECT_DELAY = 2.0


class Worker:
    def __init__(self, registry: Registry, options: WorkerOptions) -> None:
        self.registry = registry
        self.options = options
        self.hostname = options.hostname
        self.clock = LamportClock()
        self.publisher = Publisher(options.broker_url, options.hostname)
        self.outbox = Outbox()
        self.events = EventDispatcher(self.publisher, self.outbox, self.hostname, self.clock,
                                      options.task_events)
        self.control = RemoteControl(self)
        self.pool: Pool | None = None
        #: The task consumers' connection (requests keep the one they came on).
        self.connection: ConsumerConnection | None = None
        self.settler: Settler | None = None  # its acks and rejects
        self.results: FrameWriter | None = None  # results, on the producer connection
        self.ready: deque[TaskRequest] = deque()
        self.active: dict[int, TaskRequest] = {}
        self.scheduled: dict[int, TaskRequest] = {}
        self.revoked: OrderedDict[str, None] = OrderedDict()
        self.total: dict[str, int] = {}
        self.started_at = time.monotonic()
        self._job_ids = itertools.count(1)
        self._consumer_tags: list[str] = []
        self._prefetch = options.prefetch_count
        self._shutting_down = False
        self._stop = asyncio.Event()
        self._lost = asyncio.Event()
        self._signals = 0

    # --- life cycle ----------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        pool_cls = POOLS[self.options.pool]
        self.pool = pool_cls(self.registry, self.options.concurrency, loop, self._on_outcome,
                             self._on_started)
        self.pool.start()
        self.outbox.start()
        try:
            connected_once = False
            while not self._shutting_down:
                try:
                    await self._connect()
                except RETRYABLE as exc:
                    log.error('cannot connect to %s: %r; trying again in %gs',
                              banner.safe_url(self.options.broker_url), exc, RECONNECT_DELAY)
                    await self._sleep_unless_stopping(RECONNECT_DELAY)
                    continue
                if not connected_once:
                    connected_once = True
                    banner.show(self)
                    log.info('%s ready.', self.hostname)
                    self.events.worker('worker-online', **self.heartbeat_fields())
                    self.events.start_heartbeat(self.heartbeat_fields)
                await self._wait_lost_or_stop()
                if self._lost.is_set() and not self._shutting_down:
                    log.error('connection to the broker lost; reconnecting')
                    self._forget_deliveries()
                    # Both connections start afresh (one may not know yet).
                    await self.publisher.close()
            await self._warm_shutdown()
        finally:
            self.events.stop_heartbeat()
            if self.pool is not None:
                self.pool.stop()
        return 0

    async def _connect(self) -> None:
        """The producer connection (with declarations and remote control), then
        the consumer connection: tasks come only on the latter."""
        self._lost.clear()
        if not self.publisher.connected:
            await self.publisher.connect()
            self.publisher.connection.close_callbacks.add(self._connection_lost)  # type: ignore
            await self.publisher.declare_exchange('celeryev', 'topic', durable=True)
            if self.results is not None:
                self.results.stop()
            self.results = FrameWriter(self.publisher.fast_channel)
            await self._start_control()
        await self._declare_queues()
        if self.connection is not None:
            self.connection.abort()  # the broker requeues what it held
        connection = await ConsumerConnection.open(
            normalize_url(self.options.broker_url), self._on_message, self._consumer_lost,
            name=f'{self.hostname} consumer')
        self.connection = connection
        self.settler = Settler(connection)
        await connection.qos(self._prefetch_value(), global_=True)
        self._consumer_tags = []
        for queue in self.options.queues:
            tag = f'{self.hostname}.{queue}'
            await connection.consume(queue, tag)
            self._consumer_tags.append(tag)

    async def _start_control(self) -> None:
        assert self.publisher.connection is not None
        control = await self.publisher.connection.channel(publisher_confirms=False)
        try:
            await self.control.start(control)
        except aio_pika.exceptions.ChannelClosed as exc:
            log.error('remote control disabled: %s (another worker named %s?)',
                      exc, self.hostname)

    async def _declare_queues(self) -> None:
        """Each queue as Celery declares it: durable, with a direct exchange of its name."""
        assert self.publisher.connection is not None
        channel = await self.publisher.connection.channel(publisher_confirms=False)
        for queue in self.options.queues:
            arguments = self.options.queue_arguments.get(queue)
            try:
                declared = await channel.declare_queue(queue, durable=True, arguments=arguments)
                exchange = await channel.declare_exchange(queue, 'direct', durable=True)
                await declared.bind(exchange, routing_key=queue)
            except aio_pika.exceptions.ChannelPreconditionFailed as exc:
                # Declared elsewhere with other arguments: consume it as it is.
                log.warning('queue %s exists with other arguments: %s', queue, exc)
                await channel.reopen()
        await channel.close()

    def _connection_lost(self, *args: Any) -> None:
        self._lost.set()

    def _consumer_lost(self, exc: BaseException) -> None:
        # A channel error (say an ack the broker refuses) ends consuming too.
        if not self._shutting_down:
            log.error('the task connection was closed: %s', exc)
            self._lost.set()

    async def _wait_lost_or_stop(self) -> None:
        waiters = [asyncio.ensure_future(self._lost.wait()),
                   asyncio.ensure_future(self._stop.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        except TimeoutError:
            pass

    def _forget_deliveries(self) -> None:
        """After a reconnect the broker redelivers what we held but had not run."""
        if self.pool is not None:
            self.pool.cancel_waiting()
        for request in list(self.scheduled.values()):
            if request.eta_handle is not None:
                request.eta_handle.cancel()
        self.scheduled.clear()
        self.ready.clear()
        self._prefetch = self.options.prefetch_count

    # --- signals and shutdown ------------------------------------------------
    def _on_signal(self, sig: int) -> None:
        self._signals += 1
        if self._signals == 1:
            log.warning('%s: warm shutdown: finishing running tasks (up to %gs); '
                        'send it again to stop at once', signal.Signals(sig).name,
                        self.options.shutdown_timeout)
            self.request_shutdown()
        else:
            log.warning('%s again: cold shutdown', signal.Signals(sig).name)
            if self.pool is not None:
                self.pool.kill()
            os._exit(1)

    def request_shutdown(self) -> None:
        self._shutting_down = True
        self._stop.set()

    async def _warm_shutdown(self) -> None:
        self.events.stop_heartbeat()
        connection = self.connection
        if connection is not None and not connection.is_closed:
            for tag in self._consumer_tags:
                try:
                    async with asyncio.timeout(5):
                        await connection.cancel(tag)
                except RETRYABLE as exc:
                    log.debug('cancelling %s: %r', tag, exc)
        # Give prefetched tasks back to the broker at once.
        returned = list(self.ready) + list(self.scheduled.values())
        self.ready.clear()
        for request in self.scheduled.values():
            if request.eta_handle is not None:
                request.eta_handle.cancel()
        self.scheduled.clear()
        for request in returned:
            self._reject(request, requeue=True)
        # Jobs queued in the pool come back unstarted: rejected in _unstarted.
        waiting = self.pool.cancel_waiting() if self.pool is not None else 0
        if returned or waiting:
            log.info('returned %d prefetched tasks to the broker', len(returned) + waiting)
        if self.pool is not None and self.pool.running:
            log.info('waiting for %d running tasks', len(self.pool.running))
            await self.pool.join(self.options.shutdown_timeout)
            if self.active:
                log.warning('%d tasks still running after %gs: stopped', len(self.active),
                            self.options.shutdown_timeout)
        self.events.flush()
        self.events.worker('worker-offline', **self.heartbeat_fields())
        if self.settler is not None:
            self.settler.flush()
        if connection is not None:
            await connection.flush()
        if self.results is not None:
            await self.results.flush()
        await self.outbox.flush()
        await self.outbox.stop()
        if connection is not None:
            await connection.close()
        await self.publisher.close()
        log.info('%s stopped.', self.hostname)

    # --- receiving -----------------------------------------------------------
    def _on_message(self, delivery: Delivery) -> None:
        """A task message from the consumer connection (called by it, on the loop)."""
        connection, settler = self.connection, self.settler
        assert settler is not None
        tag = delivery.delivery_tag
        settler.delivered(tag)
        if self._shutting_down:
            settler.reject(tag, requeue=True)
            return
        props = delivery.properties
        assert props is not None
        request = None
        # A pool process reads the message whole before it starts the task (and
        # reports it invalid); here only what the worker acts on.
        if props.headers_raw is not None and self._read_in_pool():
            hot = scan_headers(props.headers_raw)
            if hot is not None:
                runner = self.registry.get(hot['task'])
                if runner is not None:
                    request = TaskRequest.unread(hot, props, runner.spec, delivery, connection)
        try:
            if request is None:
                request = self._read(delivery, props, connection, settler)
                if request is None:
                    return
            eta = request.eta if request.eta_text is not None else None
            if request.expires_text is not None:
                request.expires  # noqa: B018 - a malformed time is refused now, not later
        except Exception as exc:
            log.error('rejecting an invalid task message (%s): %r', delivery.routing_key, exc)
            settler.reject(tag, requeue=False)
            return
        if eta is not None and eta > datetime.now(UTC):
            self._hold(request, eta)
        else:
            self.ready.append(request)
            self.dispatch()

    def _read_in_pool(self) -> bool:
        """Whether messages may be left for the pool process to read (task-received
        events need the whole message here)."""
        pool = self.pool
        return pool is not None and pool.reports_start and not self.events.task_events

    def _read(self, delivery: Delivery, props: Any, connection: Any,
              settler: Settler) -> TaskRequest | None:
        """Read and validate the whole message here (raises if it is invalid);
        None if it was handled already (an unregistered task)."""
        message = TaskMessage.from_wire(props.headers, wire_properties(props), delivery.body)
        runner = self.registry.get(message.name)
        if runner is None:
            self._unregistered(message, delivery.delivery_tag, settler)
            return None
        request = TaskRequest.read(message, props.headers or {}, runner.spec, delivery,
                                   connection)
        if self.events.task_events:
            headers = message.headers
            self.events.task('task-received', uuid=request.id, name=request.name,
                             args=headers.argsrepr, kwargs=headers.kwargsrepr,
                             root_id=headers.root_id, parent_id=headers.parent_id,
                             retries=headers.retries, eta=headers.eta, expires=headers.expires)
        return request

    def _unregistered(self, message: TaskMessage, tag: int, settler: Settler) -> None:
        log.error('received unregistered task %r (id %s): rejected', message.name, message.id)
        settler.reject(tag, requeue=False)
        if message.properties.reply_to:
            exc = errors.NotRegistered(message.name)
            self._publish_result(message.properties.reply_to,
                                 message.properties.correlation_id,
                                 ResultMessage.failure(message.id, exc).body())

    # --- eta/countdown: held unacked without blocking other work -------------
    def _hold(self, request: TaskRequest, eta: datetime) -> None:
        loop = asyncio.get_running_loop()
        delay = (eta - datetime.now(UTC)).total_seconds()
        request.job_id = next(self._job_ids)
        self.scheduled[request.job_id] = request
        request.eta_handle = loop.call_later(delay, self._eta_reached, request)
        self._change_prefetch(+1)

    def _eta_reached(self, request: TaskRequest) -> None:
        if self.scheduled.pop(request.job_id, None) is None:
            return
        request.eta_handle = None
        self._change_prefetch(-1)
        self.ready.append(request)
        self.dispatch()

    def _prefetch_value(self) -> int:
        return 0 if self._prefetch > PREFETCH_MAX or self.options.prefetch_count == 0 \
            else self._prefetch

    def _change_prefetch(self, delta: int) -> None:
        if self.options.prefetch_count == 0:
            return
        self._prefetch += delta
        if self.connection is not None:
            self.connection.qos(self._prefetch_value(), global_=True)

    # --- running -------------------------------------------------------------
    def dispatch(self) -> None:
        """Start ready tasks while the pool has free slots."""
        pool, ready, revoked = self.pool, self.ready, self.revoked
        assert pool is not None
        while ready and pool.has_capacity():
            request = ready.popleft()
            if self._stale(request):
                continue  # delivered before a reconnect: the broker redelivers it
            if request.id in revoked:
                self._revoked(request, expired=False)
            elif request.expires_text is not None and request.expires is not None \
                    and request.expires < datetime.now(UTC):
                self._revoked(request, expired=True)
            else:
                self._start(request, pool)

    def _start(self, request: TaskRequest, pool: Pool) -> None:
        if not request.job_id:
            request.job_id = next(self._job_ids)
        hard, soft = request.time_limits
        if request.raw is not None:  # read where it runs
            job = Job(request.job_id, request.name, [], {}, {}, request.delivery_info,
                      request.reply_to or None, request.correlation_id, self.hostname,
                      request.ignore_result, request.wants_result, soft, hard, raw=request.raw)
        else:
            message = request.message
            embed = message.embed
            headers = request.raw_headers if message.protocol == 2 else message.header_table()
            job = Job(request.job_id, request.name, message.args, message.kwargs,
                      headers or {}, request.delivery_info, request.reply_to or None,
                      request.correlation_id, self.hostname, request.ignore_result,
                      request.wants_result, soft, hard,
                      wants_value=bool(embed.chain or embed.callbacks))
        self.active[request.job_id] = request
        if not pool.reports_start:
            self._started(request, os.getpid())
        pool.apply(job)

    def _on_started(self, job_id: int, pid: int) -> None:
        request = self.active.get(job_id)
        if request is not None:
            self._started(request, pid)

    def _started(self, request: TaskRequest, pid: int) -> None:
        """The task runs now (in process ``pid``): ack it unless acks_late."""
        request.time_start = time.time()
        request.worker_pid = pid
        if not request.spec.acks_late:
            self._ack(request)
        if self.events.task_events:
            self.events.task('task-started', uuid=request.id)
        if request.spec.track_started and request.wants_result:
            self._publish_result(request.reply_to, request.correlation_id,
                                 ResultMessage.started(request.id, self.hostname, pid).body())

    def _on_outcome(self, outcome: Outcome) -> None:
        request = self.active.pop(outcome.job_id, None)
        if request is None:
            return
        if outcome.state == UNSTARTED:
            self._unstarted(request)
        elif outcome.state == INVALID:
            log.error('rejecting an invalid task message (%s): %s', request.routing_key,
                      outcome.summary)
            self._reject(request, requeue=False)
        else:
            name = request.name
            self.total[name] = self.total.get(name, 0) + 1
            handler = _OUTCOME_HANDLERS.get(outcome.state, Worker._failed)
            handler(self, request, outcome)
        if not self._shutting_down:
            self.dispatch()

    def _unstarted(self, request: TaskRequest) -> None:
        """A job the pool gave back before it ran (taken back, or its process died)."""
        if self._stale(request):
            return  # the broker redelivers it
        if self._shutting_down:
            self._reject(request, requeue=True)
        elif request.id in self.revoked:
            self._revoked(request, expired=False)
        else:
            self.ready.appendleft(request)

    def _stale(self, request: TaskRequest) -> bool:
        """Delivered on a connection that is gone: not ours to run or settle any more."""
        connection = self.connection
        return connection is None or request.channel is not connection or connection.is_closed

    def _succeeded(self, request: TaskRequest, outcome: Outcome) -> None:
        self._send_outcome_result(request, outcome)
        if outcome.retry is not None:  # retry(throw=False)
            self._republish(request, outcome)
        if outcome.follow_up:
            self._follow_up(request, outcome.value)
        self._settle(request)
        self.events.task('task-succeeded', uuid=request.id, result=outcome.summary,
                         runtime=outcome.runtime)
        log.info('Task %s[%s] succeeded in %.6fs: %s', request.name, request.id,
                 outcome.runtime, outcome.summary)

    def _failed(self, request: TaskRequest, outcome: Outcome) -> None:
        if outcome.worker_lost and request.spec.acks_late and request.spec.reject_on_worker_lost:
            log.error('Task %s[%s] lost with its process: requeued', request.name, request.id)
            self._reject(request, requeue=True)
            return
        self._send_outcome_result(request, outcome)
        self._settle(request)
        self.events.task('task-failed', uuid=request.id, exception=outcome.summary,
                         traceback=outcome.traceback)
        log.error('Task %s[%s] raised unexpected: %s in %.6fs%s', request.name, request.id,
                  outcome.summary, outcome.runtime,
                  f'\n{outcome.traceback.rstrip()}' if outcome.traceback else '')

    def _retried(self, request: TaskRequest, outcome: Outcome) -> None:
        if outcome.retry is not None and outcome.retry.republish:
            self._republish(request, outcome)
        self._send_outcome_result(request, outcome)
        self._settle(request)
        self.events.task('task-retried', uuid=request.id, exception=outcome.summary,
                         traceback=outcome.traceback)
        log.info('Task %s[%s] retry: %s (ran %.6fs)', request.name, request.id,
                 outcome.summary, outcome.runtime)

    def _rejected(self, request: TaskRequest, outcome: Outcome) -> None:
        self._reject(request, requeue=outcome.requeue)
        self.events.task('task-rejected', uuid=request.id, requeue=outcome.requeue)
        log.info('Task %s[%s] rejected (requeue=%s): %s', request.name, request.id,
                 outcome.requeue, outcome.summary)

    def _ignored(self, request: TaskRequest, outcome: Outcome) -> None:
        self._settle(request)
        log.info('Task %s[%s] ignored in %.6fs', request.name, request.id, outcome.runtime)

    def _revoked(self, request: TaskRequest, expired: bool) -> None:
        reason = 'expired' if expired else 'revoked'
        self._ack(request)
        if request.wants_result:
            body = ResultMessage.failure(request.id, errors.TaskRevokedError(reason),
                                         status=states.REVOKED).body()
            self._publish_result(request.reply_to, request.correlation_id, body)
        self.events.task('task-revoked', uuid=request.id, terminated=False, signum=None,
                         expired=expired)
        log.info('Task %s[%s] %s: discarded', request.name, request.id, reason)

    # --- broker writes -------------------------------------------------------
    def _send_outcome_result(self, request: TaskRequest, outcome: Outcome) -> None:
        if outcome.result_body is not None and request.wants_result:
            self._publish_result(request.reply_to, request.correlation_id,
                                 outcome.result_body)

    def _publish_result(self, reply_to: str, correlation_id: str, body: bytes) -> None:
        if self.results is not None:
            self.results.publish_result(reply_to, correlation_id, body)

    def _settle(self, request: TaskRequest) -> None:
        """The task is done with: ack it if acks_late held it."""
        if not request.acknowledged:
            self._ack(request)

    def _ack(self, request: TaskRequest) -> None:
        request.acknowledged = True
        if request.channel is self.connection and self.settler is not None:
            self.settler.ack(request.delivery_tag)

    def _reject(self, request: TaskRequest, requeue: bool) -> None:
        if request.acknowledged:
            return  # acked when it started: nothing left to reject (as Celery)
        request.acknowledged = True
        if request.channel is self.connection and self.settler is not None:
            self.settler.reject(request.delivery_tag, requeue)

    def _republish(self, request: TaskRequest, outcome: Outcome) -> None:
        """Send the task again for a retry: same id, retries + 1, the new eta."""
        plan = outcome.retry
        assert plan is not None
        message, headers = request.message, request.message.headers
        options = plan.options
        hard, soft = (list(headers.timelimit) + [None, None])[:2]
        retry = make_task_message(
            request.name, plan.args if plan.args is not None else message.args,
            plan.kwargs if plan.kwargs is not None else message.kwargs,
            task_id=request.id, eta=datetime.fromisoformat(plan.eta),
            expires=message.expires, priority=options.get('priority',
                                                          message.properties.priority),
            reply_to=message.properties.reply_to, retries=headers.retries + 1,
            root_id=headers.root_id, parent_id=headers.parent_id, group_id=headers.group,
            group_index=headers.group_index, time_limit=options.get('time_limit', hard),
            soft_time_limit=options.get('soft_time_limit', soft),
            ignore_result=headers.ignore_result, shadow=headers.shadow,
            delivery_mode=message.properties.delivery_mode, origin=self.hostname)
        retry.properties.correlation_id = message.properties.correlation_id
        queue = options.get('queue')
        exchange, routing_key = ('', queue) if queue else (request.exchange, request.routing_key)
        properties = retry.properties.model_dump(exclude_none=True)
        properties['headers'] = retry.header_table()
        props = spec.Basic.Properties(**properties)
        body = retry.body()
        publisher = self.publisher
        self.outbox.put(lambda: publisher.publish(body, exchange, routing_key, props,
                                                  confirm=True))

    def _follow_up(self, request: TaskRequest, value: Any) -> None:
        """Send the next task of a chain and the link callbacks (Celery's canvas
        in the message), with the return value as first argument."""
        embed = request.message.embed
        chain = list(embed.chain or [])
        if chain:
            self._send_signature(chain.pop(), value, request, chain)
        for signature in embed.callbacks or []:
            self._send_signature(signature, value, request, [])

    def _send_signature(self, signature: dict[str, Any], value: Any, request: TaskRequest,
                        chain: list[Any]) -> None:
        options = signature.get('options') or {}
        args = list(signature.get('args') or ())
        if not signature.get('immutable'):
            args.insert(0, value)
        headers = request.message.headers
        expires, eta = options.get('expires'), options.get('eta')
        message = make_task_message(
            signature['task'], args, signature.get('kwargs') or {},
            task_id=options.get('task_id'), reply_to=options.get('reply_to'),
            root_id=headers.root_id or request.id, parent_id=request.id,
            priority=options.get('priority'), countdown=options.get('countdown'),
            eta=parse_iso(eta) if isinstance(eta, str) else eta,
            expires=parse_iso(expires) if isinstance(expires, str) else expires,
            group_id=options.get('group_id'), origin=self.hostname)
        message.embed.chain = chain or None
        message.embed.callbacks = options.get('link')
        message.embed.errbacks = options.get('link_error')
        queue = options.get('queue')
        if isinstance(queue, dict):
            queue = queue.get('name')
        exchange = options.get('exchange') or ''
        routing_key = options.get('routing_key') or queue or self.options.default_queue
        if exchange and not isinstance(exchange, str):
            exchange = exchange.get('name', '')
        properties = message.properties.model_dump(exclude_none=True)
        properties['headers'] = message.header_table()
        props = spec.Basic.Properties(**properties)
        body = message.body()
        publisher = self.publisher
        self.outbox.put(lambda: publisher.publish(body, exchange, routing_key, props,
                                                  confirm=True))

    # --- remote control hooks ------------------------------------------------
    def revoke(self, task_id: str, terminate: bool = False) -> None:
        self.revoked[task_id] = None
        while len(self.revoked) > REVOKES_MAX:
            self.revoked.popitem(last=False)
        if self.pool is not None:
            for job_id, request in list(self.active.items()):
                if request.id != task_id:
                    continue
                if request.time_start is None:  # queued in the pool: take it back
                    self.pool.cancel_job(job_id)
                elif terminate:
                    self.pool.terminate_job(job_id)

    def running_requests(self) -> list[TaskRequest]:
        """The tasks running now."""
        return [r for r in self.active.values() if r.time_start is not None]

    def reserved_requests(self) -> list[TaskRequest]:
        """The tasks received, due and not running yet (queued in the pool included)."""
        return list(self.ready) + [r for r in self.active.values() if r.time_start is None]

    def heartbeat_fields(self) -> dict[str, Any]:
        return {'active': len(self.running_requests()), 'processed': sum(self.total.values()),
                'loadavg': [round(x, 2) for x in os.getloadavg()]}

    def stats(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        pool_info = self.pool.info() if self.pool is not None else {}
        hard, soft = self.options.time_limit, self.options.soft_time_limit
        return {
            'broker': banner.broker_info(self.options.broker_url),
            'clock': str(self.clock.value), 'pid': os.getpid(),
            'uptime': int(time.monotonic() - self.started_at),
            'pool': dict(pool_info, **{'max-tasks-per-child': 'N/A', 'timeouts': [soft, hard]}),
            'prefetch_count': self._prefetch_value(),
            'rusage': {'utime': usage.ru_utime, 'stime': usage.ru_stime,
                       'maxrss': usage.ru_maxrss, 'minflt': usage.ru_minflt,
                       'majflt': usage.ru_majflt, 'nvcsw': usage.ru_nvcsw,
                       'nivcsw': usage.ru_nivcsw},
            'total': dict(self.total),
            'sw_ident': 'leveret', 'sw_ver': '0.1.0',
        }


_OUTCOME_HANDLERS: dict[str, Callable[[Worker, TaskRequest, Outcome], None]] = {
    states.SUCCESS: Worker._succeeded,
    states.FAILURE: Worker._failed,
    states.RETRY: Worker._retried,
    states.REJECTED: Worker._rejected,
    IGNORED: Worker._ignored,
}

__all__ = ['Worker']

"""The worker's wiring and life cycle: connect, start, reconnect, signals,
warm shutdown.

:class:`Worker` builds the parts and owns the connections and the pool;
the parts own their data and call only downwards::

    Worker (lifecycle) -> RemoteControl (control), banner
           -> Intake (delivery -> request, eta hold, prefetch, dispatch)
                -> Outcomes (the outcome table) -> canvas (retry, chain messages)
                     -> BrokerWrites (acks, rejects, results, republish)
           -> WorkerState (requests by state, revoked, totals), read by all of them

Everything runs on the event loop thread and never awaits on the hot path:
broker writes go through the :class:`~.publisher.Outbox`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import aio_pika

from ..transport import RETRYABLE, normalize_url
from . import banner
from .app_backend import AppBackend
from .autoscale import Autoscaler
from .connection import ConsumerConnection
from .control import RemoteControl
from .events import EventDispatcher, LamportClock
from .intake import Intake
from .options import WorkerOptions
from .outcomes import Outcomes
from .pools import POOLS, Pool, PreforkPool
from .publisher import Outbox, Publisher
from .queues import TaskQueues
from .state import WorkerState
from .tasks import Registry
from .writes import BrokerWrites

log = logging.getLogger('leveret.worker')

RECONNECT_DELAY = 2.0


def signal_number(name: str | int | None) -> int | None:
    """Celery's signal names (``'KILL'``, ``'SIGKILL'``, ``9``); None for the default (TERM)."""
    if name is None or name == '':
        return None
    if isinstance(name, int) or str(name).isdigit():
        return int(name)
    text = str(name).upper()
    return int(signal.Signals[text if text.startswith('SIG') else f'SIG{text}'])


class Worker:
    def __init__(self, registry: Registry, options: WorkerOptions,
                 queues: TaskQueues | None = None) -> None:
        self.registry = registry
        self.options = options
        #: The queues consumed (``add_consumer``/``cancel_consumer`` change them).
        self.queues = queues or TaskQueues(options.queues, options.queue_arguments)
        self.hostname = options.hostname
        self.clock = LamportClock()
        self.publisher = Publisher(options.broker_url, options.hostname,
                                   broker_use_ssl=options.broker_use_ssl)
        self.outbox = Outbox()
        self.events = EventDispatcher(self.publisher, self.outbox, self.hostname, self.clock,
                                      options.task_events, options.heartbeat_interval)
        self.state = WorkerState(options.prefetch_count)
        self.writes = BrokerWrites(self.publisher, self.outbox, self.state.acks_may_wait)
        #: The app's own result backend, when its tasks' results go there.
        self.backend = AppBackend(registry.app, self.hostname) if registry.traced else None
        self.outcomes = Outcomes(self.state, self.writes, self.events, self.hostname,
                                 options.default_queue, self.backend,
                                 banner.results_uri(registry))
        self.intake = Intake(registry, self.hostname, self.state, self.writes, self.outcomes,
                             self.events, options.disable_rate_limits,
                             (options.time_limit, options.soft_time_limit))
        self.control = RemoteControl(options, registry, self.state, self.clock,
                                     self.publisher, self.events, self)
        self.pool: Pool | None = None
        #: ``--autoscale`` (read by remote control: ``autoscale``, ``stats``).
        self.autoscaler: Autoscaler | None = None
        #: ``-B``: Celery's beat service, in a thread of this process.
        self.beat: Any = None
        #: The task consumers' connection (requests keep the one they came on).
        self.connection: ConsumerConnection | None = None
        #: Queue name -> consumer tag, on the current consumer connection.
        self._consumer_tags: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._lost = asyncio.Event()
        self._signals = 0
        self._purged = False

    # --- life cycle ----------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        options = self.options
        pool_cls = POOLS[options.pool]
        size = max(options.autoscale[1], 1) if options.autoscale else options.concurrency
        self.pool = pool_cls(self.registry, size, loop, self.intake.on_outcome,
                             self.intake.on_started)
        if isinstance(self.pool, PreforkPool):
            self.pool.max_tasks_per_child = options.max_tasks_per_child
            self.pool.max_memory_per_child = options.max_memory_per_child
        self.intake.attach_pool(self.pool)
        self.pool.start()
        if options.autoscale:
            self.autoscaler = Autoscaler(self.pool, self.state, *options.autoscale,
                                         on_max_change=self._prefetch_follows,
                                         on_grown=self.intake.dispatch)
            self.autoscaler.start()
        self.outbox.start()
        try:
            connected_once = False
            while not self.state.shutting_down:
                try:
                    await self._connect()
                except RETRYABLE as exc:
                    log.error('cannot connect to %s: %r; trying again in %gs',
                              banner.safe_url(self.options.broker_url), exc, RECONNECT_DELAY)
                    await self._sleep_unless_stopping(RECONNECT_DELAY)
                    continue
                if not connected_once:
                    connected_once = True
                    await self._first_start()
                await self._wait_lost_or_stop()
                if self._lost.is_set() and not self.state.shutting_down:
                    log.error('connection to the broker lost; reconnecting')
                    self.intake.forget_deliveries()
                    # Both connections start afresh (one may not know yet).
                    await self.publisher.close()
            await self._warm_shutdown()
        finally:
            self.events.stop_heartbeat()
            if self.autoscaler is not None:
                self.autoscaler.stop()
            self._stop_beat()
            if self.pool is not None:
                self.pool.stop()
        return 0

    async def _first_start(self) -> None:
        """Once connected the first time: banner, mingle, ready, events, beat."""
        banner.show(self.options, self.registry, self.queues)
        if self.options.mingle:
            try:
                await self.control.mingle()
            except RETRYABLE as exc:
                log.warning('mingle: %r', exc)
        log.info('%s ready.', self.hostname)
        self.events.worker('worker-online', **self.state.heartbeat_fields())
        if self.options.heartbeat:
            self.events.start_heartbeat(self.state.heartbeat_fields)
        if self.options.beat:
            self._start_beat()

    # --- -B: the app's beat schedule, as celery worker -B runs it -------------
    def _start_beat(self) -> None:
        from celery import beat

        self.beat = beat.EmbeddedService(self.registry.app, thread=True,
                                         schedule_filename=self.options.schedule_filename,
                                         scheduler_cls=self.options.scheduler)
        self.beat.start()
        log.info('beat: started (%s)', self.options.schedule_filename)

    def _stop_beat(self) -> None:
        if self.beat is not None:
            self.beat.stop()
            self.beat = None
    async def _connect(self) -> None:
        """The producer connection (with declarations and remote control), then
        the consumer connection: tasks come only on the latter."""
        self._lost.clear()
        if not self.publisher.connected:
            await self.publisher.connect()
            self.publisher.connection.close_callbacks.add(self._connection_lost)  # type: ignore
            await self.publisher.declare_exchange('celeryev', 'topic', durable=True)
            self.writes.attach_results(self.publisher.fast_channel)
            await self._start_control()
        await self._declare_queues()
        if self.connection is not None:
            self.connection.abort()  # the broker requeues what it held
        connection = await ConsumerConnection.open(
            normalize_url(self.options.broker_url), self.intake.on_message,
            self._consumer_lost, name=f'{self.hostname} consumer',
            broker_use_ssl=self.options.broker_use_ssl)
        self.connection = connection
        self.writes.attach_consumer(connection)
        await connection.qos(self.state.prefetch.value, global_=True)
        self._consumer_tags = {}
        for queue in self.queues.names:
            await self._consume(connection, queue)

    async def _consume(self, connection: ConsumerConnection, queue: str) -> None:
        tag = f'{self.hostname}.{queue}'
        await connection.consume(queue, tag, self.queues.consumer_arguments(queue))
        self._consumer_tags[queue] = tag

    async def _start_control(self) -> None:
        assert self.publisher.connection is not None
        control = await self.publisher.connection.channel(publisher_confirms=False)
        try:
            await self.control.start(control)
        except aio_pika.exceptions.ChannelClosed as exc:
            log.error('remote control disabled: %s (another worker named %s?)',
                      exc, self.hostname)

    async def _declare_queues(self) -> None:
        """The queues as Celery declares them (:mod:`.queues`); ``--purge`` empties them
        the first time."""
        assert self.publisher.connection is not None
        await self.queues.declare(self.queues.names, self.publisher.connection)
        if self.options.purge and not self._purged:
            self._purged = True
            channel = await self.publisher.connection.channel(publisher_confirms=False)
            discarded = 0
            for name in self.queues.names:
                queue = await channel.get_queue(name, ensure=False)
                ok = await queue.purge()
                discarded += ok.message_count or 0
            await channel.close()
            log.warning('Discarded %d message%s from %s.', discarded,
                        '' if discarded == 1 else 's', ', '.join(self.queues.names))

    def _connection_lost(self, *args: Any) -> None:
        self._lost.set()

    def _consumer_lost(self, exc: BaseException) -> None:
        # A channel error (say an ack the broker refuses) ends consuming too.
        if not self.state.shutting_down:
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
        self.state.shutting_down = True
        self._stop.set()

    async def _warm_shutdown(self) -> None:
        self.events.stop_heartbeat()
        connection = self.connection
        if connection is not None and not connection.is_closed:
            for tag in self._consumer_tags.values():
                try:
                    async with asyncio.timeout(5):
                        await connection.cancel(tag)
                except RETRYABLE as exc:
                    log.debug('cancelling %s: %r', tag, exc)
        # Give prefetched tasks back to the broker at once.
        returned = self.intake.drop_waiting()
        for request in returned:
            self.writes.reject(request, requeue=True)
        # Jobs queued in the pool come back unstarted: requeued by the outcomes.
        waiting = self.pool.cancel_waiting() if self.pool is not None else 0
        if returned or waiting:
            log.info('returned %d prefetched tasks to the broker', len(returned) + waiting)
        if self.pool is not None and self.pool.running:
            log.info('waiting for %d running tasks', len(self.pool.running))
            await self.pool.join(self.options.shutdown_timeout)
            if self.state.active:
                log.warning('%d tasks still running after %gs: stopped', len(self.state.active),
                            self.options.shutdown_timeout)
        self.events.flush()
        self.events.worker('worker-offline', **self.state.heartbeat_fields())
        await self.writes.flush()
        await self.outbox.stop()
        if self.backend is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.backend.close)
        if connection is not None:
            await connection.close()
        await self.publisher.close()
        log.info('%s stopped.', self.hostname)

    # --- what remote control may ask (control.WorkerActions) -----------------
    def revoke(self, task_id: str, terminate: bool = False, signal: str | None = None
               ) -> bool:
        known = any(r.id == task_id for r in self.state.active.values())
        if self.backend is not None and not known:
            self.backend.revoke_unknown(task_id)
        return self.intake.revoke(task_id, terminate, signal_number(signal))

    def pool_info(self) -> dict[str, Any]:
        return self.pool.info() if self.pool is not None else {}

    def pool_resize(self, n: int) -> None:
        assert self.pool is not None
        if n > 0:
            self.pool.grow(n)
            self.intake.dispatch()
        elif n < 0:
            self.pool.shrink(-n)
        self._prefetch_follows(n)

    def _prefetch_follows(self, slots: int) -> None:
        """The pool has ``slots`` more (or fewer) slots: so has the prefetch count."""
        if self.state.prefetch.resize(slots * self.options.prefetch_multiplier) \
                and self.connection is not None and not self.connection.is_closed:
            self.connection.qos(self.state.prefetch.value, global_=True)

    def pool_restart(self) -> None:
        assert self.pool is not None
        self.pool.restart()

    def add_consumer(self, queue: str, exchange: str | None, exchange_type: str | None,
                     routing_key: str | None, **options: Any) -> None:
        if self.queues.add(queue, exchange, exchange_type, routing_key, **options):
            asyncio.get_running_loop().create_task(self._start_consuming(queue))

    async def _start_consuming(self, queue: str) -> None:
        try:
            assert self.publisher.connection is not None
            await self.queues.declare([queue], self.publisher.connection)
            if self.connection is not None and queue in self.queues.consuming:
                await self._consume(self.connection, queue)
                log.info('Started consuming from %s', queue)
        except Exception as exc:  # noqa: BLE001 - a bad queue must not stop the worker
            log.error('add_consumer %s failed: %r', queue, exc)
            self.queues.cancel(queue)

    def cancel_consumer(self, queue: str) -> None:
        log.info('Canceling queue %s', queue)
        self.queues.cancel(queue)
        tag = self._consumer_tags.pop(queue, None)
        if tag is not None and self.connection is not None and not self.connection.is_closed:
            asyncio.get_running_loop().create_task(self._cancel(self.connection, tag))

    async def _cancel(self, connection: ConsumerConnection, tag: str) -> None:
        try:
            await connection.cancel(tag)
        except RETRYABLE as exc:
            log.warning('cancelling %s: %r', tag, exc)

    def active_queues(self) -> list[dict[str, Any]]:
        return self.queues.as_dicts()

    def set_rate_limit(self, task_name: str, rate_limit: Any) -> None:
        self.intake.set_rate_limit(task_name, rate_limit)

    def set_task_events(self, enabled: bool) -> bool:
        changed = self.events.task_events != enabled
        self.events.task_events = enabled
        return changed


__all__ = ['Worker']

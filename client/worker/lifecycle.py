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
from .connection import ConsumerConnection
from .control import RemoteControl
from .events import EventDispatcher, LamportClock
from .intake import Intake
from .options import WorkerOptions
from .outcomes import Outcomes
from .pools import POOLS, Pool
from .publisher import Outbox, Publisher
from .state import WorkerState
from .tasks import Registry
from .writes import BrokerWrites

log = logging.getLogger('leveret.worker')

RECONNECT_DELAY = 2.0


class Worker:
    def __init__(self, registry: Registry, options: WorkerOptions) -> None:
        self.registry = registry
        self.options = options
        self.hostname = options.hostname
        self.clock = LamportClock()
        self.publisher = Publisher(options.broker_url, options.hostname,
                                   broker_use_ssl=options.broker_use_ssl)
        self.outbox = Outbox()
        self.events = EventDispatcher(self.publisher, self.outbox, self.hostname, self.clock,
                                      options.task_events)
        self.state = WorkerState(options.prefetch_count)
        self.writes = BrokerWrites(self.publisher, self.outbox)
        self.outcomes = Outcomes(self.state, self.writes, self.events, self.hostname,
                                 options.default_queue)
        self.intake = Intake(registry, self.hostname, self.state, self.writes, self.outcomes,
                             self.events)
        self.control = RemoteControl(options, registry, self.state, self.clock,
                                     self.publisher, self.events, self)
        self.pool: Pool | None = None
        #: The task consumers' connection (requests keep the one they came on).
        self.connection: ConsumerConnection | None = None
        self._consumer_tags: list[str] = []
        self._stop = asyncio.Event()
        self._lost = asyncio.Event()
        self._signals = 0

    # --- life cycle ----------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        pool_cls = POOLS[self.options.pool]
        self.pool = pool_cls(self.registry, self.options.concurrency, loop,
                             self.intake.on_outcome, self.intake.on_started)
        self.intake.attach_pool(self.pool)
        self.pool.start()
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
                    banner.show(self.options, self.registry)
                    log.info('%s ready.', self.hostname)
                    self.events.worker('worker-online', **self.state.heartbeat_fields())
                    self.events.start_heartbeat(self.state.heartbeat_fields)
                await self._wait_lost_or_stop()
                if self._lost.is_set() and not self.state.shutting_down:
                    log.error('connection to the broker lost; reconnecting')
                    self.intake.forget_deliveries()
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
            for tag in self._consumer_tags:
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
        if connection is not None:
            await connection.close()
        await self.publisher.close()
        log.info('%s stopped.', self.hostname)

    # --- what remote control may ask (control.WorkerActions) -----------------
    def revoke(self, task_id: str, terminate: bool = False) -> None:
        self.intake.revoke(task_id, terminate)

    def pool_info(self) -> dict[str, Any]:
        return self.pool.info() if self.pool is not None else {}


__all__ = ['Worker']

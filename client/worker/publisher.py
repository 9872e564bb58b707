"""The worker's outgoing side.

:class:`Outbox` runs broker operations (publishes, acks) handed over by
synchronous code, in order, on one task: the hot path never awaits, and an
ack queued after a result publish is written after it.

:class:`Publisher` is the worker's producer connection (results, retried
tasks, events, control replies), separate from the consumer connection as in
Celery: a broker that blocks publishers must not stop the acks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection
from pamqp import commands as spec

from .. import tls
from ..serialization import JSON, UTF8, dumps
from ..transport import RETRYABLE, normalize_url

log = logging.getLogger(__name__)

Operation = Callable[[], Awaitable[Any]]


class Outbox:
    def __init__(self) -> None:
        self._items: deque[Operation] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._drain())

    def put(self, operation: Operation) -> None:
        self._items.append(operation)
        self._idle.clear()
        self._wakeup.set()

    async def _drain(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._items:
                operation = self._items.popleft()
                try:
                    await operation()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning('broker operation failed: %r', exc)
            self._idle.set()

    async def flush(self, timeout: float = 10.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            log.warning('gave up on %d queued broker operations', len(self._items))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


class Publisher:
    """One connection with a fast channel (results, events) and a confirmed
    one (retried tasks: not lost between the ack and the broker)."""

    def __init__(self, url: str, name: str, broker_use_ssl: Any = None) -> None:
        self.url = normalize_url(url)
        self.tls = tls.for_url(self.url, broker_use_ssl)
        self.name = name
        self.connection: AbstractConnection | None = None
        self._fast: Any = None
        self._confirmed: Any = None
        self._channel: AbstractChannel | None = None
        self._exchanges: set[str] = set()

    async def connect(self) -> None:
        self.connection = await aio_pika.connect(
            self.tls.url, ssl_context=self.tls.context,
            client_properties={'connection_name': f'{self.name} producer'})
        self._channel = await self.connection.channel(publisher_confirms=False)
        self._fast = await self._channel.get_underlay_channel()
        confirmed = await self.connection.channel(publisher_confirms=True)
        self._confirmed = await confirmed.get_underlay_channel()
        self._exchanges = set()

    @property
    def fast_channel(self) -> Any:
        """The aiormq channel without confirms (results, events)."""
        return self._fast

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self.connection.is_closed

    async def declare_exchange(self, name: str, kind: str, durable: bool) -> None:
        if name in self._exchanges or self._channel is None:
            return
        await self._channel.declare_exchange(name, kind, durable=durable)
        self._exchanges.add(name)

    async def publish(self, body: bytes, exchange: str, routing_key: str,
                      properties: spec.Basic.Properties, confirm: bool = False,
                      timeout: float = 30.0) -> None:
        channel = self._confirmed if confirm else self._fast
        if channel is None:
            raise ConnectionError('the producer connection is not open')
        await channel.basic_publish(body, exchange=exchange, routing_key=routing_key,
                                    properties=properties, timeout=timeout)

    async def publish_json(self, payload: Any, exchange: str, routing_key: str,
                           headers: dict[str, Any], delivery_mode: int = 1) -> None:
        await self.publish(dumps(payload), exchange, routing_key, spec.Basic.Properties(
            content_type=JSON, content_encoding=UTF8, headers=headers,
            delivery_mode=delivery_mode, priority=0))

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        self._fast = self._confirmed = self._channel = None
        if connection is not None:
            try:
                async with asyncio.timeout(5):
                    await connection.close()
            except RETRYABLE as exc:
                log.debug('closing the producer connection: %r', exc)


"""One aio-pika connection on the running event loop: publishing with a
bounded wait, and consumers that come back after a reconnect.

Every publish has a deadline. Until it passes, a refused or lost connection
is retried; when it passes, :class:`~leveret.client.errors.BrokerUnavailable` (no
connection) or :class:`~leveret.client.errors.PublishTimeout` (connected, but the
broker neither confirmed nor read the message, e.g. because it blocked the
connection) is raised. Nothing waits forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from pamqp import commands as spec

from . import errors, tls

log = logging.getLogger(__name__)

#: Errors after which the connection is dropped and made again.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError, OSError, aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError, aiormq.exceptions.ChannelClosed,
)
#: The same, and timeouts.
RETRYABLE: tuple[type[BaseException], ...] = (TimeoutError, *CONNECTION_ERRORS)

DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672/'


def normalize_url(url: str | None) -> str:
    """An AMQP URL as aio-pika reads it, from Celery's spellings too
    (``pyamqp://``, ``amqp://host//`` for the vhost ``/``)."""
    url = url or DEFAULT_URL
    for scheme in ('pyamqp://', 'librabbitmq://'):
        if url.startswith(scheme):
            url = 'amqp://' + url[len(scheme):]
    if url.endswith('//'):
        url = url[:-1]
    return url


@dataclass(frozen=True)
class QueueSpec:
    """A queue to declare before use."""

    name: str
    durable: bool = True
    exclusive: bool = False
    auto_delete: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.name, self.durable, self.exclusive, self.auto_delete))


MessageCallback = Callable[[AbstractIncomingMessage], Awaitable[None] | None]


class Transport:
    """A connection that is made on first use and made again after a loss."""

    def __init__(self, url: str | None, *, connect_timeout: float = 10.0,
                 publish_timeout: float = 10.0, confirm: bool = True,
                 name: str = 'leveret-client', broker_use_ssl: Any = None) -> None:
        self.url = normalize_url(url)
        #: The URL and TLS context connected with (amqps:// with broker_use_ssl).
        self.tls = tls.for_url(self.url, broker_use_ssl)
        self.connect_timeout = connect_timeout
        self.publish_timeout = publish_timeout
        self.confirm = confirm
        self.name = name
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        #: Consumers get a channel of their own: a failed declare on the
        #: publishing channel (406, say) must not stop them.
        self._consumer_channel: AbstractChannel | None = None
        self._declared: set[str] = set()
        self._consumers: list[tuple[QueueSpec, MessageCallback]] = []
        self._lock = asyncio.Lock()
        self._closed = False

    # --- connection ----------------------------------------------------------
    @property
    def connected(self) -> bool:
        return (self._connection is not None and not self._connection.is_closed
                and self._channel is not None and not self._channel.is_closed
                and (self._consumer_channel is None or not self._consumer_channel.is_closed))

    async def channel(self, timeout: float | None = None) -> AbstractChannel:
        """The publishing channel, connecting (again) if needed."""
        if self.connected:
            assert self._channel is not None
            return self._channel
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.connect_timeout if timeout is None else timeout)
        async with self._lock:
            if not self.connected:
                await self._connect(deadline)
        assert self._channel is not None
        return self._channel

    async def _connect(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.1
        last: BaseException | None = None
        await self._drop()
        while not self._closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    connection = await aio_pika.connect(
                        self.tls.url, ssl_context=self.tls.context,
                        client_properties={'connection_name': self.name,
                                           'product': 'leveret-client'})
                    try:
                        channel = await connection.channel(publisher_confirms=self.confirm)
                        self._connection, self._channel = connection, channel
                        self._consumer_channel = None
                        self._declared = set()
                        for queue, callback in self._consumers:
                            await self._start_consumer(queue, callback)
                    except BaseException:
                        self._connection = self._channel = self._consumer_channel = None
                        await _close_quietly(connection)
                        raise
                return
            except aiormq.exceptions.ProbableAuthenticationError as exc:
                raise errors.BrokerUnavailable(f'{self._where()}: access refused: {exc}') from exc
            except RETRYABLE as exc:
                last = exc
                log.debug('cannot connect to %s: %r', self._where(), exc)
                await asyncio.sleep(max(0.0, min(delay, deadline - loop.time())))
                delay = min(delay * 2, 1.0)
        raise errors.BrokerUnavailable(
            f'cannot connect to {self._where()}: {last!r}') from last

    def _where(self) -> str:
        from yarl import URL
        url = URL(self.tls.url)
        return f'{url.scheme}://{url.host}:{url.port or 5672}'

    async def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._consumer_channel = None
        if connection is not None:
            await _close_quietly(connection)

    async def close(self) -> None:
        self._closed = True
        await self._drop()

    # --- topology ------------------------------------------------------------
    async def declare(self, queues: Sequence[QueueSpec], channel: AbstractChannel) -> None:
        for queue in queues:
            if queue.name in self._declared:
                continue
            try:
                await channel.declare_queue(
                    queue.name, durable=queue.durable, exclusive=queue.exclusive,
                    auto_delete=queue.auto_delete, arguments=queue.arguments or None)
            except aiormq.exceptions.ChannelPreconditionFailed:
                # It exists with other arguments (x-max-priority, say): use it as is.
                log.debug('queue %s exists with other arguments', queue.name)
                await channel.reopen()
            self._declared.add(queue.name)

    # --- publishing ----------------------------------------------------------
    async def publish(self, body: bytes, *, exchange: str = '', routing_key: str,
                      properties: dict[str, Any], declare: Sequence[QueueSpec] = (),
                      timeout: float | None = None) -> None:
        """Publish and wait for the broker's confirm, within ``timeout``."""
        loop = asyncio.get_running_loop()
        timeout = self.publish_timeout if timeout is None else timeout
        deadline = loop.time() + timeout
        props = spec.Basic.Properties(**properties)
        while True:
            channel = await self.channel(timeout=max(deadline - loop.time(), 0.0))
            try:
                async with asyncio.timeout(max(deadline - loop.time(), 0.0)):
                    await self._wait_unblocked()
                    if declare:
                        await self.declare(declare, channel)
                    underlay = await channel.get_underlay_channel()
                    confirmation = await underlay.basic_publish(
                        body, exchange=exchange, routing_key=routing_key, properties=props)
                if isinstance(confirmation, spec.Basic.Nack):
                    raise errors.PublishError(f'the broker refused the message ({routing_key})')
                return
            except TimeoutError:
                raise errors.PublishTimeout(
                    f'{self._where()} did not take the message within {timeout:g}s'
                    + (' (the broker has blocked the connection)' if self._blocked() else '')
                ) from None
            except CONNECTION_ERRORS as exc:
                log.debug('publish to %s failed, reconnecting: %r', self._where(), exc)
                await self._drop()
                if loop.time() >= deadline:
                    raise errors.BrokerUnavailable(
                        f'lost the connection to {self._where()}: {exc!r}') from exc

    def _underlay_connection(self) -> aiormq.Connection | None:
        transport = getattr(self._connection, 'transport', None)
        return getattr(transport, 'connection', None)

    def _blocked(self) -> bool:
        conn = self._underlay_connection()
        event = getattr(conn, '_Connection__connection_unblocked', None)
        return event is not None and not event.is_set()

    async def _wait_unblocked(self) -> None:
        """Wait while the broker has blocked the connection (connection.blocked)."""
        conn = self._underlay_connection()
        if conn is not None:
            await conn.ready()

    # --- consuming -----------------------------------------------------------
    async def consume(self, queue: QueueSpec, callback: MessageCallback) -> None:
        """Consume ``queue`` (no-ack) now and after every reconnect."""
        self._consumers.append((queue, callback))
        if self.connected:
            await self._start_consumer(queue, callback)
        else:
            await self.channel()

    async def _start_consumer(self, queue: QueueSpec, callback: MessageCallback) -> None:
        assert self._connection is not None
        if self._consumer_channel is None:
            self._consumer_channel = await self._connection.channel(publisher_confirms=False)
        declared = await self._consumer_channel.declare_queue(
            queue.name, durable=queue.durable, exclusive=queue.exclusive,
            auto_delete=queue.auto_delete, arguments=queue.arguments or None)
        self._declared.add(queue.name)
        await declared.consume(callback, no_ack=True)  # type: ignore[arg-type]


async def _close_quietly(connection: AbstractConnection) -> None:
    try:
        async with asyncio.timeout(2):
            await connection.close()
    except Exception as exc:  # closing a dead connection: nothing to report
        log.debug('closing connection: %r', exc)

"""The worker's own connection for consuming tasks: an ``asyncio.Protocol``
on the sans-IO layer of ``protocol/``.

Through aiormq every frame passes a stream reader, a reader task and a
future, a content header goes through pamqp's generic unmarshalling and
each message callback gets a task of its own; at thousands of tasks a
second that was a quarter of the worker's main process. Here frames are
split by :class:`protocol.FrameReader` in ``data_received``, put together
by the :class:`protocol.assembler.ContentAssembler` (the broker's, RabbitMQ's
rules and texts), decoded by :mod:`.delivery` and handed to a plain
callback; acks, rejects and qos go out in one write per loop turn. pamqp still encodes and
decodes the cold methods (handshake, qos, consume, cancel, close).

The connection carries one channel and only consumes: declarations, remote
control and every publish stay on aio-pika.
"""

from __future__ import annotations

import asyncio
import logging
import platform
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote

from pamqp import commands as spec
from yarl import URL

from leveret.protocol import FrameReader, methods
from leveret.protocol.assembler import ContentAssembler
from leveret.protocol.constants import (
    BASIC_DELIVER,
    FRAME_BODY,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
)
from leveret.protocol.errors import FrameError, UnexpectedFrame

from .. import tls
from . import frames
from .delivery import (
    DELIVER_ID,
    MALFORMED,
    Delivery,
    decode_content_header,
    decode_deliver,
)

log = logging.getLogger(__name__)

CHANNEL = 1
#: The largest frame this side accepts (what RabbitMQ and Leveret offer).
FRAME_MAX = 131072
#: Silent heartbeat ticks (each half the interval) before the broker is taken for gone.
SILENT_TICKS = 4

OnDelivery = Callable[[Delivery], None]
OnLost = Callable[[BaseException], None]

REPLY_SUCCESS = 200


class ConnectionClosed(ConnectionError):
    """The connection or its channel was closed (by the broker, or lost)."""

    def __init__(self, text: str, code: int = 0) -> None:
        super().__init__(f'{code} {text}' if code else text)
        self.code = code


class ConsumerCancelled(ConnectionClosed):
    """The broker cancelled a consumer (its queue was deleted, say)."""


@dataclass(frozen=True)
class Params:
    host: str
    port: int
    login: str
    password: str
    vhost: str
    #: Seconds; None: take the broker's proposal.
    heartbeat: int | None = None
    ssl: bool = False
    #: The SASL mechanism: PLAIN, or EXTERNAL (``?auth=external``, as aiormq:
    #: the TLS client certificate names the user).
    mechanism: str = 'PLAIN'

    @classmethod
    def from_url(cls, url: str) -> Params:
        """From an AMQP URL, read as aiormq reads it (the vhost is the path
        without its leading slash, ``/`` when empty)."""
        parsed = URL(url)
        secure = parsed.scheme == 'amqps'
        path = parsed.raw_path
        vhost = '/' if path in ('', '/') else unquote(path[1:])
        heartbeat = parsed.query.get('heartbeat')
        return cls(host=parsed.host or 'localhost', port=parsed.port or (5671 if secure else 5672),
                   login=parsed.user or 'guest', password=parsed.password or 'guest',
                   vhost=vhost, heartbeat=int(heartbeat) if heartbeat is not None else None,
                   ssl=secure, mechanism=parsed.query.get('auth', 'plain').upper())


def client_properties(name: str) -> dict[str, Any]:
    return {
        'product': 'leveret worker', 'platform': f'Python {platform.python_version()}',
        'connection_name': name,
        'capabilities': {'authentication_failure_close': True, 'basic.nack': True,
                         'consumer_cancel_notify': True},
    }


# The replies to the synchronous methods sent after the handshake.
_REPLIES = (spec.Basic.QosOk, spec.Basic.ConsumeOk, spec.Basic.CancelOk,
            spec.Channel.CloseOk, spec.Connection.CloseOk)


class ConsumerConnection(asyncio.Protocol):
    """One connection, one channel, consumers on it.

    Open it with :meth:`open`. ``on_delivery`` is called on the loop for
    each delivered message; ``on_lost`` once, when the connection ends for
    any reason but :meth:`close`.
    """

    def __init__(self, params: Params, on_delivery: OnDelivery, on_lost: OnLost,
                 name: str = 'leveret consumer') -> None:
        self.params = params
        self.name = name
        self.on_delivery = on_delivery
        self.on_lost = on_lost
        self.loop = asyncio.get_running_loop()
        self.reader = FrameReader(FRAME_MAX)
        self.transport: asyncio.Transport | None = None
        self.frame_max = FRAME_MAX
        self.heartbeat = 0
        self.server_properties: dict[str, Any] = {}
        self._opened: asyncio.Future[None] = self.loop.create_future()
        self._closed: asyncio.Future[None] = self.loop.create_future()
        self._is_open = False
        self._closing = False
        #: Replies awaited on the channel, in the order the methods were sent.
        self._replies: deque[tuple[type, asyncio.Future[Any]]] = deque()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        #: A delivery's method, header and body frames put together.
        self.assembler: ContentAssembler[Delivery] = ContentAssembler()
        self._heard = False
        self._wrote = False
        self._silent_ticks = 0
        self._heartbeat_timer: asyncio.TimerHandle | None = None
        self._error: BaseException | None = None

    # --- opening -------------------------------------------------------------
    @classmethod
    async def open(cls, url: str, on_delivery: OnDelivery, on_lost: OnLost, *,
                   name: str = 'leveret consumer', timeout: float = 10.0,
                   broker_use_ssl: Any = None) -> ConsumerConnection:
        secure = tls.for_url(url, broker_use_ssl)
        params = Params.from_url(secure.url)
        connection = cls(params, on_delivery, on_lost, name)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: connection, params.host, params.port,
                                             ssl=secure.context)
                await asyncio.shield(connection._opened)
        except BaseException:
            connection.abort()
            raise
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence no check.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(PROTOCOL_HEADER)

    def _handshake(self, channel: int, method: Any) -> None:
        if isinstance(method, spec.Connection.Start):
            self.server_properties = dict(method.server_properties or {})
            mechanism = self.params.mechanism
            if mechanism.encode() not in (method.mechanisms or '').encode().split():
                raise ConnectionClosed(f'the broker offers no {mechanism} login '
                                       f'({method.mechanisms})')
            response = ('' if mechanism == 'EXTERNAL'
                        else f'\0{self.params.login}\0{self.params.password}')
            self._send_now(0, spec.Connection.StartOk(
                client_properties=client_properties(self.name), mechanism=mechanism,
                response=response, locale='en_US'))
        elif isinstance(method, spec.Connection.Tune):
            self.frame_max = min(method.frame_max or FRAME_MAX, FRAME_MAX)
            self.reader.frame_max = self.frame_max
            wanted = self.params.heartbeat
            self.heartbeat = method.heartbeat if wanted is None else wanted
            self._send_now(0, spec.Connection.TuneOk(
                channel_max=method.channel_max, frame_max=self.frame_max,
                heartbeat=self.heartbeat))
            self._send_now(0, spec.Connection.Open(virtual_host=self.params.vhost))
            if self.heartbeat:
                self._heartbeat_timer = self.loop.call_later(self.heartbeat / 2,
                                                             self._heartbeat_tick)
        elif isinstance(method, spec.Connection.OpenOk):
            self._send_now(CHANNEL, spec.Channel.Open())
        elif isinstance(method, spec.Channel.OpenOk) and channel == CHANNEL:
            self._is_open = True
            if not self._opened.done():
                self._opened.set_result(None)
        else:
            raise UnexpectedFrame(f'{method.name} during the handshake')

    # --- reading -------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._heard = True
        try:
            received = self.reader.feed(data)
        except FrameError as exc:
            self._protocol_error(exc.code, str(exc))
            return
        assembler = self.assembler
        try:
            # The content frames go to the assembler inline: two calls fewer per delivery.
            for kind, channel, payload in received:
                if kind == FRAME_BODY:
                    if channel != CHANNEL:
                        raise UnexpectedFrame(f'content body on channel {channel}')
                    content = assembler.body_frame(payload)
                    if content is not None:
                        self._complete(*content)
                elif kind == FRAME_METHOD:
                    if channel == CHANNEL and payload[:4] == DELIVER_ID and self._is_open:
                        self._deliver(payload)
                    else:
                        self._method(channel, payload)
                elif kind == FRAME_HEADER:
                    if channel != CHANNEL:
                        raise UnexpectedFrame(f'content header on channel {channel}')
                    content = assembler.header_frame(payload)
                    if content is not None:
                        self._complete(*content)
                elif kind == FRAME_HEARTBEAT:
                    if channel != 0:
                        raise UnexpectedFrame(f'heartbeat frame on channel {channel}')
                if self.transport is None:
                    return  # closed by what was just read
        except (UnexpectedFrame, FrameError) as exc:
            self._protocol_error(exc.code, str(exc))
        except ConnectionClosed as exc:
            self._fail(exc)

    def _deliver(self, payload: bytes) -> None:
        assembler = self.assembler
        if assembler.method is not None:
            raise assembler.unexpected()  # the previous content is not complete
        try:
            delivery = decode_deliver(payload)
        except MALFORMED as exc:
            raise FrameError(f'malformed basic.deliver: {exc!r}') from None
        assembler.start(delivery, BASIC_DELIVER)

    def _complete(self, delivery: Delivery, header: bytes, body: bytes) -> None:
        if self._closing:
            return  # the broker requeues it
        delivery.body_size = len(body)
        delivery.body = body
        try:
            _, delivery.properties = decode_content_header(header)
        except MALFORMED as exc:
            # The frames are sound: only this message is lost. Dropped rather than
            # closing the connection: it would come back forever.
            log.error('rejecting a message whose properties cannot be read (%s): %r',
                      delivery.routing_key, exc)
            self.reject(delivery.delivery_tag, requeue=False)
            return
        try:
            self.on_delivery(delivery)
        except Exception:
            log.exception('handling delivery %s failed', delivery.delivery_tag)

    def _method(self, channel: int, payload: bytes) -> None:
        if self.assembler.method is not None:
            raise self.assembler.unexpected()
        try:
            method = methods.decode_method(payload)
        except Exception as exc:  # noqa: BLE001 - any undecodable method ends the connection
            raise FrameError(f'undecodable method: {exc}') from None
        if channel == 0 and isinstance(method, spec.Connection.Close | spec.Connection.Blocked
                                       | spec.Connection.Unblocked):
            self._connection_method(method)
        elif not self._is_open:
            self._handshake(channel, method)
        elif isinstance(method, _REPLIES):
            self._reply(method)
        elif channel == 0:
            self._connection_method(method)
        elif channel == CHANNEL:
            self._channel_method(method)
        else:
            raise UnexpectedFrame(f'{method.name} on channel {channel}')

    def _reply(self, method: Any) -> None:
        if not self._replies or not isinstance(method, self._replies[0][0]):
            raise UnexpectedFrame(f'{method.name} that nothing waits for')
        _, future = self._replies.popleft()
        if not future.done():
            future.set_result(method)

    def _connection_method(self, method: Any) -> None:
        if isinstance(method, spec.Connection.Close):
            self._write_now(methods.encode_method(0, spec.Connection.CloseOk()))
            self._fail(ConnectionClosed(method.reply_text or 'connection closed by the broker',
                                        method.reply_code or 0))
        elif isinstance(method, spec.Connection.Blocked | spec.Connection.Unblocked):
            pass  # only publishers are blocked; this connection does not publish
        else:
            raise UnexpectedFrame(f'{method.name} on channel 0')

    def _channel_method(self, method: Any) -> None:
        if isinstance(method, spec.Channel.Close):
            self._write_now(methods.encode_method(CHANNEL, spec.Channel.CloseOk()))
            self._fail(ConnectionClosed(method.reply_text or 'channel closed by the broker',
                                        method.reply_code or 0))
        elif isinstance(method, spec.Basic.Cancel):
            if not method.nowait:
                self._write_now(methods.encode_method(
                    CHANNEL, spec.Basic.CancelOk(consumer_tag=method.consumer_tag)))
            self._fail(ConsumerCancelled(f'consumer {method.consumer_tag} cancelled by the broker'))
        elif isinstance(method, spec.Channel.Flow):
            self._send(spec.Channel.FlowOk(active=method.active))
        else:
            raise UnexpectedFrame(f'{method.name} on the consumer channel')

    # --- the channel's methods -----------------------------------------------
    def qos(self, prefetch_count: int, global_: bool = True) -> asyncio.Future[Any]:
        """basic.qos; the future resolves with qos-ok (nobody needs to wait
        for it: a running consumer gets the new limit either way)."""
        return self._call(spec.Basic.Qos(prefetch_count=prefetch_count, global_=global_),
                          spec.Basic.QosOk)

    async def consume(self, queue: str, consumer_tag: str,
                      arguments: dict[str, Any] | None = None) -> None:
        await self._call(spec.Basic.Consume(queue=queue, consumer_tag=consumer_tag,
                                            arguments=arguments or {}),
                         spec.Basic.ConsumeOk)

    async def cancel(self, consumer_tag: str) -> None:
        await self._call(spec.Basic.Cancel(consumer_tag=consumer_tag), spec.Basic.CancelOk)

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self._write(frames.ack(CHANNEL, delivery_tag, multiple))

    def reject(self, delivery_tag: int, requeue: bool) -> None:
        self._write(frames.reject(CHANNEL, delivery_tag, requeue))

    def _call(self, method: Any, reply: type) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        # Nobody may wait for it: do not warn about an exception never retrieved.
        future.add_done_callback(_retrieve)
        if not self._is_open or self._closing:
            future.set_exception(ConnectionClosed('the consumer connection is closed'))
            return future
        self._replies.append((reply, future))
        self._send(method)
        return future

    # --- writing -------------------------------------------------------------
    def _send(self, method: Any) -> None:
        self._write(methods.encode_method(CHANNEL, method))

    def _send_now(self, channel: int, method: Any) -> None:
        self._write_now(methods.encode_method(channel, method))

    def _write(self, data: bytes) -> None:
        """Queue ``data``; everything queued in a loop turn goes out in one write."""
        if self.transport is None:
            return  # lost: the broker requeues what was not acked
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.write_queued)

    def _write_now(self, data: bytes) -> None:
        self.write_queued()
        if self.transport is not None:
            self.transport.write(data)
            self._wrote = True

    def write_queued(self) -> None:
        """Write what is queued now, not at the end of the loop turn."""
        self._flush_scheduled = False
        if self._out and self.transport is not None:
            self.transport.write(b''.join(self._out))
            self._wrote = True
        self._out = []

    async def flush(self, timeout: float = 5.0) -> None:
        """Write what is queued and wait (up to ``timeout``) until the socket took it."""
        self.write_queued()
        deadline = self.loop.time() + timeout
        while self.transport is not None and self.transport.get_write_buffer_size() \
                and self.loop.time() < deadline:
            await asyncio.sleep(0.01)

    # --- heartbeats ------------------------------------------------------------
    def _heartbeat_tick(self) -> None:
        if self.transport is None:
            return
        self._silent_ticks = 0 if self._heard else self._silent_ticks + 1
        self._heard = False
        if self._silent_ticks >= SILENT_TICKS:
            log.warning('no heartbeat from the broker for %ds', self.heartbeat * 2)
            self._fail(ConnectionClosed('missed heartbeats from the broker'))
            return
        if not self._wrote:
            self.transport.write(HEARTBEAT_FRAME)
        self._wrote = False
        self._heartbeat_timer = self.loop.call_later(self.heartbeat / 2, self._heartbeat_tick)

    # --- closing ---------------------------------------------------------------
    @property
    def is_closed(self) -> bool:
        return self.transport is None or self._closing

    async def close(self, timeout: float = 5.0) -> None:
        """Close the connection (the broker requeues unacked deliveries)."""
        if self.transport is None:
            return
        if self._closing:
            await asyncio.wait([self._closed], timeout=timeout)
            return
        self._closing = True
        if self._is_open:
            self._replies.append((spec.Connection.CloseOk, self.loop.create_future()))
            self._write_now(methods.encode_method(0, spec.Connection.Close(
                reply_code=REPLY_SUCCESS, reply_text='Normal shutdown')))
            waiter = self._replies[-1][1]
            await asyncio.wait([waiter, self._closed], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        self.abort()
        await asyncio.wait([self._closed], timeout=timeout)

    def abort(self) -> None:
        """Drop the connection at once, without telling ``on_lost``."""
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    def _protocol_error(self, code: int, text: str) -> None:
        log.error('consumer connection: %s: closing it', text)
        if self.transport is not None and self._is_open:
            self._write_now(methods.encode_method(0, spec.Connection.Close(
                reply_code=code, reply_text=text[:255])))
        self._fail(ConnectionClosed(text, code))

    def _fail(self, exc: BaseException) -> None:
        """End the connection because of ``exc`` (reported to ``on_lost``)."""
        if self._error is None:
            self._error = exc
        if self.transport is not None:
            self.transport.close()  # what was written still goes out
            self.transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
        error = self._error or (ConnectionClosed(f'connection lost: {exc!r}') if exc else
                                ConnectionClosed('connection closed by the broker'))
        if not self._opened.done():
            self._opened.set_exception(error)
            self._opened.exception()  # retrieved here: open() may be gone already
        for _, future in self._replies:
            if not future.done():
                future.set_exception(error)
        self._replies.clear()
        if not self._closed.done():
            self._closed.set_result(None)
        was_open, self._is_open = self._is_open, False
        if was_open and not self._closing:
            self.on_lost(error)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()

"""One client connection: an ``asyncio.Protocol`` around the sans-IO layer.

``data_received`` feeds :class:`protocol.FrameReader` and dispatches every
complete frame.  The per-message methods (publish and its content, ack,
nack, reject) are decoded by :mod:`leveret.protocol.codec` inline; everything else
goes through pamqp and the handler table in :mod:`leveret.broker.methods`.

Every error is an :class:`~leveret.protocol.errors.AMQPError` raised somewhere
below and handled in exactly one place, :meth:`Connection._fail`, which
closes the channel or the connection with the error's reply code.

Output is coalesced: frames are appended to a list and written with one
``transport.write`` per loop turn (or earlier when a lot is buffered).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pamqp import commands as C

from leveret.protocol import codec
from leveret.protocol.constants import (
    BASIC_ACK,
    BASIC_NACK,
    BASIC_PUBLISH,
    BASIC_REJECT,
    FRAME_BODY,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_MIN_SIZE,
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    PROTOCOL_HEADER_0_9,
)
from leveret.protocol.errors import (
    AMQPError,
    ChannelErrorCode,
    CommandInvalid,
    ConnectionAccessRefused,
    ConnectionForced,
    FrameError,
    InternalError,
    NotAllowed,
    NotImplemented_,
    PreconditionFailed,
    UnexpectedFrame,
)
from leveret.protocol.frames import FrameReader
from leveret.protocol.methods import decode_method, encode_method, method_ids

from .auth import MECHANISMS, AuthenticationError
from .channel import CLOSING, OPEN, Channel
from .methods import HANDLERS
from .model.ports import ThrottleSource

if TYPE_CHECKING:
    from .model.message import Message
    from .model.queue import Queue
    from .model.vhost import VirtualHost
    from .server import Broker

log = logging.getLogger(__name__)

# Connection states, in handshake order.
AWAIT_HEADER = 'await-header'
AWAIT_START_OK = 'await-start-ok'
AWAIT_TUNE_OK = 'await-tune-ok'
AWAIT_OPEN = 'await-open'
RUNNING = 'running'
CLOSING_CONN = 'closing'       # we sent connection.close, wait for close-ok
CLOSED_CONN = 'closed'

#: Which connection method each handshake state accepts.
EXPECTED: dict[str, Any] = {
    AWAIT_START_OK: C.Connection.StartOk,
    AWAIT_TUNE_OK: C.Connection.TuneOk,
    AWAIT_OPEN: C.Connection.Open,
}

_U32 = struct.Struct('>I')

#: Output buffered above this stops deliveries until the next flush.
OUT_HIGH = 512 * 1024
#: Transport buffer limits: above HIGH, asyncio calls pause_writing.
TRANSPORT_HIGH = 1024 * 1024
TRANSPORT_LOW = 256 * 1024
#: Seconds to wait for close-ok after we close the connection.
CLOSE_TIMEOUT = 3.0
#: Seconds a client has to finish the handshake (RabbitMQ uses 10).
HANDSHAKE_TIMEOUT = 10.0

_DECODE_ERRORS = (IndexError, ValueError, struct.error, UnicodeDecodeError)


class Connection(asyncio.Protocol):
    def __init__(self, broker: 'Broker') -> None:
        self.broker = broker
        settings = broker.settings
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer = '?'
        self.state = AWAIT_HEADER
        self.reader = FrameReader(FRAME_MIN_SIZE)
        self._header_buf = b''
        self.channels: dict[int, Channel] = {}
        self.vhost: VirtualHost = None  # type: ignore[assignment]  # set by open
        self.username = ''
        self._user: Any = None
        self.client_properties: dict[str, Any] = {}
        self._capabilities: dict[str, Any] = {}
        self.channel_max = settings.channel_max
        self.frame_max = settings.frame_max
        self.heartbeat = settings.heartbeat
        # --- output ---
        self._out: list[bytes | memoryview] = []
        self._out_size = 0
        self._flush_scheduled = False
        self.writable = True
        self._transport_paused = False
        self._confirm_channels: list[Channel] = []
        #: Queues (and the memory alarm) that paused reading from this connection.
        self._throttled_by: set[ThrottleSource] = set()
        self._reading = True
        #: Frames received while a tx.commit waits for the disk, else None.
        self._deferred: list[tuple[int, int, bytes]] | None = None
        # --- timers ---
        self._hb_timer: asyncio.TimerHandle | None = None
        self._silent_ticks = 0
        self._sent_since_tick = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._handshake_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f'<Connection {self.peer} {self.username or "-"}>'

    # --- asyncio callbacks --------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info('peername')
        self.peer = f'{peer[0]}:{peer[1]}' if peer else '?'
        transport.set_write_buffer_limits(  # type: ignore[attr-defined]
            high=TRANSPORT_HIGH, low=TRANSPORT_LOW)
        self.broker.connection_opened(self)
        self._handshake_timer = self.loop.call_later(HANDSHAKE_TIMEOUT, self._handshake_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state != CLOSED_CONN:
            log.debug('%r lost: %s', self, exc or 'closed by peer')
        self.state = CLOSED_CONN
        self._release()

    def pause_writing(self) -> None:
        self._transport_paused = True
        self._set_writable(False)

    def resume_writing(self) -> None:
        self._transport_paused = False
        if self._out_size < OUT_HIGH:
            self._set_writable(True)

    def eof_received(self) -> bool | None:
        return False    # close our side too

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state is CLOSED_CONN:
            return
        self._silent_ticks = 0
        if state is AWAIT_HEADER:
            data = self._protocol_header(data)
            if not data:
                return
        try:
            frames = self.reader.feed(data)
        except FrameError as exc:
            self._fail(0, exc)
            return
        if self._deferred is not None:
            # Input is on hold until a tx.commit is on disk: keep the order.
            self._deferred.extend(frames)
        elif frames:
            self._handle_frames(frames)
        self._after_frames()

    def _after_frames(self) -> None:
        if self._reading and (self._throttled_by or self._deferred is not None):
            if self.transport is not None:
                self._reading = False
                self.transport.pause_reading()
        if self._confirm_channels:
            self._send_due_confirms()
        if self._out:
            self._flush()

    # --- frame dispatch -----------------------------------------------------
    def _handle_frames(self, frames: list[tuple[int, int, bytes]]) -> None:
        i = 0
        n = len(frames)
        channels = self.channels
        while i < n:
            channel_id = 0
            index = 0
            try:
                while i < n:
                    frame_type, channel_id, payload = frames[i]
                    i += 1
                    index = 0
                    channel = channels.get(channel_id) if channel_id else None
                    if channel is not None and channel.state is OPEN and self.state is RUNNING:
                        # The hot path: an open channel on a running connection.
                        assembler = channel.assembler
                        if frame_type == FRAME_METHOD:
                            if assembler.method is not None:
                                raise assembler.unexpected()
                            index = _U32.unpack_from(payload)[0]
                            if index == BASIC_PUBLISH:
                                publish = codec.decode_publish(payload)
                                if publish.immediate:
                                    raise NotImplemented_('immediate=true')
                                assembler.start(publish, BASIC_PUBLISH)
                            elif index == BASIC_ACK:
                                tag, multiple = codec.decode_ack(payload)
                                channel.ack(tag, multiple)
                            elif index == BASIC_NACK:
                                tag, multiple, requeue = codec.decode_nack(payload)
                                channel.nack(tag, multiple, requeue)
                            elif index == BASIC_REJECT:
                                tag, requeue = codec.decode_reject(payload)
                                channel.nack(tag, False, requeue)
                            else:
                                self._channel_method(channel, payload)
                        elif frame_type == FRAME_BODY:
                            content = assembler.body_frame(payload)
                            if content is not None:
                                index = BASIC_PUBLISH   # routing errors name the publish
                                channel.publish_complete(*content)
                        elif frame_type == FRAME_HEADER:
                            content = assembler.header_frame(payload)
                            if content is not None:
                                index = BASIC_PUBLISH
                                channel.publish_complete(*content)
                        else:
                            raise UnexpectedFrame(f'type {frame_type}, all octets = <<>>')
                    else:
                        self._slow_frame(frame_type, channel_id, channel, payload)
                    if self.state is CLOSED_CONN:
                        return
                    if self._deferred is not None:
                        self._deferred.extend(frames[i:])
                        return
            except AMQPError as exc:
                self._fail(channel_id, exc.with_method(index >> 16, index & 0xFFFF))
            except _DECODE_ERRORS as exc:
                # RabbitMQ answers undecodable methods with 501 as well.
                self._fail(channel_id, FrameError(f'cannot decode frame: {exc}').with_method(
                    index >> 16, index & 0xFFFF))
            except Exception as exc:  # a bug: never take the server down
                log.exception('internal error on %r', self)
                self._fail(0, InternalError(f'{type(exc).__name__}: {exc}'))
            if self.state is CLOSING_CONN or self.state is CLOSED_CONN:
                # After a connection error only close/close-ok matter.
                for frame_type, channel_id, payload in frames[i:]:
                    if channel_id == 0 and frame_type == FRAME_METHOD:
                        self._closing_method(payload)
                return

    def _slow_frame(self, frame_type: int, channel_id: int, channel: Channel | None,
                    payload: bytes) -> None:
        """Channel 0, handshake states, closing channels and unknown channels."""
        if self.state is CLOSING_CONN:
            if channel_id == 0 and frame_type == FRAME_METHOD:
                self._closing_method(payload)
            return
        if channel_id == 0:
            if frame_type == FRAME_HEARTBEAT:
                return
            if frame_type != FRAME_METHOD:
                raise UnexpectedFrame(f'frame type {frame_type} on channel 0')
            self._connection_method(decode_method(payload))
            return
        if self.state is not RUNNING:
            raise ChannelErrorCode(f'channel {channel_id} used before connection.open')
        if frame_type == FRAME_HEARTBEAT:
            raise UnexpectedFrame(f'type {frame_type}, all octets = <<>>')
        if channel is None:
            if frame_type != FRAME_METHOD:
                raise ChannelErrorCode(f"expected 'channel.open' on channel {channel_id}")
            method = decode_method(payload)
            if not isinstance(method, C.Channel.Open):
                raise ChannelErrorCode(f"expected 'channel.open' on channel {channel_id}")
            self._open_channel(channel_id)
            return
        # A channel we closed: drop everything until close-ok (or close).
        if frame_type != FRAME_METHOD:
            return
        index = _U32.unpack_from(payload)[0]
        if index == C.Channel.CloseOk.index:
            del self.channels[channel_id]
        elif index == C.Channel.Close.index:
            self.send_method(channel_id, C.Channel.CloseOk())
            del self.channels[channel_id]

    def _channel_method(self, channel: Channel, payload: bytes) -> None:
        method = decode_method(payload)
        handler = HANDLERS.get(method.index)
        if handler is not None:
            try:
                handler(channel, method)
            except AMQPError as exc:
                raise exc.with_method(*method_ids(method)) from None
            return
        if isinstance(method, C.Channel.Close):
            self._close_channel(channel)
            self.send_method(channel.id, C.Channel.CloseOk())
        elif isinstance(method, C.Channel.CloseOk):
            # close-ok for a close we never sent: ignore, as RabbitMQ does.
            pass
        elif isinstance(method, C.Channel.Flow):
            channel.flow_active = bool(method.active)
            self.send_method(channel.id, C.Channel.FlowOk(method.active))
            channel.update_deliverable()     # after flow-ok: deliveries follow it
        elif isinstance(method, C.Channel.FlowOk):
            pass
        elif isinstance(method, C.Channel.Open):
            raise ChannelErrorCode(f"second 'channel.open' seen on channel {channel.id}")
        elif method.index >> 16 == 10:
            raise CommandInvalid('unimplemented method')   # RabbitMQ's words
        else:
            raise CommandInvalid(f'method {method.name} is not allowed from a client')

    def _open_channel(self, channel_id: int) -> None:
        # Like RabbitMQ, limit how many channels are open, not their numbers.
        if len(self.channels) >= self.channel_max:
            raise NotAllowed(
                f'number of channels opened ({len(self.channels)}) has reached the '
                f'negotiated channel_max ({self.channel_max})')
        self.channels[channel_id] = Channel(self, channel_id)
        self.send_method(channel_id, C.Channel.OpenOk())

    def _close_channel(self, channel: Channel) -> None:
        channel.release_all()
        self.channels.pop(channel.id, None)
        if channel in self._confirm_channels:
            self._confirm_channels.remove(channel)

    # --- connection class (channel 0) ---------------------------------------
    def _connection_method(self, method: Any) -> None:
        state = self.state
        expected = EXPECTED.get(state)
        if expected is not None:
            if not isinstance(method, expected):
                raise CommandInvalid(
                    f"expected '{expected.name.lower()}', got '{method.name.lower()}'")
            if state is AWAIT_START_OK:
                self._start_ok(method)
            elif state is AWAIT_TUNE_OK:
                self._tune_ok(method)
            else:
                self._open(method)
            return
        if isinstance(method, C.Connection.Close):
            self.send_method(0, C.Connection.CloseOk())
            self._flush()
            self.state = CLOSED_CONN
            self._release()
            self._close_transport()
        elif isinstance(method, C.Connection.CloseOk):
            self._close_transport()
        elif isinstance(method, C.Connection.UpdateSecret):
            self.send_method(0, C.Connection.UpdateSecretOk())
        elif isinstance(method, (C.Connection.Blocked, C.Connection.Unblocked)):
            pass
        elif method.index >> 16 == 10:
            raise CommandInvalid(f"unexpected '{method.name.lower()}'")
        else:
            raise ChannelErrorCode('unexpected method in connection state running')

    def _protocol_header(self, data: bytes) -> bytes:
        """Check the 8-byte protocol header; return the bytes after it."""
        buf = self._header_buf + data
        if len(buf) < 8:
            if PROTOCOL_HEADER.startswith(buf) or PROTOCOL_HEADER_0_9.startswith(buf):
                self._header_buf = buf
                return b''
        if buf[:8] not in (PROTOCOL_HEADER, PROTOCOL_HEADER_0_9):
            log.info('%s sent an unsupported protocol header %r', self.peer, buf[:8])
            assert self.transport is not None
            self.transport.write(PROTOCOL_HEADER)
            self.state = CLOSED_CONN
            self._close_transport()
            return b''
        self._header_buf = b''
        self.state = AWAIT_START_OK
        self.send_method(0, C.Connection.Start(
            version_major=0, version_minor=9,
            server_properties=self.broker.server_properties,
            mechanisms=' '.join(MECHANISMS), locales='en_US'))
        return buf[8:]

    def _start_ok(self, method: C.Connection.StartOk) -> None:
        self.client_properties = method.client_properties or {}
        capabilities = self.client_properties.get('capabilities')
        self._capabilities = capabilities if isinstance(capabilities, dict) else {}
        mechanism = method.mechanism
        if mechanism not in MECHANISMS:
            raise ConnectionAccessRefused(
                f"unsupported authentication mechanism '{mechanism}'")
        try:
            user = self.broker.users.authenticate(
                mechanism, method.response, self._from_loopback())
        except AuthenticationError as exc:
            log.warning('%s: login refused: %s', self.peer, exc)
            if self.client_capability('authentication_failure_close'):
                raise ConnectionAccessRefused(
                    f'Login was refused using authentication mechanism {mechanism}. '
                    f'For details see the broker logfile.') from None
            self.state = CLOSED_CONN
            self._close_transport()
            return
        self.username = user.name
        self._user = user
        self.state = AWAIT_TUNE_OK
        self.send_method(0, C.Connection.Tune(
            channel_max=self.channel_max, frame_max=self.frame_max,
            heartbeat=self.heartbeat))

    def _tune_ok(self, method: C.Connection.TuneOk) -> None:
        settings = self.broker.settings
        frame_max = method.frame_max or settings.frame_max
        if frame_max < FRAME_MIN_SIZE:
            raise NotAllowed(f'frame_max={frame_max} < {FRAME_MIN_SIZE} min size')
        if frame_max > settings.frame_max:
            raise NotAllowed(f'frame_max={frame_max} > {settings.frame_max} max size')
        self.frame_max = frame_max
        # Fudge of 8 bytes, as RabbitMQ: some clients count the frame wrong.
        self.reader.frame_max = frame_max + 8
        channel_max = method.channel_max or settings.channel_max
        self.channel_max = min(channel_max, settings.channel_max)
        self.heartbeat = method.heartbeat
        self.state = AWAIT_OPEN
        if self.heartbeat:
            self._hb_timer = self.loop.call_later(self.heartbeat / 2, self._heartbeat_tick)

    def _open(self, method: C.Connection.Open) -> None:
        name = method.virtual_host or '/'
        vhost = self.broker.vhosts.get(name)
        if vhost is None:
            raise NotAllowed(f"vhost {name} not found")
        if name not in self._user.vhosts:
            raise NotAllowed(f"access to vhost '{name}' refused for user '{self.username}'")
        self.vhost = vhost
        self.state = RUNNING
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self.send_method(0, C.Connection.OpenOk())
        log.debug('%r opened vhost %r', self, name)

    def _from_loopback(self) -> bool:
        return self.peer.startswith(('127.', '::1', '::ffff:127.'))

    def client_capability(self, name: str) -> bool:
        return bool(self._capabilities.get(name))

    # --- errors -------------------------------------------------------------
    def _fail(self, channel_id: int, exc: AMQPError) -> None:
        """The one place where an AMQP error becomes a close."""
        if self.state is CLOSED_CONN:
            return
        if not exc.connection_level and channel_id:
            channel = self.channels.get(channel_id)
            if channel is None or channel.state is not OPEN:
                return
            log.debug('%r channel %d error: %s', self, channel_id, exc.text)
            channel.release_all()
            channel.state = CLOSING
            if channel in self._confirm_channels:
                self._confirm_channels.remove(channel)
            self.send_method(channel_id, C.Channel.Close(
                reply_code=exc.code, reply_text=exc.text[:255],
                class_id=exc.class_id, method_id=exc.method_id))
            return
        self.close(exc.code, exc.text, exc.class_id, exc.method_id)

    def close(self, code: int, text: str, class_id: int = 0, method_id: int = 0) -> None:
        """Start a server-initiated connection close."""
        if self.state is CLOSED_CONN or self.state is CLOSING_CONN:
            return
        if code >= 500 or code == 403 or code == 402:
            log.warning('%r closed with %d %s', self, code, text)
        else:
            log.info('%r closed with %d %s', self, code, text)
        handshaking = self.state is AWAIT_HEADER
        self.state = CLOSING_CONN
        self._release()
        if handshaking:
            self._close_transport()
            return
        self.send_method(0, C.Connection.Close(
            reply_code=code, reply_text=text[:255], class_id=class_id,
            method_id=method_id))
        self._flush()
        self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._close_transport)

    def _closing_method(self, payload: bytes) -> None:
        try:
            index = _U32.unpack_from(payload)[0]
        except struct.error:
            return
        if index == C.Connection.CloseOk.index:
            self._close_transport()
        elif index == C.Connection.Close.index:
            self.send_method(0, C.Connection.CloseOk())
            self._flush()
            self._close_transport()

    def _handshake_timeout(self) -> None:
        self._handshake_timer = None
        if self.state is not RUNNING and self.state is not CLOSED_CONN:
            log.info('%s: handshake timeout', self.peer)
            self.state = CLOSED_CONN
            self._close_transport()

    def _close_transport(self) -> None:
        self.state = CLOSED_CONN
        if self._out:
            self._flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._release()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _release(self) -> None:
        """Free everything the connection holds (idempotent)."""
        for timer in (self._hb_timer, self._close_timer, self._handshake_timer):
            if timer is not None:
                timer.cancel()
        self._hb_timer = self._handshake_timer = self._close_timer = None
        channels = list(self.channels.values())
        if self.state is CLOSED_CONN:
            self.channels.clear()
        for channel in channels:
            channel.release_all()
        self._confirm_channels.clear()
        for source in list(self._throttled_by):
            source.forget_publisher(self)
        self._throttled_by.clear()
        if self.vhost is not None:
            self.vhost.owner_gone(self)
        if self.state is CLOSED_CONN:
            self.broker.connection_closed(self)

    def unacked(self) -> Iterator[tuple[Queue, Message]]:
        """Every delivery of this connection waiting for an ack."""
        for channel in self.channels.values():
            for message, queue, _consumer in channel.unacked.values():
                yield queue, message

    # --- heartbeats ---------------------------------------------------------
    def _heartbeat_tick(self) -> None:
        if self.state is CLOSED_CONN:
            return
        self._silent_ticks += 1
        # Ticks come every heartbeat/2: past four silent ticks the client has
        # said nothing for at least two intervals.
        if self._silent_ticks > 4:
            log.warning('%r: missed heartbeats from client, timeout: %ds',
                        self, self.heartbeat)
            self.state = CLOSED_CONN
            self.abort()
            self._release()
            return
        if (not self._sent_since_tick and self.transport is not None
                and not self.transport.is_closing()):
            # Written directly: a heartbeat must not count as traffic itself.
            self._flush()
            self.transport.write(HEARTBEAT_FRAME)
        self._sent_since_tick = False
        self._hb_timer = self.loop.call_later(self.heartbeat / 2, self._heartbeat_tick)

    # --- output -------------------------------------------------------------
    def send_raw(self, data: bytes | memoryview) -> None:
        self._out.append(data)
        self._out_size += len(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def send_method(self, channel_id: int, method: Any) -> None:
        self.send_raw(encode_method(channel_id, method))

    def flush_soon(self) -> None:
        if self._out and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def send_delivery(self, channel_id: int, consumer_tag: bytes, delivery_tag: int,
                      message: 'Message') -> None:
        """basic.deliver + content, relaying the publisher's header bytes."""
        self._out_size += codec.deliver(self._out, channel_id, consumer_tag, delivery_tag,
                                        message, self.frame_max) + 80
        if self._out_size > OUT_HIGH:
            self._set_writable(False)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def send_get_ok(self, channel_id: int, delivery_tag: int, message: 'Message',
                    message_count: int) -> None:
        self.send_raw(codec.get_ok_frame(channel_id, delivery_tag, message.redelivered,
                                         message.exchange_and_key, message_count))
        for part in codec.content_frames(channel_id, message.header, message.body,
                                         self.frame_max):
            self.send_raw(part)

    def send_return(self, channel_id: int, code: int, text: str, message: 'Message') -> None:
        self.send_raw(codec.return_frame(channel_id, code, text, message.exchange_and_key))
        for part in codec.content_frames(channel_id, message.header, message.body,
                                         self.frame_max):
            self.send_raw(part)

    def confirms_due(self, channel: Channel) -> None:
        """``channel`` has confirms to send after this batch of frames."""
        self._confirm_channels.append(channel)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _send_due_confirms(self) -> None:
        channels, self._confirm_channels = self._confirm_channels, []
        for channel in channels:
            if channel.state is OPEN:
                channel.send_confirms()

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._confirm_channels:
            self._send_due_confirms()
        out = self._out
        if out:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.write(b''.join(out))
                self._sent_since_tick = True
            out.clear()
            self._out_size = 0
        if not self.writable and not self._transport_paused and self.state is not CLOSED_CONN:
            self._set_writable(True)

    def _set_writable(self, writable: bool) -> None:
        if writable == self.writable:
            return
        self.writable = writable
        for channel in list(self.channels.values()):
            if channel.state is OPEN:
                channel.update_deliverable()

    # --- flow control -------------------------------------------------------
    def throttle(self, source: ThrottleSource) -> None:
        """``source`` asks us to stop reading after the current batch."""
        self._throttled_by.add(source)

    def unthrottle(self, source: ThrottleSource) -> None:
        self._throttled_by.discard(source)
        self._maybe_resume_reading()

    def _maybe_resume_reading(self) -> None:
        if (not self._throttled_by and self._deferred is None and not self._reading
                and self.transport is not None and self.state is not CLOSED_CONN):
            self._reading = True
            self.transport.resume_reading()

    # --- replies that wait for the disk -------------------------------------
    def reply_when_synced(self, channel: Channel, method: Any) -> None:
        """Send ``method`` once everything written so far is on disk.

        Until then no further input of this connection is processed, so
        nothing the client sends after, say, tx.commit overtakes it.
        """
        store = self.vhost.store
        position = store.write_position()
        if store.synced_position() >= position:
            channel.send_method(method)
            return
        self._deferred = []

        def synced() -> None:
            if self.state is CLOSED_CONN:
                return
            if store.synced_position() < position and not store.confirm_failed(position):
                store.when_synced(synced)
                return
            frames, self._deferred = self._deferred or [], None
            if store.confirm_failed(position):
                self._fail(channel.id, PreconditionFailed(
                    f'commit could not be written to disk: {store.failed}').with_method(
                        *method_ids(method)))
            elif channel.state is OPEN:
                channel.send_method(method)
            if frames:
                self._handle_frames(frames)
            self._after_frames()
            self._maybe_resume_reading()

        store.when_synced(synced)

    # --- broker-initiated ---------------------------------------------------
    def notify_blocked(self, reason: str) -> None:
        if self.client_capability('connection.blocked') and self.state is RUNNING:
            self.send_method(0, C.Connection.Blocked(reason))

    def notify_unblocked(self) -> None:
        if self.client_capability('connection.blocked') and self.state is RUNNING:
            self.send_method(0, C.Connection.Unblocked())

    def shutdown(self) -> None:
        """Broker shutdown: close with 320 CONNECTION_FORCED."""
        exc = ConnectionForced('broker shutdown')
        if self.state is RUNNING or self.state in EXPECTED:
            self.close(exc.code, exc.text)
        else:
            self._close_transport()

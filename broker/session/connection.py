"""One client connection: an ``asyncio.Protocol`` around the sans-IO layer.

The connection is one object made of three parts, each in its own module:

* :class:`~.handshake.Handshake`: the connection's state machine (it owns
  ``state``), the protocol header and the channel-0 methods;
* :class:`~.output.Output`: the output buffer and every ``send_*``, one
  ``transport.write`` per loop turn;
* this module: the asyncio callbacks, the frame loop with the per-message
  fast path inline, channels, timers, flow control, and :meth:`_fail`, the
  one place where an :class:`~leveret.protocol.errors.AMQPError` raised
  anywhere below becomes a channel close or a connection close.

They are base classes rather than separate objects on purpose: the frame
loop and the delivery path read ``self.state``, ``self._out`` and friends
directly, with no attribute hop per message.

For the model the connection is a ``Publisher`` (queues and the memory alarm
throttle it) and a ``QueueOwner`` (of its exclusive queues).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pamqp import commands as C

from leveret.protocol import codec
from leveret.protocol.constants import (
    BASIC_ACK,
    BASIC_NACK,
    BASIC_PUBLISH,
    FRAME_BODY,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
)
from leveret.protocol.errors import (
    AMQPError,
    ChannelErrorCode,
    CommandInvalid,
    ConnectionForced,
    FrameError,
    InternalError,
    NotAllowed,
    NotImplemented_,
    PreconditionFailed,
    UnexpectedFrame,
)
from leveret.protocol.methods import decode_method, method_ids
from leveret.protocol.states import (
    AWAIT_HEADER,
    CLOSED,
    CLOSING,
    DISCONNECT,
    EXPECTED,
    OPEN,
    RUNNING,
    SEND_CLOSE,
)

from ..model.counters import ConnectionCounters
from ..model.ports import ThrottleSource
from ..tls import describe
from .bugs import log_bug
from .channel import Channel
from .handshake import BadProtocolHeader, Handshake
from .methods import CHANNEL_METHODS, FAST_PATH
from .output import Output

if TYPE_CHECKING:
    from ..model.message import Message
    from ..model.queue import Queue
    from .registry import Sessions

log = logging.getLogger(__name__)

_U32 = struct.Struct('>I')

#: Transport buffer limits: above HIGH, asyncio calls pause_writing.
TRANSPORT_HIGH = 1024 * 1024
TRANSPORT_LOW = 256 * 1024
#: Seconds to wait for close-ok after we close the connection.
CLOSE_TIMEOUT = 3.0
#: Seconds a client has to finish the handshake (RabbitMQ uses 10).
HANDSHAKE_TIMEOUT = 10.0

_DECODE_ERRORS = (IndexError, ValueError, struct.error, UnicodeDecodeError)


class Connection(Handshake, Output, ConnectionCounters, asyncio.Protocol):
    def __init__(self, sessions: Sessions) -> None:
        Handshake.__init__(self, sessions)
        Output.__init__(self)
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.channels: dict[int, Channel] = {}
        #: Queues (and the memory alarm) that paused reading from this connection.
        self._throttled_by: set[ThrottleSource] = set()
        self._reading = True
        #: Frames received while a tx.commit waits for the disk, else None.
        self._deferred: list[tuple[int, int, bytes]] | None = None
        #: The channel whose method is being handled (0: none), and the
        #: notifications for that channel its handling caused.
        self.handling = 0
        self._after_reply: list[tuple[Channel, Any]] = []
        # --- timers ---
        self._hb_timer: asyncio.TimerHandle | None = None
        self._silent_ticks = 0
        self._close_timer: asyncio.TimerHandle | None = None
        self._handshake_timer: asyncio.TimerHandle | None = None
        self.name = '?'
        self.peer_host, self.peer_port, self.host, self.port = '?', 0, '?', 0
        self.connected_at = time.time()
        self.init_counters()

    def __repr__(self) -> str:
        return f'<Connection {self.peer} {self.username or "-"}>'

    # --- asyncio callbacks --------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info('peername')
        self.peer = f'{peer[0]}:{peer[1]}' if peer else '?'
        local = transport.get_extra_info('sockname')
        self.listener = f'{local[0]}:{local[1]}' if local else '?'
        self.peer_host, self.peer_port = (peer[0], peer[1]) if peer else ('?', 0)
        self.host, self.port = (local[0], local[1]) if local else ('?', 0)
        #: RabbitMQ's name for the connection (the management API's key).
        self.name = f'{self.peer} -> {self.host}:{self.port}'
        ssl_object = transport.get_extra_info('ssl_object')
        if ssl_object is not None:
            self.tls = describe(ssl_object, self.sessions.settings.tls_cert_login_from)
        self.connected_at = time.time()
        transport.set_write_buffer_limits(  # type: ignore[attr-defined]
            high=TRANSPORT_HIGH, low=TRANSPORT_LOW)
        self.sessions.opened(self)
        self._handshake_timer = self.loop.call_later(HANDSHAKE_TIMEOUT, self._handshake_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state is not CLOSED:
            self.note_close('client unexpectedly closed TCP connection', logging.WARNING)
        self._to(DISCONNECT)
        self._release()

    def eof_received(self) -> bool | None:
        return False    # close our side too

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state is CLOSED:
            return
        self._silent_ticks = 0
        self.recv_oct += len(data)
        self.recv_cnt += 1
        if state is AWAIT_HEADER:
            try:
                data = self.receive_header(data)
            except BadProtocolHeader:
                assert self.transport is not None
                self.transport.write(PROTOCOL_HEADER)
                self._close_transport()
                return
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
        fast_path = FAST_PATH
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
                            if index == BASIC_PUBLISH:      # the commonest first
                                publish = codec.decode_publish(payload)
                                if publish.immediate:
                                    raise NotImplemented_('immediate=true')
                                assembler.start(publish, BASIC_PUBLISH)
                            elif index not in fast_path:
                                self._channel_method(channel, payload)
                            elif index == BASIC_ACK:
                                tag, multiple = codec.decode_ack(payload)
                                channel.ack(tag, multiple)
                            elif index == BASIC_NACK:
                                tag, multiple, requeue = codec.decode_nack(payload)
                                channel.nack(tag, multiple, requeue)
                            else:   # BASIC_REJECT
                                tag, requeue = codec.decode_reject(payload)
                                channel.nack(tag, False, requeue)
                        elif frame_type == FRAME_BODY:
                            content = assembler.body_frame(payload)
                            if content is not None:
                                index = BASIC_PUBLISH   # routing errors name the publish
                                if channel.partial:
                                    channel.body_done()
                                channel.publish_complete(content)
                            else:
                                channel.body_part(len(payload))
                        elif frame_type == FRAME_HEADER:
                            content = assembler.header_frame(payload)
                            if content is not None:
                                index = BASIC_PUBLISH
                                channel.publish_complete(content)
                        else:
                            raise UnexpectedFrame(f'type {frame_type}, all octets = <<>>')
                    else:
                        self._slow_frame(frame_type, channel_id, channel, payload)
                    if self.state is CLOSED:
                        return
                    if self._deferred is not None:
                        self._deferred.extend(frames[i:])
                        return
            except AMQPError as exc:
                self._fail(channel_id, exc.with_method(index >> 16, index & 0xFFFF))
            except _DECODE_ERRORS as exc:
                # RabbitMQ answers undecodable methods with 501 as well.
                self._fail(channel_id, FrameError(_undecodable(index, exc)).with_method(
                    index >> 16, index & 0xFFFF))
            except Exception as exc:  # a bug: never take the server down
                log_bug(log, f'internal error on {self!r}', exc)
                self._fail(0, InternalError(f'{type(exc).__name__}: {exc}'))
            if self.state is CLOSING or self.state is CLOSED:
                # After a connection error only close/close-ok matter.
                for frame_type, channel_id, payload in frames[i:]:
                    if channel_id == 0 and frame_type == FRAME_METHOD:
                        self._closing_method(payload)
                return

    def _slow_frame(self, frame_type: int, channel_id: int, channel: Channel | None,
                    payload: bytes) -> None:
        """Channel 0, handshake states, closing channels and unknown channels."""
        if self.state is CLOSING:
            if channel_id == 0 and frame_type == FRAME_METHOD:
                self._closing_method(payload)
            return
        if channel_id == 0:
            if frame_type == FRAME_HEARTBEAT:
                return
            if frame_type != FRAME_METHOD:
                raise UnexpectedFrame(f'frame type {frame_type} on channel 0')
            self.receive_method(decode_method(payload))
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
            channel.finish_close(C.Channel.CloseOk)
        elif index == C.Channel.Close.index:
            self.send_method(channel_id, C.Channel.CloseOk())
            channel.finish_close(C.Channel.Close)

    def _channel_method(self, channel: Channel, payload: bytes) -> None:
        """A method on an open channel that is not on the fast path."""
        method = decode_method(payload)
        handler = CHANNEL_METHODS.get(method.index)
        if handler is None:
            if method.index >> 16 == 10:
                raise CommandInvalid('unimplemented method')   # RabbitMQ's words
            raise CommandInvalid(f'method {method.name} is not allowed from a client')
        self.handling = channel.id
        try:
            handler(channel, method)
        except AMQPError as exc:
            raise exc.with_method(*method_ids(method)) from None
        finally:
            self.handling = 0
            if self._after_reply:
                self._send_after_reply()

    def notify(self, channel: Channel, method: Any) -> None:
        """A server-initiated method (basic.cancel) for ``channel``.

        As in RabbitMQ, a notification for the channel whose method is being
        handled comes after that method's reply (queue.delete-ok, then the
        basic.cancel of the channel's own consumer of that queue); one for
        any other channel goes at once.
        """
        if channel.id == self.handling:
            self._after_reply.append((channel, method))
        else:
            channel.send_method(method)
            self.flush_soon()

    def _send_after_reply(self) -> None:
        notices, self._after_reply = self._after_reply, []
        for channel, method in notices:
            if channel.state is OPEN:
                channel.send_method(method)

    def _open_channel(self, channel_id: int) -> None:
        # Like RabbitMQ, limit how many channels are open, not their numbers.
        if len(self.channels) >= self.channel_max:
            raise NotAllowed(
                f'number of channels opened ({len(self.channels)}) has reached the '
                f'negotiated channel_max ({self.channel_max})')
        self.channels[channel_id] = Channel(self, channel_id)
        self.send_method(channel_id, C.Channel.OpenOk())

    def channel_closed(self, channel: Channel) -> None:
        """``channel`` is closed: its number may be opened again."""
        if self.channels.get(channel.id) is channel:
            del self.channels[channel.id]
        self.forget_confirms(channel)

    # --- the handshake's hooks ------------------------------------------------
    def login_refused(self) -> None:
        self._close_transport()

    def refuse_login(self, error: AMQPError | None, delay: float) -> None:
        """Refuse a failed login after ``delay`` seconds; the connection's
        input is held meanwhile, nobody else waits."""
        self._deferred = []

        def refuse() -> None:
            if self.state is CLOSED:
                return
            self._deferred = None
            if error is not None:
                self._fail(0, error)
            else:
                self._close_transport()

        self.loop.call_later(delay, refuse)

    def tuned(self) -> None:
        if self.heartbeat:
            self._hb_timer = self.loop.call_later(self.heartbeat / 2, self._heartbeat_tick)

    def opened(self) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self.sessions.connection_log.opened(self)

    def closed_by_peer(self) -> None:
        """connection.close (answered) or close-ok from the client."""
        self._close_transport()

    # --- errors -------------------------------------------------------------
    def _fail(self, channel_id: int, exc: AMQPError) -> None:
        """The one place where an AMQP error becomes a close."""
        if self.state is CLOSED:
            return
        if not exc.connection_level and channel_id:
            channel = self.channels.get(channel_id)
            if channel is None or channel.state is not OPEN:
                return
            channel.close_with(exc)
            return
        self.close(exc.code, exc.text, exc.class_id, exc.method_id)

    def close(self, code: int, text: str, class_id: int = 0, method_id: int = 0) -> None:
        """Start a server-initiated connection close."""
        if self.state is CLOSED or self.state is CLOSING:
            return
        self.note_close(f'{code} {text}', logging.WARNING if code >= 402 else logging.INFO)
        if self.state is AWAIT_HEADER:
            self._close_transport()     # nothing to say to a peer without a header
            return
        self._to(SEND_CLOSE)
        self._release()
        self.send_method(0, C.Connection.Close(
            reply_code=code, reply_text=text[:255], class_id=class_id,
            method_id=method_id))
        self._flush()
        self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._close_transport)

    def _closing_method(self, payload: bytes) -> None:
        """While we close: only close-ok (or the client's own close) matters."""
        if self.state is not CLOSING:
            return      # already closed by an earlier frame of the batch
        try:
            index = _U32.unpack_from(payload)[0]
        except struct.error:
            return
        if index == C.Connection.CloseOk.index:
            self._to(C.Connection.CloseOk)
            self._close_transport()
        elif index == C.Connection.Close.index:
            self._to(C.Connection.Close)
            self.send_method(0, C.Connection.CloseOk())
            self._close_transport()

    def _handshake_timeout(self) -> None:
        self._handshake_timer = None
        if self.state is not RUNNING and self.state is not CLOSED:
            self.note_close(f'handshake timeout ({HANDSHAKE_TIMEOUT:g}s)', logging.WARNING)
            self._close_transport()

    def _close_transport(self) -> None:
        self._to(DISCONNECT)
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
        if self.state is CLOSED:
            self.channels.clear()
        # Every step runs whatever an earlier one did (a bug in one must not
        # leave consumers, exclusive queues or the session behind).
        for channel in channels:
            _guarded(channel.release)
        self._confirm_channels.clear()
        for source in list(self._throttled_by):
            _guarded(source.forget_publisher, self)
        self._throttled_by.clear()
        if self.vhost is not None:
            _guarded(self.vhost.owner_gone, self)
        if self.state is CLOSED:
            self.sessions.closed(self)

    def unacked(self) -> Iterator[tuple[Queue, Message]]:
        """Every delivery of this connection waiting for an ack."""
        for channel in self.channels.values():
            for message, queue, _consumer in channel.unacked.values():
                yield queue, message

    # --- heartbeats ---------------------------------------------------------
    def _heartbeat_tick(self) -> None:
        if self.state is CLOSED:
            return
        if self._reading:
            self._silent_ticks += 1
        else:
            # The broker holds this connection's input (a memory alarm, flow
            # control, a commit waiting for the disk): the client's heartbeats
            # are in the socket, unread.  Its silence is ours, not its.
            self._silent_ticks = 0
        # Ticks come every heartbeat/2: past four silent ticks the client has
        # said nothing for at least two intervals.
        if self._silent_ticks > 4:
            self.note_close(f'missed heartbeats from client, timeout: {self.heartbeat}s',
                            logging.WARNING)
            self._to(DISCONNECT)
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

    # --- flow control (the model's Publisher port) ----------------------------
    @property
    def blocked(self) -> bool:
        """Is reading paused by flow control or the memory alarm?"""
        return bool(self._throttled_by)

    def throttle(self, source: ThrottleSource) -> None:
        """``source`` asks us to stop reading after the current batch."""
        self._throttled_by.add(source)

    def unthrottle(self, source: ThrottleSource) -> None:
        self._throttled_by.discard(source)
        self._maybe_resume_reading()

    def _maybe_resume_reading(self) -> None:
        if (not self._throttled_by and self._deferred is None and not self._reading
                and self.transport is not None and self.state is not CLOSED):
            self._reading = True
            self.transport.resume_reading()

    def notify_blocked(self, reason: str) -> None:
        if self.client_capability('connection.blocked') and self.state is RUNNING:
            self.send_method(0, C.Connection.Blocked(reason))

    def notify_unblocked(self) -> None:
        if self.client_capability('connection.blocked') and self.state is RUNNING:
            self.send_method(0, C.Connection.Unblocked())

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
            if self.state is CLOSED:
                return
            if store.synced_position() < position and not store.confirm_failed(position):
                store.when_synced(synced)
                return
            frames, self._deferred = self._deferred or [], None
            if store.confirm_failed(position):
                what = 'commit' if isinstance(method, C.Tx.CommitOk) else 'change'
                self._fail(channel.id, PreconditionFailed(
                    f'{what} could not be written to disk: {store.failed}').with_method(
                        *method_ids(method)))
            elif channel.state is OPEN:
                channel.send_method(method)
            if frames:
                self._handle_frames(frames)
            self._after_frames()
            self._maybe_resume_reading()

        store.when_synced(synced)

    # --- closed from outside -------------------------------------------------
    def force_close(self, reason: str) -> None:
        """Close with 320 CONNECTION_FORCED and ``reason`` (the management API)."""
        exc = ConnectionForced(reason)
        if self.state is RUNNING or self.state in EXPECTED:
            self.close(exc.code, exc.text)
        else:
            self._close_transport()

    def shutdown(self) -> None:
        """Close with 320 CONNECTION_FORCED."""
        exc = ConnectionForced('broker shutdown')
        if self.state is RUNNING or self.state in EXPECTED:
            self.close(exc.code, exc.text)
        else:
            self._close_transport()


def _undecodable(index: int, exc: Exception) -> str:
    """The reply text for a fast-path frame that did not decode, worded as
    :func:`~leveret.protocol.methods.decode_method` words the others."""
    method = C.INDEX_MAPPING.get(index)
    if method is None:
        return f'cannot decode frame: {exc}'   # a content frame: its own text
    if isinstance(exc, UnicodeDecodeError):
        return f'cannot decode {method.name}: a short string is not valid UTF-8'
    if isinstance(exc, (IndexError, struct.error)):
        return f'cannot decode {method.name}: the payload ends before its last field'
    return f'cannot decode {method.name}: {exc}'


def _guarded(action: Callable[..., object], *args: Any) -> None:
    """Run one clean-up step; a failure is logged (it is a bug) and the next
    step runs all the same."""
    try:
        action(*args)
    except Exception as exc:
        log_bug(log, f'clean-up step {getattr(action, "__qualname__", action)} failed', exc)

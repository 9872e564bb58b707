"""A connection's output: frames buffered and written once per loop turn.

Frames are appended to a list and written with one ``transport.write`` per
loop turn (or earlier when a lot is buffered).  Above :data:`OUT_HIGH`
buffered bytes, or while the transport is paused, the connection is not
*writable* and its channels stop delivering until the next flush.

:class:`Output` is a part of :class:`~.connection.Connection` (a base class,
not an object of its own): the per-delivery path reads and writes its
attributes directly, without one more attribute hop per message.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from leveret.protocol import codec
from leveret.protocol.methods import encode_method
from leveret.protocol.states import CLOSED, OPEN, State

if TYPE_CHECKING:
    from ..model.message import Message
    from .channel import Channel

#: Output buffered above this stops deliveries until the next flush.
OUT_HIGH = 512 * 1024


class Output:
    # Provided by the connection:
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport | None
    channels: dict[int, Channel]
    frame_max: int
    state: State

    send_oct: int
    send_cnt: int

    def __init__(self) -> None:
        self._out: list[bytes | memoryview] = []
        self._out_size = 0
        self._flush_scheduled = False
        #: May channels deliver now (output below OUT_HIGH, transport not paused)?
        self.writable = True
        self._transport_paused = False
        #: Channels with publisher confirms to send after this batch of frames.
        self._confirm_channels: list[Channel] = []
        #: Something was written since the last heartbeat tick.
        self._sent_since_tick = False

    # --- asyncio's write flow control ----------------------------------------
    def pause_writing(self) -> None:
        self._transport_paused = True
        self._set_writable(False)

    def resume_writing(self) -> None:
        self._transport_paused = False
        if self._out_size < OUT_HIGH:
            self._set_writable(True)

    # --- frames out -----------------------------------------------------------
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
                      message: Message) -> None:
        """basic.deliver + content, relaying the publisher's header bytes."""
        self._out_size += codec.deliver(self._out, channel_id, consumer_tag, delivery_tag,
                                        message, self.frame_max) + 80
        if self._out_size > OUT_HIGH:
            self._set_writable(False)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def send_get_ok(self, channel_id: int, delivery_tag: int, message: Message,
                    message_count: int) -> None:
        self.send_raw(codec.get_ok_frame(channel_id, delivery_tag, message.redelivered,
                                         message.exchange_and_key, message_count))
        for part in codec.content_frames(channel_id, message.header, message.body,
                                         self.frame_max):
            self.send_raw(part)

    def send_return(self, channel_id: int, code: int, text: str, message: Message) -> None:
        self.send_raw(codec.return_frame(channel_id, code, text, message.exchange_and_key))
        for part in codec.content_frames(channel_id, message.header, message.body,
                                         self.frame_max):
            self.send_raw(part)

    # --- publisher confirms -----------------------------------------------------
    def confirms_due(self, channel: Channel) -> None:
        """``channel`` has confirms to send after this batch of frames."""
        self._confirm_channels.append(channel)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def forget_confirms(self, channel: Channel) -> None:
        """``channel`` is closing: its confirms are never sent."""
        if channel in self._confirm_channels:
            self._confirm_channels.remove(channel)

    def _send_due_confirms(self) -> None:
        channels, self._confirm_channels = self._confirm_channels, []
        for channel in channels:
            if channel.state is OPEN:
                channel.send_confirms()

    # --- writing ------------------------------------------------------------------
    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._confirm_channels:
            self._send_due_confirms()
        out = self._out
        if out:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                data = b''.join(out)
                transport.write(data)
                self.send_oct += len(data)
                self.send_cnt += 1
                self._sent_since_tick = True
            out.clear()
            self._out_size = 0
        if not self.writable and not self._transport_paused and self.state is not CLOSED:
            self._set_writable(True)

    def _set_writable(self, writable: bool) -> None:
        if writable == self.writable:
            return
        self.writable = writable
        for channel in list(self.channels.values()):
            if channel.state is OPEN:
                channel.update_deliverable()

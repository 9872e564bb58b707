"""channel.* methods on an open channel.

channel.open for a channel number not in use is the connection's (it
creates the channel, :meth:`~..connection.Connection._open_channel`); a
second channel.open on an open channel is an error, answered here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamqp import commands

from leveret.protocol.errors import ChannelErrorCode

if TYPE_CHECKING:
    from ..channel import Channel

Ch = commands.Channel


def open_again(channel: 'Channel', method: Ch.Open) -> None:
    raise ChannelErrorCode(f"second 'channel.open' seen on channel {channel.id}")


def close(channel: 'Channel', method: Ch.Close) -> None:
    channel.closed_by_client()
    channel.send_method(Ch.CloseOk())


def close_ok(channel: 'Channel', method: Ch.CloseOk) -> None:
    """close-ok for a close we never sent: ignored, as RabbitMQ does."""


def flow(channel: 'Channel', method: Ch.Flow) -> None:
    channel.flow_active = bool(method.active)
    channel.send_method(Ch.FlowOk(method.active))
    channel.update_deliverable()     # after flow-ok: deliveries follow it


def flow_ok(channel: 'Channel', method: Ch.FlowOk) -> None:
    """The answer to a channel.flow we never send: ignored."""

"""confirm.select: publisher confirms (RabbitMQ's extension)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamqp import commands

from leveret.protocol.errors import PreconditionFailed

if TYPE_CHECKING:
    from ..channel import Channel


def select(channel: 'Channel', method: commands.Confirm.Select) -> None:
    if channel.tx_mode:
        raise PreconditionFailed('cannot switch from tx to confirm mode')
    channel.confirm_mode = True
    if not method.nowait:
        channel.send_method(commands.Confirm.SelectOk())

"""tx.select / commit / rollback: transactions of publishes and acks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamqp import commands

from leveret.protocol.errors import PreconditionFailed

if TYPE_CHECKING:
    from ..channel import Channel


def select(channel: 'Channel', method: commands.Tx.Select) -> None:
    if channel.confirm_mode:
        raise PreconditionFailed('cannot switch from confirm to tx mode')
    channel.tx_mode = True
    channel.send_method(commands.Tx.SelectOk())


def commit(channel: 'Channel', method: commands.Tx.Commit) -> None:
    if not channel.tx_mode:
        raise PreconditionFailed('channel is not transactional')
    channel.tx_commit()
    # commit-ok promises the publishes and acks are on disk.
    channel.conn.reply_when_synced(channel, commands.Tx.CommitOk())


def rollback(channel: 'Channel', method: commands.Tx.Rollback) -> None:
    if not channel.tx_mode:
        raise PreconditionFailed('channel is not transactional')
    channel.tx_rollback()
    channel.send_method(commands.Tx.RollbackOk())

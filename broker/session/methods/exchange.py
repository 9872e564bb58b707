"""exchange.declare / delete / bind / unbind."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamqp import commands

from ._checks import check_name

if TYPE_CHECKING:
    from ..channel import Channel

Exchange = commands.Exchange


def declare(channel: 'Channel', method: Exchange.Declare) -> None:
    name = check_name(method.exchange, 'exchange')
    position = channel.store.write_position()
    channel.vhost.declare_exchange(
        name, method.exchange_type, passive=method.passive, durable=method.durable,
        auto_delete=method.auto_delete, internal=method.internal,
        arguments=method.arguments)
    if not method.nowait:
        channel.reply_durably(Exchange.DeclareOk(), position)


def delete(channel: 'Channel', method: Exchange.Delete) -> None:
    position = channel.store.write_position()
    channel.vhost.delete_exchange(check_name(method.exchange, 'exchange'),
                                  if_unused=method.if_unused)
    if not method.nowait:
        channel.reply_durably(Exchange.DeleteOk(), position)


def bind(channel: 'Channel', method: Exchange.Bind) -> None:
    vhost = channel.vhost
    position = channel.store.write_position()
    destination = vhost.exchange(check_name(method.destination, 'exchange'))
    source = vhost.exchange(check_name(method.source, 'exchange'))
    vhost.bind(source, destination, method.routing_key, method.arguments)
    if not method.nowait:
        channel.reply_durably(Exchange.BindOk(), position)


def unbind(channel: 'Channel', method: Exchange.Unbind) -> None:
    # Idempotent, as queue.unbind: missing exchanges have no bindings left.
    vhost = channel.vhost
    position = channel.store.write_position()
    destination = vhost.exchanges.get(check_name(method.destination, 'exchange'))
    source = vhost.exchanges.get(check_name(method.source, 'exchange'))
    if destination is not None and source is not None:
        vhost.unbind(source, destination, method.routing_key, method.arguments)
    if not method.nowait:
        channel.reply_durably(Exchange.UnbindOk(), position)

"""exchange.declare / delete / bind / unbind.

Permissions are checked in RabbitMQ's order (``rabbit_channel``): declare
and delete need configure on the exchange, and a new exchange with an
alternate exchange also read on itself and write on the AE; a binding needs
write on its destination and read on its source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamqp import commands

from leveret.protocol.errors import AccessRefused

from ._checks import argument_name, check_name

if TYPE_CHECKING:
    from ..channel import Channel

Exchange = commands.Exchange


def declare(channel: 'Channel', method: Exchange.Declare) -> None:
    name = check_name(method.exchange, 'exchange')
    vhost = channel.vhost
    if not method.passive and name != '':     # '' is refused by the vhost
        access = channel.access
        access.check('configure', 'exchange', name)
        if name not in vhost.exchanges:
            alternate = argument_name(method.arguments, 'alternate-exchange')
            if alternate is not None:
                access.check('read', 'exchange', name)
                access.check('write', 'exchange', alternate)
    position = channel.store.write_position()
    vhost.declare_exchange(
        name, method.exchange_type, passive=method.passive, durable=method.durable,
        auto_delete=method.auto_delete, internal=method.internal,
        arguments=method.arguments)
    if not method.nowait:
        channel.reply_durably(Exchange.DeclareOk(), position)


def delete(channel: 'Channel', method: Exchange.Delete) -> None:
    name = check_name(method.exchange, 'exchange')
    if name != '' and not name.startswith('amq.'):     # refused by the vhost first
        channel.access.check('configure', 'exchange', name)
    position = channel.store.write_position()
    channel.vhost.delete_exchange(name, if_unused=method.if_unused)
    if not method.nowait:
        channel.reply_durably(Exchange.DeleteOk(), position)


def check_binding(channel: 'Channel', source: str, kind: str, destination: str,
                  routing_key: str) -> None:
    """RabbitMQ's ``binding_action`` checks: write on the destination, not
    the default exchange, read on the source, and the topic permission of a
    topic source allows the binding key (for reading)."""
    access = channel.access
    access.check('write', kind, destination)    # type: ignore[arg-type]
    if source == '' or (kind == 'exchange' and destination == ''):
        raise AccessRefused('operation not permitted on the default exchange')
    access.check('read', 'exchange', source)
    exchange = channel.vhost.exchanges.get(source)
    if exchange is not None and exchange.kind == 'topic':
        access.check_topic('read', source, routing_key)


def bind(channel: 'Channel', method: Exchange.Bind) -> None:
    vhost = channel.vhost
    destination_name = check_name(method.destination, 'exchange')
    source_name = check_name(method.source, 'exchange')
    check_binding(channel, source_name, 'exchange', destination_name, method.routing_key)
    position = channel.store.write_position()
    destination = vhost.exchange(destination_name)
    source = vhost.exchange(source_name)
    vhost.bind(source, destination, method.routing_key, method.arguments)
    if not method.nowait:
        channel.reply_durably(Exchange.BindOk(), position)


def unbind(channel: 'Channel', method: Exchange.Unbind) -> None:
    # Idempotent, as queue.unbind: missing exchanges have no bindings left.
    vhost = channel.vhost
    destination_name = check_name(method.destination, 'exchange')
    source_name = check_name(method.source, 'exchange')
    check_binding(channel, source_name, 'exchange', destination_name, method.routing_key)
    position = channel.store.write_position()
    destination = vhost.exchanges.get(destination_name)
    source = vhost.exchanges.get(source_name)
    if destination is not None and source is not None:
        vhost.unbind(source, destination, method.routing_key, method.arguments)
    if not method.nowait:
        channel.reply_durably(Exchange.UnbindOk(), position)

"""queue.declare / bind / unbind / purge / delete.

A change to something durable is answered once its journal record is synced
(:meth:`Channel.reply_durably`).  Permissions are checked in RabbitMQ's order:
declare (not passive) and delete need configure on the queue, a new queue
with a dead-letter exchange also read on itself and write on the DLX; bind
and unbind need write on the queue and read on the exchange; purge needs read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamqp import commands

from leveret.protocol.errors import NotFound

from .. import limits
from ._checks import argument_name, check_name
from .exchange import check_binding

if TYPE_CHECKING:
    from ...model.queue import Queue as ModelQueue
    from ..channel import Channel

Queue = commands.Queue


def default_queue(channel: 'Channel', name: str) -> str:
    """An empty queue name means the channel's last declared queue."""
    if name == '':
        last = channel.last_queue_name
        if last is None:
            raise NotFound('no previously declared queue')
        return last
    return name


def declare(channel: 'Channel', method: Queue.Declare) -> None:
    conn = channel.conn

    def authorize(name: str, existing: 'ModelQueue | None') -> None:
        access = channel.access
        access.check('configure', 'queue', name)
        if existing is None:
            limits.check_new_queue(conn.sessions.settings, conn.user, channel.vhost, name,
                                   list(conn.sessions.vhosts.values()))
            dead_letter = argument_name(method.arguments, 'x-dead-letter-exchange')
            if dead_letter is not None:
                access.check('read', 'queue', name)
                access.check('write', 'exchange', dead_letter)

    position = channel.store.write_position()
    queue = channel.vhost.declare_queue(
        check_name(method.queue, 'queue'), conn, passive=method.passive,
        durable=method.durable, exclusive=method.exclusive,
        auto_delete=method.auto_delete, arguments=method.arguments,
        authorize=authorize, declared_by=conn.username)
    channel.last_queue_name = queue.name
    if not method.nowait:
        channel.reply_durably(Queue.DeclareOk(queue.name, queue.message_count,
                                              queue.consumer_count), position)


def bind(channel: 'Channel', method: Queue.Bind) -> None:
    vhost = channel.vhost
    name = default_queue(channel, check_name(method.queue, 'queue'))
    exchange_name = check_name(method.exchange, 'exchange')
    check_binding(channel, exchange_name, 'queue', name, method.routing_key)
    position = channel.store.write_position()
    queue = vhost.queue(name, channel.conn)
    exchange = vhost.exchange(exchange_name)
    vhost.bind(exchange, queue, method.routing_key, method.arguments)
    if not method.nowait:
        channel.reply_durably(Queue.BindOk(), position)


def unbind(channel: 'Channel', method: Queue.Unbind) -> None:
    # Like RabbitMQ, unbinding is idempotent: a queue or exchange that is
    # already gone (auto-deleted, say) has no binding left to remove.
    vhost = channel.vhost
    name = default_queue(channel, check_name(method.queue, 'queue'))
    exchange_name = check_name(method.exchange, 'exchange')
    check_binding(channel, exchange_name, 'queue', name, method.routing_key)
    position = channel.store.write_position()
    exchange = vhost.exchanges.get(exchange_name)
    if name in vhost.queues and exchange is not None:
        queue = vhost.queue(name, channel.conn)
        vhost.unbind(exchange, queue, method.routing_key, method.arguments)
    channel.reply_durably(Queue.UnbindOk(), position)


def purge(channel: 'Channel', method: Queue.Purge) -> None:
    name = default_queue(channel, check_name(method.queue, 'queue'))
    channel.access.check('read', 'queue', name)
    queue = channel.vhost.queue(name, channel.conn)
    count = queue.purge()
    if not method.nowait:
        channel.send_method(Queue.PurgeOk(count))


def delete(channel: 'Channel', method: Queue.Delete) -> None:
    vhost = channel.vhost
    position = channel.store.write_position()
    name = default_queue(channel, check_name(method.queue, 'queue'))
    channel.access.check('configure', 'queue', name)
    if name not in vhost.queues:
        # RabbitMQ answers delete-ok with 0 for a queue that does not exist.
        count = 0
    else:
        queue = vhost.queue(name, channel.conn)
        count = vhost.delete_queue(queue, if_unused=method.if_unused,
                                   if_empty=method.if_empty)
    if not method.nowait:
        channel.reply_durably(Queue.DeleteOk(count), position)

"""queue.declare / bind / unbind / purge / delete.

A change to something durable is answered once its journal record is synced
(:meth:`Channel.reply_durably`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamqp import commands

from leveret.protocol.errors import NotFound

from ._checks import check_name

if TYPE_CHECKING:
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
    position = channel.store.write_position()
    queue = channel.vhost.declare_queue(
        check_name(method.queue, 'queue'), conn, passive=method.passive,
        durable=method.durable, exclusive=method.exclusive,
        auto_delete=method.auto_delete, arguments=method.arguments)
    channel.last_queue_name = queue.name
    if not method.nowait:
        channel.reply_durably(Queue.DeclareOk(queue.name, queue.message_count,
                                              queue.consumer_count), position)


def bind(channel: 'Channel', method: Queue.Bind) -> None:
    vhost = channel.vhost
    position = channel.store.write_position()
    queue = vhost.queue(default_queue(channel, check_name(method.queue, 'queue')),
                        channel.conn)
    exchange = vhost.exchange(check_name(method.exchange, 'exchange'))
    vhost.bind(exchange, queue, method.routing_key, method.arguments)
    if not method.nowait:
        channel.reply_durably(Queue.BindOk(), position)


def unbind(channel: 'Channel', method: Queue.Unbind) -> None:
    # Like RabbitMQ, unbinding is idempotent: a queue or exchange that is
    # already gone (auto-deleted, say) has no binding left to remove.
    vhost = channel.vhost
    position = channel.store.write_position()
    name = default_queue(channel, check_name(method.queue, 'queue'))
    exchange = vhost.exchanges.get(check_name(method.exchange, 'exchange'))
    if name in vhost.queues and exchange is not None:
        queue = vhost.queue(name, channel.conn)
        vhost.unbind(exchange, queue, method.routing_key, method.arguments)
    channel.reply_durably(Queue.UnbindOk(), position)


def purge(channel: 'Channel', method: Queue.Purge) -> None:
    queue = channel.vhost.queue(default_queue(channel, check_name(method.queue, 'queue')),
                                channel.conn)
    count = queue.purge()
    if not method.nowait:
        channel.send_method(Queue.PurgeOk(count))


def delete(channel: 'Channel', method: Queue.Delete) -> None:
    vhost = channel.vhost
    position = channel.store.write_position()
    name = default_queue(channel, check_name(method.queue, 'queue'))
    if name not in vhost.queues:
        # RabbitMQ answers delete-ok with 0 for a queue that does not exist.
        count = 0
    else:
        queue = vhost.queue(name, channel.conn)
        count = vhost.delete_queue(queue, if_unused=method.if_unused,
                                   if_empty=method.if_empty)
    if not method.nowait:
        channel.reply_durably(Queue.DeleteOk(count), position)

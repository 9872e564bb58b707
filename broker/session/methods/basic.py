"""basic.* methods that are not on the per-message fast path.

basic.publish, basic.ack, basic.nack and basic.reject are not here: the
frame loop decodes them with :mod:`leveret.protocol.codec` and calls the
channel itself (:data:`~leveret.broker.session.methods.FAST_PATH`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pamqp import commands

from leveret.protocol.errors import AccessRefused, NotAllowed, NotImplemented_, PreconditionFailed

from ...model.queue_args import type_name
from ...model.vhost import generated_name
from ..consumer import Consumer
from ._checks import check_name
from .queue import default_queue

if TYPE_CHECKING:
    from ..channel import Channel

Basic = commands.Basic


def qos(channel: 'Channel', method: Basic.Qos) -> None:
    if method.prefetch_size:
        raise NotImplemented_(f'prefetch_size!=0 ({method.prefetch_size})')
    channel.set_qos(method.prefetch_count, method.global_)
    channel.send_method(Basic.QosOk())
    channel.kick()      # deliveries the new limit allows go after qos-ok, as RabbitMQ


def consume(channel: 'Channel', method: Basic.Consume) -> None:
    vhost = channel.vhost
    if method.consumer_tag in channel.consumers:
        raise NotAllowed(f"attempt to reuse consumer tag '{method.consumer_tag}'")
    most = channel.conn.sessions.settings.consumer_max_per_channel
    if most and len(channel.consumers) >= most:
        raise NotAllowed(f'reached maximum ({most}) of consumers per channel')
    name = default_queue(channel, check_name(method.queue, 'queue'))
    channel.access.check('read', 'queue', name)
    queue = vhost.queue(name, channel.conn)
    tag = method.consumer_tag or generated_name('amq.ctag-')
    if queue.has_exclusive_consumer() or (method.exclusive and queue.consumers):
        raise AccessRefused(
            f"queue '{queue.name}' in vhost '{vhost.name}' in exclusive use")
    arguments = method.arguments or {}
    priority = arguments.get('x-priority', 0)
    if type(priority) is not int:
        raise PreconditionFailed(
            f"invalid arg 'x-priority' for queue '{queue.name}' in vhost '{vhost.name}': "
            f'"expected integer, got {type_name(priority)}"')
    consumer = Consumer(tag, channel, queue, method.no_ack, method.exclusive,
                        channel.prefetch, arguments)
    channel.add_consumer(consumer)
    if not method.nowait:
        channel.send_method(Basic.ConsumeOk(tag))
    queue.drain()


def cancel(channel: 'Channel', method: Basic.Cancel) -> None:
    # cancel-ok first: the deliveries the cancel lets through (to the next
    # single active consumer, to a lower priority) follow it, as RabbitMQ.
    if not method.nowait:
        channel.send_method(Basic.CancelOk(method.consumer_tag))
    channel.cancel_consumer(method.consumer_tag or '')


def get(channel: 'Channel', method: Basic.Get) -> None:
    name = default_queue(channel, check_name(method.queue, 'queue'))
    channel.access.check('read', 'queue', name)
    queue = channel.vhost.queue(name, channel.conn)
    message = queue.get()
    if message is None:
        channel.stat_get_empty += 1
        queue.stat_get_empty += 1
        channel.send_method(Basic.GetEmpty())
    else:
        channel.deliver_get(queue, message, method.no_ack)


def recover(channel: 'Channel', method: Basic.Recover) -> None:
    if not method.requeue:
        raise NotImplemented_('requeue=false')     # as RabbitMQ
    channel.send_method(Basic.RecoverOk())       # before the redeliveries
    channel.recover()


def recover_async(channel: 'Channel', method: Basic.RecoverAsync) -> None:
    if not method.requeue:
        raise NotImplemented_('requeue=false')
    channel.recover()

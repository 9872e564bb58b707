"""A basic.consume subscription: one queue, one channel, its own credit.

The model's :class:`~leveret.broker.model.ports.Subscriber`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leveret.protocol.codec import shortstr

from ..model import celery

if TYPE_CHECKING:
    from ..model.message import Message
    from ..model.queue import Queue
    from .channel import Channel


class Consumer:
    __slots__ = ('tag', 'tag_bytes', 'channel', 'queue', 'no_ack', 'exclusive',
                 'prefetch', 'unacked', 'arguments', 'priority')

    def __init__(self, tag: str, channel: 'Channel', queue: 'Queue', no_ack: bool,
                 exclusive: bool, prefetch: int, arguments: dict[str, Any]) -> None:
        self.tag = tag
        self.tag_bytes = shortstr(tag)
        self.channel = channel
        self.queue = queue
        self.no_ack = no_ack
        self.exclusive = exclusive
        #: Per-consumer prefetch (0 = unlimited); basic.qos updates it live.
        self.prefetch = prefetch
        self.unacked = 0
        self.arguments = arguments
        #: x-priority: higher-priority consumers get messages first while
        #: they have credit (validated by basic.consume).
        self.priority: int = arguments.get('x-priority', 0)

    def __repr__(self) -> str:
        return f'<Consumer {self.tag!r} on {self.queue.name!r}>'

    def has_credit(self) -> bool:
        """May this consumer take one more message now?"""
        channel = self.channel
        if not channel.deliverable:
            return False
        if self.no_ack:
            return True
        prefetch = self.prefetch
        if prefetch:
            if self.unacked >= prefetch:
                return False
            limit = channel.global_prefetch
        else:
            # No prefetch of its own: the channel's, or the broker's cap.
            limit = channel.global_prefetch or channel.unacked_cap
        return not limit or channel.unacked_count < limit

    def deliver(self, message: 'Message') -> None:
        """Send ``message`` to the client: the hot path.

        The channel's side of a delivery (the next delivery tag, the unacked
        map) is done here rather than in a method of the channel: one Python
        call less per message.
        """
        channel = self.channel
        queue = self.queue
        tag = channel.next_tag + 1
        channel.next_tag = tag
        if self.no_ack:
            queue.settle(message)
            channel.stat_deliver_no_ack += 1
            queue.stat_deliver_no_ack += 1
        else:
            if message.store_id:
                channel.store.delivered(message)
            channel.unacked[tag] = (message, queue, self)
            self.unacked += 1
            channel.unacked_count += 1
            channel.stat_deliver += 1
            queue.stat_deliver += 1
        if message.redelivered:
            channel.stat_redeliver += 1
            queue.stat_redeliver += 1
        if message.task is not None:
            celery.delivered(queue.celery_tasks, message, message.task)
        channel.conn.send_delivery(channel.id, self.tag_bytes, tag, message)

    def cancelled_by_server(self) -> None:
        """The queue was deleted (the model's Subscriber port)."""
        self.channel.consumer_cancelled_by_server(self)

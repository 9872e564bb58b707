"""A message as it sits in one queue.

The content (routing info, the publisher's raw content-header payload and
the body) is immutable and shared by reference when a message is routed to
several queues; each queue gets its own :class:`Message` because position,
redelivery and expiry are per queue.
"""

from __future__ import annotations

from leveret.protocol.codec import shortstr

#: What a queued message costs beyond its body and header bytes: the
#: message object, the bytes objects' own headers, its routing key, its seq
#: and its slot in the queue (measured in a queue of a million: about 334
#: bytes of resident memory per empty message with a 15-byte header, 1,370
#: per 1 KiB message).  The memory alarm counts it.
MESSAGE_OVERHEAD = 320


class Message:
    __slots__ = (
        'exchange', 'routing_key', 'header', 'body', 'priority', 'persistent',
        'expiration', 'seq', 'redelivered', 'delivery_count', 'expires_at',
        'store_id', 'exchange_and_key', 'cost', 'task',
    )

    def __init__(self, exchange: str, routing_key: str, header: bytes, body: bytes,
                 priority: int = 0, persistent: bool = False,
                 expiration: int | None = None,
                 exchange_and_key: bytes | None = None) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        #: The content-header payload, relayed verbatim on delivery.
        self.header = header
        self.body = body
        self.priority = priority
        self.persistent = persistent
        #: Per-message TTL in ms from the ``expiration`` property, or None.
        self.expiration = expiration
        #: Position in the queue; requeued messages go back by it.
        self.seq = 0
        self.redelivered = False
        #: Deliveries that ended in a requeue (RabbitMQ's x-delivery-count).
        self.delivery_count = 0
        #: Monotonic deadline in seconds, 0.0 for never.
        self.expires_at = 0.0
        #: Identity in the persistent store, 0 when not stored.
        self.store_id = 0
        #: The exchange and routing key as encoded short strings, as
        #: basic.deliver and the store write them (a publish brings them).
        self.exchange_and_key = (exchange_and_key if exchange_and_key is not None
                                 else shortstr(exchange) + shortstr(routing_key))
        #: Bytes of memory it holds, as the memory alarm counts them.
        self.cost = len(body) + len(header) + MESSAGE_OVERHEAD
        #: A Celery task's mark (``model.celery.TaskMark``), None for any other message.
        self.task: tuple[str, float] | None = None

    @property
    def size(self) -> int:
        return len(self.body)

    def copy(self) -> 'Message':
        """A new queue entry sharing this message's content."""
        other = Message.__new__(Message)
        other.exchange = self.exchange
        other.routing_key = self.routing_key
        other.header = self.header
        other.body = self.body
        other.priority = self.priority
        other.persistent = self.persistent
        other.expiration = self.expiration
        other.seq = 0
        other.redelivered = False
        other.delivery_count = 0
        other.expires_at = 0.0
        other.store_id = 0
        other.exchange_and_key = self.exchange_and_key
        other.cost = self.cost
        other.task = self.task
        return other

    def set_header(self, header: bytes) -> int:
        """Replace the content header (a rewrite); return how much the cost grew."""
        grown = len(header) - len(self.header)
        self.header = header
        self.cost += grown
        return grown

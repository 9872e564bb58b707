"""What the model needs from the layer above it, as protocols.

The model never imports the session: a queue holds :class:`Subscriber`
objects, throttles :class:`Publisher` objects and remembers the
:class:`QueueOwner` of an exclusive queue.  ``leveret.broker.session``
implements them (its ``Consumer`` and ``Connection``); model tests use
small fakes.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .message import Message


class Subscriber(Protocol):
    """A consumer of one queue (basic.consume), as the queue sees it."""

    #: x-priority: higher-priority subscribers are served first while they
    #: have credit.
    priority: int
    #: basic.consume(exclusive=true): no other subscriber may join.
    exclusive: bool

    def has_credit(self) -> bool:
        """May this subscriber take one more message now?"""

    def deliver(self, message: Message) -> None:
        """Take ``message`` (the queue already removed it from its ready list)."""

    def cancelled_by_server(self) -> None:
        """The queue is gone: the subscription ended without a basic.cancel."""


class ThrottleSource(Hashable, Protocol):
    """What holds a publisher back: a queue's flow control, the memory alarm.

    Implemented by the model itself; named here because it is what the
    model hands a :class:`Publisher`.
    """

    def forget_publisher(self, publisher: Publisher) -> None:
        """``publisher`` went away: stop tracking it (no unthrottle follows)."""


class Publisher(Hashable, Protocol):
    """Where published messages come from (a connection), for back-pressure.

    The publisher is read again only once every source that throttled it
    has let go of it.
    """

    def throttle(self, source: ThrottleSource) -> None:
        """Stop taking messages from this publisher after the current batch."""

    def unthrottle(self, source: ThrottleSource) -> None:
        """``source`` no longer holds the publisher back."""

    def notify_blocked(self, reason: str) -> None:
        """The memory alarm blocks the publisher (``connection.blocked``)."""

    def notify_unblocked(self) -> None:
        """The alarm cleared (``connection.unblocked``)."""


class QueueOwner(Hashable, Protocol):
    """Who declared an exclusive queue (a connection).

    Only its identity matters: the queue is the owner's alone, and
    :meth:`VirtualHost.owner_gone` deletes it when the owner goes.
    """


class DurableTopology(Protocol):
    """Told of every change to a vhost's durable exchanges, queues and
    bindings (the broker journals them before the change is answered).

    Only durable things are reported: durable exchanges, durable
    non-exclusive queues, bindings between two such ends.
    """

    def exchange_saved(self, vhost: str, exchange: Any) -> None: ...
    def exchange_dropped(self, vhost: str, name: str) -> None: ...
    def queue_saved(self, vhost: str, queue: Any) -> None: ...
    def queue_dropped(self, vhost: str, name: str) -> None: ...
    def binding_saved(self, vhost: str, source: str, destination: Any, routing_key: str,
                      arguments: dict[str, Any]) -> None: ...
    def binding_dropped(self, vhost: str, source: str, destination: Any, routing_key: str,
                        arguments: dict[str, Any]) -> None: ...

"""The AMQP sessions: connections, channels, consumers and the method table.

One :class:`~.connection.Connection` per client socket.  The session layer
translates frames into calls on the model (:mod:`leveret.broker.model`) and
implements the model's ports: a :class:`~.consumer.Consumer` is a
``Subscriber``, a connection is a ``Publisher`` and a ``QueueOwner``.
Process wiring reaches the sessions through :class:`~.registry.Sessions`.
"""

from .connection import Connection
from .registry import Sessions

__all__ = ['Connection', 'Sessions']

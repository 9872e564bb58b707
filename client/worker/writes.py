"""What the worker writes to the broker about its tasks: acks and rejects on
the consumer connection, results and republished tasks on the producer
connection.

Nothing here awaits on the hot path: acks are coalesced by the
:class:`~.frames.Settler`, results go into the :class:`~.frames.FrameWriter`'s
buffer, and confirmed publishes are queued on the :class:`~.publisher.Outbox`.
A request is settled only on the connection it came on: after a reconnect
the broker has requeued it already.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pamqp import commands as spec

from .canvas import Outgoing
from .connection import ConsumerConnection
from .frames import FrameWriter, Settler
from .publisher import Outbox, Publisher
from .request import TaskRequest


class BrokerWrites:
    def __init__(self, publisher: Publisher, outbox: Outbox,
                 acks_may_wait: Callable[[int], bool]) -> None:
        self.publisher = publisher
        self.outbox = outbox
        #: Whether pending acks may wait for others (see :class:`~.frames.Settler`).
        self.acks_may_wait = acks_may_wait
        #: The current consumer connection (tasks come on it; their acks go back on it).
        self.connection: ConsumerConnection | None = None
        self.settler: Settler | None = None
        #: Results, on the producer connection's channel without confirms.
        self.results: FrameWriter | None = None

    def attach_consumer(self, connection: ConsumerConnection) -> None:
        """Deliveries come on ``connection`` from now on (a new connection)."""
        self.connection = connection
        self.settler = Settler(connection, self.acks_may_wait)

    def attach_results(self, channel: Any) -> None:
        """Results go to ``channel`` (an aiormq channel) from now on."""
        if self.results is not None:
            self.results.stop()
        self.results = FrameWriter(channel)

    def is_stale(self, request: TaskRequest) -> bool:
        """Delivered on a connection that is gone: not ours to run or settle any more."""
        connection = self.connection
        return connection is None or request.channel is not connection or connection.is_closed

    # --- acks and rejects ----------------------------------------------------
    def reject_delivery(self, delivery_tag: int, requeue: bool) -> None:
        """Reject a delivery no request was made for (invalid, unregistered, too late)."""
        assert self.settler is not None
        self.settler.reject(delivery_tag, requeue)

    def ack(self, request: TaskRequest) -> None:
        request.acknowledged = True
        if request.channel is self.connection and self.settler is not None:
            self.settler.ack(request.delivery_tag)

    def settle(self, request: TaskRequest) -> None:
        """The task is done with: ack it if acks_late held it."""
        if not request.acknowledged:
            self.ack(request)

    def reject(self, request: TaskRequest, requeue: bool) -> None:
        if request.acknowledged:
            return  # acked when it started: nothing left to reject (as Celery)
        request.acknowledged = True
        if request.channel is self.connection and self.settler is not None:
            self.settler.reject(request.delivery_tag, requeue)

    # --- publishes -----------------------------------------------------------
    def publish_result(self, reply_to: str, correlation_id: str, body: bytes) -> None:
        if self.results is not None:
            self.results.publish_result(reply_to, correlation_id, body)

    def publish_task(self, outgoing: Outgoing) -> None:
        """Send a task message (a retry, a chain's next task), confirmed by the
        broker: it is not lost between the ack of its parent and the broker."""
        message = outgoing.message
        properties = message.properties.model_dump(exclude_none=True)
        properties['headers'] = message.header_table()
        props = spec.Basic.Properties(**properties)
        body = message.body()
        exchange, routing_key = outgoing.exchange, outgoing.routing_key
        publisher = self.publisher
        self.outbox.put(lambda: publisher.publish(body, exchange, routing_key, props,
                                                  confirm=True))

    async def flush(self) -> None:
        """Write what is pending: acks, results and queued publishes."""
        if self.settler is not None:
            self.settler.flush()
        if self.connection is not None:
            await self.connection.flush()
        if self.results is not None:
            await self.results.flush()
        await self.outbox.flush()

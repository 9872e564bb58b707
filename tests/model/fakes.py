"""Fakes of what the model needs from the session (model/ports.py), and
helpers to build a virtual host on a ManualClock and a MemoryStore."""

from __future__ import annotations

from typing import Any

from pamqp import commands as C

from leveret.broker.model.clock import ManualClock
from leveret.broker.model.memory import MemoryMonitor
from leveret.broker.model.message import Message
from leveret.broker.model.ports import ThrottleSource
from leveret.broker.model.queue import Queue
from leveret.broker.model.vhost import VirtualHost
from leveret.broker.store.memory import MemoryStore
from leveret.protocol import properties


class Subscriber:
    """A consumer: takes messages while it has credit, acks when told."""

    def __init__(self, queue: Queue, prefetch: int | None = None, priority: int = 0,
                 exclusive: bool = False, name: str = '') -> None:
        self.queue = queue
        self.prefetch = prefetch
        self.priority = priority
        self.exclusive = exclusive
        self.name = name
        self.delivered: list[Message] = []
        self.unacked: list[Message] = []
        self.cancelled = False

    def __repr__(self) -> str:
        return f'<Subscriber {self.name}>'

    # --- the Subscriber port ---
    def has_credit(self) -> bool:
        return self.prefetch is None or len(self.unacked) < self.prefetch

    def deliver(self, message: Message) -> None:
        self.delivered.append(message)
        self.unacked.append(message)

    def cancelled_by_server(self) -> None:
        self.cancelled = True

    # --- what a channel would do on the client's behalf ---
    def subscribe(self) -> Subscriber:
        self.queue.add_consumer(self)
        self.queue.drain()
        return self

    def ack(self, count: int | None = None) -> None:
        taken = self._take(count)
        for message in taken:
            self.queue.settle(message)
        self.queue.drain()

    def requeue(self, count: int | None = None) -> None:
        self.queue.requeue(self._take(count))

    def reject(self, count: int | None = None) -> None:
        self.queue.reject(self._take(count))
        self.queue.drain()

    def bodies(self) -> list[bytes]:
        return [m.body for m in self.delivered]

    def _take(self, count: int | None) -> list[Message]:
        count = len(self.unacked) if count is None else count
        taken, self.unacked = self.unacked[:count], self.unacked[count:]
        return taken


class Publisher:
    """A publishing connection: records being throttled and blocked."""

    def __init__(self) -> None:
        self.throttled_by: set[ThrottleSource] = set()
        self.notices: list[str] = []

    def throttle(self, source: ThrottleSource) -> None:
        self.throttled_by.add(source)

    def unthrottle(self, source: ThrottleSource) -> None:
        self.throttled_by.discard(source)

    def notify_blocked(self, reason: str) -> None:
        self.notices.append(f'blocked: {reason}')

    def notify_unblocked(self) -> None:
        self.notices.append('unblocked')


def make_vhost(high_watermark: int = 1 << 40) -> tuple[VirtualHost, ManualClock]:
    clock = ManualClock()
    return VirtualHost('/', MemoryStore(), clock, MemoryMonitor(high_watermark)), clock


def message(body: bytes = b'm', exchange: str = '', routing_key: str = 'q',
            **props: Any) -> Message:
    """A message as a publish would bring it: its content header, priority and TTL."""
    header = properties.encode(C.Basic.Properties(**props), len(body))
    expiration = props.get('expiration')
    return Message(exchange, routing_key, header, body, props.get('priority') or 0,
                   props.get('delivery_mode') == 2,
                   int(expiration) if expiration is not None else None)


def cost(*bodies: bytes) -> int:
    """What the memory alarm counts for messages with these bodies (and no
    properties): body, header and the message's objects."""
    return sum(message(body).cost for body in bodies)


def publish(vhost: VirtualHost, exchange: str, routing_key: str, body: bytes = b'm',
            publisher: Publisher | None = None, **props: Any) -> list[bool]:
    """Route a message as the channel does: one copy per queue it reaches."""
    first = message(body, exchange, routing_key, **props)
    source = vhost.exchange(exchange)
    return [queue.publish(first if i == 0 else first.copy(), publisher)
            for i, queue in enumerate(list(vhost.route(source, routing_key, first)))]


def headers_of(m: Message) -> dict[str, Any]:
    return dict(properties.decode(m.header).headers or {})

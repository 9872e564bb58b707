"""Small things several resources need: the node's name, what is unacked
per queue, the open channels, AMQP errors as API errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

from leveret.protocol.errors import AccessRefused, AMQPError, NotFound

from .errors import ApiError, access_refused, bad_request, not_found_because

if TYPE_CHECKING:
    from ..model.queue import Queue
    from ..session.channel import Channel
    from ..session.connection import Connection
    from .ports import BrokerPort
    from .request import Call

#: Unacked deliveries counted between two yields to the event loop.
UNACKED_SLICE = 10_000


def node(call: Call) -> str:
    return call.broker.node_name


def reason_of(exc: AMQPError) -> str:
    """RabbitMQ's reply text without its ``CODE_NAME - `` prefix."""
    return exc.text.partition(' - ')[2] or exc.text


def api_error(exc: AMQPError) -> ApiError:
    """A model error as the API answers it (RabbitMQ's mapping)."""
    if isinstance(exc, AccessRefused):
        return access_refused()
    if isinstance(exc, NotFound):
        return not_found_because(reason_of(exc))
    return bad_request(reason_of(exc))


def connections(call: Call) -> list[Connection]:
    """Connections that are open (past the handshake), by name."""
    found = [c for c in call.broker.sessions.connections if c.vhost is not None]
    return sorted(found, key=lambda c: c.name)


def channels_of(connection: Connection) -> Iterator[Channel]:
    for number in sorted(connection.channels):
        yield connection.channels[number]


def all_channels(call: Call) -> list[Channel]:
    return [ch for conn in connections(call) for ch in channels_of(conn)]


async def unacked_by_queue(broker: BrokerPort) -> dict[Queue, tuple[int, int]]:
    """(messages, bytes) delivered and not acked yet, per queue.

    Counted from a snapshot, :data:`UNACKED_SLICE` deliveries between two
    yields to the event loop: 500,000 unacked messages take most of a
    second to count, which would stall every client if done in one go."""
    counts: dict[Queue, list[int]] = {}
    since_yield = 0
    for deliveries in broker.sessions.unacked_snapshot():
        for start in range(0, len(deliveries), UNACKED_SLICE):
            chunk = deliveries[start:start + UNACKED_SLICE]
            for message, queue, _consumer in chunk:
                entry = counts.get(queue)
                if entry is None:
                    entry = counts[queue] = [0, 0]
                entry[0] += 1
                entry[1] += len(message.body)
            since_yield += len(chunk)
            if since_yield >= UNACKED_SLICE:
                since_yield = 0
                await asyncio.sleep(0)
    return {q: (n, size) for q, (n, size) in counts.items()}

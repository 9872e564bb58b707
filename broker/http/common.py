"""Small things several resources need: the node's name, what is unacked
per queue, the open channels, AMQP errors as API errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from leveret.protocol.errors import AccessRefused, AMQPError, NotFound

from .errors import ApiError, access_refused, bad_request, not_found_because

if TYPE_CHECKING:
    from ..model.queue import Queue
    from ..session.channel import Channel
    from ..session.connection import Connection
    from .request import Call


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


def unacked_by_queue(call: Call) -> dict[Queue, tuple[int, int]]:
    """(messages, bytes) delivered and not acked yet, per queue."""
    counts: dict[Queue, list[int]] = {}
    for queue, message in call.broker.sessions.unacked():
        entry = counts.get(queue)
        if entry is None:
            entry = counts[queue] = [0, 0]
        entry[0] += 1
        entry[1] += len(message.body)
    return {q: (n, size) for q, (n, size) in counts.items()}

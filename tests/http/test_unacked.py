"""What is unacked per queue, counted in process a slice at a time: the
numbers the queue list, the overview and the rate sampler show, without
holding the event loop for the whole count."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from leveret.broker.auth import Users
from leveret.broker.config import Settings
from leveret.broker.http.common import UNACKED_SLICE, unacked_by_queue
from leveret.broker.model.clock import ManualClock
from leveret.broker.model.message import Message
from leveret.broker.model.vhost import VirtualHost
from leveret.broker.session.registry import Sessions
from leveret.broker.store.memory import MemoryStore


class Connection:
    """A stand-in connection: only its channels' unacked deliveries count."""

    def __init__(self, *channels: dict[int, Any]) -> None:
        self.channels = {number: SimpleNamespace(unacked=unacked)
                         for number, unacked in enumerate(channels, start=1)}


def broker_with(*channels: dict[int, Any]) -> SimpleNamespace:
    sessions = Sessions(Settings(), Users(), {}, {})
    sessions.connections.add(Connection(*channels))  # type: ignore[arg-type]
    return SimpleNamespace(sessions=sessions)


def test_counts_and_bytes_per_queue_across_slices_while_the_loop_runs():
    vhost = VirtualHost('/', MemoryStore(), ManualClock())
    queues = [vhost.declare_queue(f'q{i}', None) for i in range(3)]

    def delivery(n: int) -> tuple[Message, Any, None]:
        body = b'x' * (n % 5 + 1)
        return (Message('', 'q', b'', body, 0, False, None), queues[n % 3], None)

    first = {tag: delivery(tag) for tag in range(2 * UNACKED_SLICE + 5)}
    second = {tag: delivery(tag) for tag in range(7)}
    broker = broker_with(first, second)
    turns = 0

    async def acks() -> None:
        nonlocal turns
        while True:
            turns += 1
            first.pop(turns, None)          # acks arrive while the count runs
            await asyncio.sleep(0)

    async def count() -> tuple[dict[Any, tuple[int, int]], dict[Any, tuple[int, int]], int]:
        other = asyncio.ensure_future(acks())
        await asyncio.sleep(0)
        # What the count copies when it starts: everything left now.
        expected: dict[Any, list[int]] = {}
        for message, queue, _ in list(first.values()) + list(second.values()):
            entry = expected.setdefault(queue, [0, 0])
            entry[0] += 1
            entry[1] += len(message.body)
        turns_before = turns
        try:
            counted = await unacked_by_queue(broker)  # type: ignore[arg-type]
        finally:
            other.cancel()
        return counted, {q: (n, b) for q, (n, b) in expected.items()}, turns - turns_before

    counted, expected, turns_during = asyncio.run(count())
    assert counted == expected
    assert sum(n for n, _ in counted.values()) == 2 * UNACKED_SLICE + 5 + 7 - 1
    assert turns_during >= 2                # the loop ran between the slices


def test_nothing_unacked_is_an_empty_count():
    assert asyncio.run(unacked_by_queue(broker_with({}, {}))) == {}  # type: ignore[arg-type]

"""Ready-message containers of a queue: FIFO, and FIFO per priority level.

Both keep messages ordered by their per-queue ``seq`` so that requeued
messages go back to their original position.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from heapq import merge
from operator import attrgetter

from .message import Message

_seq = attrgetter('seq')


def _merge_back(ready: deque[Message], messages: list[Message]) -> None:
    """Put ``messages`` (sorted by seq) back into ``ready`` by seq."""
    if not ready or messages[-1].seq < ready[0].seq:
        ready.extendleft(reversed(messages))
        return
    # Where the first goes (a binary search); when no ready message falls
    # among them they all go there in one block (a big requeue's slices do).
    first = messages[0].seq
    lo, hi = 0, len(ready)
    while lo < hi:
        mid = (lo + hi) // 2
        if ready[mid].seq < first:
            lo = mid + 1
        else:
            hi = mid
    if lo == len(ready) or messages[-1].seq < ready[lo].seq:
        ready.rotate(-lo)
        ready.extendleft(reversed(messages))
        ready.rotate(lo)
        return
    merged = list(merge(messages, ready, key=_seq))
    ready.clear()
    ready.extend(merged)


class FifoReady(deque[Message]):
    """A plain deque: append at the tail, pop from the head."""

    def requeue(self, messages: list[Message]) -> None:
        _merge_back(self, messages)

    @staticmethod
    def order_key(message: Message) -> int:
        """Where ``message`` goes: lower keys are delivered first."""
        return message.seq

    def peek(self) -> Message | None:
        return self[0] if self else None

    def drop_head(self) -> Message:
        return self.popleft()


class PriorityReady:
    """One deque per priority level; the highest non-empty level goes first."""

    __slots__ = ('_levels', '_len', 'max_priority')

    def __init__(self, max_priority: int) -> None:
        self.max_priority = max_priority
        self._levels: list[deque[Message]] = [deque() for _ in range(max_priority + 1)]
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def lengths(self) -> dict[int, int]:
        """Ready messages per priority."""
        return {priority: len(level) for priority, level in enumerate(self._levels)}

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[Message]:
        for level in reversed(self._levels):
            yield from level

    def order_key(self, message: Message) -> tuple[int, int]:
        """Where ``message`` goes: lower keys are delivered first (higher
        priority, then older)."""
        return -min(message.priority, self.max_priority), message.seq

    def _level(self, message: Message) -> deque[Message]:
        return self._levels[min(message.priority, self.max_priority)]

    def append(self, message: Message) -> None:
        self._level(message).append(message)
        self._len += 1

    def popleft(self) -> Message:
        for level in reversed(self._levels):
            if level:
                self._len -= 1
                return level.popleft()
        raise IndexError('pop from an empty queue')

    def peek(self) -> Message | None:
        for level in reversed(self._levels):
            if level:
                return level[0]
        return None

    def drop_head(self) -> Message:
        """Overflow drops the oldest message of the lowest priority first."""
        for level in self._levels:
            if level:
                self._len -= 1
                return level.popleft()
        raise IndexError('pop from an empty queue')

    def requeue(self, messages: list[Message]) -> None:
        by_level: dict[int, list[Message]] = {}
        for message in messages:
            by_level.setdefault(min(message.priority, self.max_priority), []).append(message)
        for level, items in by_level.items():
            _merge_back(self._levels[level], items)
        self._len += len(messages)

    def clear(self) -> None:
        for level in self._levels:
            level.clear()
        self._len = 0

    def extend(self, messages: Iterable[Message]) -> None:
        for message in messages:
            self.append(message)

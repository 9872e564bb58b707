"""Time for the model: monotonic seconds and timers.

The model (queues, expiry, dead-lettering, the memory alarm) asks a
:class:`Clock` instead of asyncio, so unit tests drive it with
:class:`ManualClock`; the broker process gives it
:class:`~leveret.broker.loop_clock.LoopClock`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], Any]) -> TimerHandle: ...

    def call_soon(self, callback: Callable[[], Any]) -> TimerHandle: ...


class ManualClock:
    """A clock for tests: time moves only when :meth:`advance` is called."""

    def __init__(self) -> None:
        self.time = 1000.0
        self._timers: list[tuple[float, int, Callable[[], Any], '_Handle']] = []
        self._counter = 0

    def now(self) -> float:
        return self.time

    def call_at(self, when: float, callback: Callable[[], Any]) -> '_Handle':
        handle = _Handle()
        self._counter += 1
        self._timers.append((when, self._counter, callback, handle))
        return handle

    def call_soon(self, callback: Callable[[], Any]) -> '_Handle':
        return self.call_at(self.time, callback)

    def advance(self, seconds: float = 0.0) -> None:
        self.time += seconds
        while True:
            due = sorted(t for t in self._timers if t[0] <= self.time)
            if not due:
                return
            for item in due:
                self._timers.remove(item)
                if not item[3].cancelled:
                    item[2]()


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

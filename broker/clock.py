"""Time for the model: monotonic seconds and timers.

The model (queues, expiry, dead-lettering) asks this object instead of
asyncio directly, so unit tests can drive it with a manual clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], Any]) -> TimerHandle: ...

    def call_soon(self, callback: Callable[[], Any]) -> TimerHandle: ...


class LoopClock:
    """The running asyncio loop's clock (``time.monotonic`` under uvloop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> float:
        return time.monotonic()

    def call_at(self, when: float, callback: Callable[[], Any]) -> TimerHandle:
        # Timers are scheduled on the loop's own clock; convert from ours.
        delay = max(0.0, when - time.monotonic())
        return self.loop.call_later(delay, callback)

    def call_soon(self, callback: Callable[[], Any]) -> TimerHandle:
        return self.loop.call_soon(callback)


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

"""The model's clock in the broker process: the running asyncio loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .model.clock import TimerHandle


class LoopClock:
    """The running asyncio loop's clock (``time.monotonic`` under uvloop).

    The loop is looked up when the first timer is armed, so the clock can be
    made before the loop runs.
    """

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

"""The process's resident memory, sampled for the memory alarm.

The model's :class:`~.model.memory.MemoryMonitor` counts what messages
cost; this module tells it what the process really holds, as RabbitMQ
watches its own resident memory: a few times a second, from
``/proc/self/statm`` (on a system without it the alarm counts alone).
"""

from __future__ import annotations

import os

from .model.clock import Clock, TimerHandle
from .model.memory import MemoryMonitor

#: Seconds between samples.
INTERVAL = 0.25

_PAGE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096


def resident_bytes() -> int | None:
    """The resident set size of this process, or None where it cannot be read."""
    try:
        with open('/proc/self/statm', 'rb') as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


class ResidentWatch:
    """Samples the resident memory into a :class:`MemoryMonitor`."""

    def __init__(self, memory: MemoryMonitor, clock: Clock) -> None:
        self.memory = memory
        self.clock = clock
        self._timer: TimerHandle | None = None

    def start(self) -> None:
        """Measure what the process uses besides messages, then sample."""
        resident = resident_bytes()
        if resident is None:
            return
        self.memory.set_base(resident - self.memory.held)
        self._sample()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sample(self) -> None:
        resident = resident_bytes()
        if resident is not None:
            self.memory.observe_resident(resident)
        self._timer = self.clock.call_at(self.clock.now() + INTERVAL, self._sample)

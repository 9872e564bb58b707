"""The memory alarm: block publishers while queues hold too many bytes.

Every queue adds a message's body size when it takes the message and
subtracts it when the message leaves for good (:meth:`Queue.settle`).
Above the high watermark, publishers (:class:`~.ports.Publisher`: the
connections that publish) get ``connection.blocked`` and are no longer
read from; below the low watermark they get ``connection.unblocked`` and
are read again.  Connections that only consume are never blocked: their
acks free memory.

The bodies of messages that left are freed, but the C allocator keeps the
pages for reuse: after a large backlog drains the broker would go on holding
its peak size. Every few seconds, once enough message bytes have left since
the last look, the monitor asks glibc to hand free pages back
(``malloc_trim``; nothing happens where the C library has no such call).
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable

from .clock import Clock, TimerHandle
from .ports import Publisher

log = logging.getLogger(__name__)

LOW_RATIO = 0.8
#: Seconds between looks at how much memory was freed.
TRIM_INTERVAL = 2.0
#: Message bytes that must have left since the peak before memory is trimmed.
TRIM_AFTER = 32 << 20


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_malloc_trim = _find_malloc_trim()


def default_high_watermark() -> int:
    """40% of physical memory, as RabbitMQ's vm_memory_high_watermark."""
    try:
        return int(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') * 0.4)
    except (ValueError, OSError):
        return 1 << 30


class MemoryMonitor:
    def __init__(self, high_watermark: int) -> None:
        self.held = 0
        #: The most ``held`` has been since memory was last trimmed.
        self.peak = 0
        self.high = high_watermark
        self.low = int(high_watermark * LOW_RATIO)
        self.alarm = False
        #: Publishers blocked by the alarm (throttled as by a queue's flow control).
        self.throttled: set[Publisher] = set()
        self._trim_timer: TimerHandle | None = None

    def check(self) -> None:
        """Raise or clear the alarm after ``held`` moved past a watermark."""
        if not self.alarm and self.held > self.high:
            self.alarm = True
            log.warning('memory alarm: %d message bytes held, above the high watermark %d; '
                        'blocking publishers', self.held, self.high)
        elif self.alarm and self.held < self.low:
            self.alarm = False
            log.warning('memory alarm cleared: %d message bytes held', self.held)
            blocked, self.throttled = self.throttled, set()
            for publisher in blocked:
                publisher.notify_unblocked()
                publisher.unthrottle(self)

    def block(self, publisher: Publisher) -> None:
        """``publisher`` published during the alarm."""
        if publisher not in self.throttled:
            self.throttled.add(publisher)
            publisher.notify_blocked('low on memory')
            publisher.throttle(self)

    def forget_publisher(self, publisher: Publisher) -> None:
        self.throttled.discard(publisher)

    def start_trimming(self, clock: Clock) -> None:
        """Hand freed memory back to the system from now on, every
        :data:`TRIM_INTERVAL` seconds when :data:`TRIM_AFTER` bytes have left."""
        if _malloc_trim is not None:
            self._trim_timer = clock.call_at(clock.now() + TRIM_INTERVAL,
                                             lambda: self._trim(clock))

    def stop_trimming(self) -> None:
        if self._trim_timer is not None:
            self._trim_timer.cancel()
            self._trim_timer = None

    def _trim(self, clock: Clock) -> None:
        if self.peak - self.held >= TRIM_AFTER and _malloc_trim is not None:
            _malloc_trim(0)
            self.peak = self.held
            log.debug('returned freed memory to the system (%d message bytes held)', self.held)
        self._trim_timer = clock.call_at(clock.now() + TRIM_INTERVAL, lambda: self._trim(clock))

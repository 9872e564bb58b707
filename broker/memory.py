"""The memory alarm: block publishers while queues hold too many bytes.

Every queue adds a message's body size when it takes the message and
subtracts it when the message leaves for good (:meth:`Queue.settle`).
Above the high watermark, connections that publish get
``connection.blocked`` and are no longer read from; below the low
watermark they get ``connection.unblocked`` and are read again.
Connections that only consume are never blocked: their acks free memory.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)

LOW_RATIO = 0.8


def default_high_watermark() -> int:
    """40% of physical memory, as RabbitMQ's vm_memory_high_watermark."""
    try:
        return int(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') * 0.4)
    except (ValueError, OSError):
        return 1 << 30


class MemoryMonitor:
    def __init__(self, high_watermark: int) -> None:
        self.held = 0
        self.high = high_watermark
        self.low = int(high_watermark * LOW_RATIO)
        self.alarm = False
        #: Connections blocked by the alarm (same protocol as queue flow control).
        self.throttled: set[Any] = set()

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
            for connection in blocked:
                connection.send_unblocked()
                connection.unthrottle(self)

    def block(self, connection: Any) -> None:
        """``connection`` published during the alarm."""
        if connection not in self.throttled:
            self.throttled.add(connection)
            connection.send_blocked('low on memory')
            connection.throttle(self)

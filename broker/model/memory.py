"""The memory alarm: block publishers before the broker takes too much memory.

The watermark bounds the memory the broker takes on top of what it uses
at start (the interpreter and its code, some 40 MiB): messages, bodies
still arriving, connections, buffers.  Two measures watch it:

* **what the broker counts**, at once, on every message: each queue adds a
  message's cost when it takes the message (its body, its header and what
  its objects take: :data:`~.message.MESSAGE_OVERHEAD`) and subtracts it
  when the message leaves for good (:meth:`Queue.settle`); the channels add
  the bodies still arriving, frame by frame.  Above ``high`` (the
  watermark) the alarm goes on;
* **the resident memory** of the process, sampled a few times a second by
  the process wiring (:meth:`observe_resident`), as RabbitMQ watches its own:
  whatever the counting misses (many connections, fragmentation) raises the
  alarm once the process has grown by more than the watermark and a slack
  for what it grows by on its own (5%, at least 16 MiB).

During the alarm, publishers (:class:`~.ports.Publisher`: the connections
that publish) get ``connection.blocked`` and are no longer read from; they
get ``connection.unblocked`` and are read again once the counted memory is
below ``low`` (80% of the watermark) and the process back within bounds.
Connections that only consume are never blocked: their acks free memory.

The bodies of messages that left are freed, but the C allocator keeps the
pages for reuse: after a large backlog drains the broker would go on holding
its peak size. Every few seconds, once enough message bytes have left since
the last look, the monitor asks glibc to hand free pages back
(``malloc_trim``; nothing happens where the C library has no such call).
Memory that still does not go back (fragmented) does not keep the alarm on
forever: once the counted memory is low, the resident measure raises the
alarm again only when the process grows past what it held then.
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
#: What the process may grow by on its own before the resident measure fires.
RESIDENT_SLACK = 16 << 20
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
        #: Bytes counted for the messages held and the bodies arriving.
        self.held = 0
        #: The most ``held`` has been since memory was last trimmed.
        self.peak = 0
        #: The memory publishers must not make the broker take.
        self.watermark = high_watermark
        #: ``held`` above this raises the alarm, below ``low`` it may clear.
        self.high = high_watermark
        self.low = int(high_watermark * LOW_RATIO)
        self.alarm = False
        #: What the process used at start besides counted messages.
        self.base = 0
        #: The last resident-memory sample (0: none yet).
        self.resident = 0
        #: How far the process may grow before the resident measure fires.
        self.resident_limit = high_watermark + max(RESIDENT_SLACK, high_watermark // 20)
        #: After fragmented memory would not go back: fire only above this.
        self._resident_floor = 0
        self._resident_cause = False
        #: Publishers blocked by the alarm (throttled as by a queue's flow control).
        self.throttled: set[Publisher] = set()
        self._trim_timer: TimerHandle | None = None

    def set_base(self, base: int) -> None:
        """The process uses ``base`` bytes besides the messages it counts."""
        self.base = max(0, base)

    def observe_resident(self, resident: int) -> None:
        """A sample of the process's resident memory, in bytes."""
        self.resident = resident
        grown = resident - self.base
        if grown <= self.resident_limit:
            self._resident_floor = 0
        if not self.alarm:
            if grown > max(self.resident_limit, self._resident_floor):
                self._resident_cause = True
                self._raise(f'resident memory {resident >> 20} MiB, {grown >> 20} MiB more '
                            f'than at start, above the watermark {self.watermark >> 20} MiB')
            return
        if self._resident_cause and self.held < self.low and grown > self.resident_limit:
            # Counted memory is low but the process holds on to its pages
            # (fragmentation): let publishers go on, and raise the alarm
            # again only if the process grows from here.
            if _malloc_trim is not None:
                _malloc_trim(0)
            self._resident_floor = grown + grown // 20
            log.warning('memory alarm: the process stays %d MiB larger than at start with '
                        '%d MiB counted for messages; publishers unblocked, alarm again '
                        'past %d MiB', grown >> 20, self.held >> 20,
                        self._resident_floor >> 20)
            self._clear()
            return
        self.check()

    def check(self) -> None:
        """Raise or clear the alarm after ``held`` moved past a watermark."""
        if not self.alarm:
            if self.held > self.high:
                self._resident_cause = False
                self._raise(f'{self.held} bytes counted for messages, above the high '
                            f'watermark {self.high}')
        elif self.held < self.low and (
                not self._resident_cause
                or self.resident - self.base <= self.resident_limit):
            self._clear()

    def _raise(self, why: str) -> None:
        self.alarm = True
        log.warning('memory alarm: %s; blocking publishers', why)

    def _clear(self) -> None:
        self.alarm = False
        log.warning('memory alarm cleared: %d bytes counted for messages, resident memory '
                    '%d MiB', self.held, self.resident >> 20)
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

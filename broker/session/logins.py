"""Failed logins, per source address: each costs the client a growing delay.

A refused login is answered (or the connection dropped) only after a delay
that doubles with every failure from the same address (from ``BASE`` up to
``MOST`` seconds); the delay holds only that connection, never the loop, so
a correct login from elsewhere is not slowed.  An address is forgotten after
``WINDOW`` seconds without a failure, and at most ``ADDRESSES`` addresses
are remembered (the least recent goes first): memory stays bounded whoever
connects.  The broker logs who failed, from where and how often; never a
password.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

BASE = 0.1
MOST = 5.0
WINDOW = 60.0
ADDRESSES = 4096


class LoginFailures:
    def __init__(self, clock: Callable[[], float] = time.monotonic, base: float = BASE,
                 most: float = MOST, window: float = WINDOW,
                 addresses: int = ADDRESSES) -> None:
        self._clock = clock
        self.base = base
        self.most = most
        self.window = window
        self.addresses = addresses
        #: address -> (failures in a row, time of the last one), least recent first
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def failed(self, address: str) -> tuple[int, float]:
        """A login from ``address`` failed: (its failures so far, the delay to apply)."""
        now = self._clock()
        count, last = self._seen.pop(address, (0, now))
        if now - last > self.window:
            count = 0
        count += 1
        self._seen[address] = (count, now)
        while len(self._seen) > self.addresses:
            self._seen.popitem(last=False)
        return count, min(self.base * 2 ** (count - 1), self.most)

    def failures(self, address: str) -> int:
        """Failures from ``address`` within the window."""
        count, last = self._seen.get(address, (0, 0.0))
        return count if self._clock() - last <= self.window else 0


def worth_logging(count: int) -> bool:
    """The first ten failures from an address, then every power of two."""
    return count <= 10 or count & (count - 1) == 0

"""What the log says about connections, as RabbitMQ says it, and no more.

Three lines per connection at most, at ``info`` (``warning`` when the broker
refused the client): accepted (peer -> listener), the user authenticated and
granted access to a vhost, and closed, with the reason and how long the
connection lasted.  Bad input before or after login is one line: the close,
whose reason says what was wrong (never a traceback).

A client address that opens connections faster than anyone reads logs
cannot flood them: each address has a budget of :data:`BURST` lines that
refills at :data:`RATE` lines a second; lines past it are counted, and one
summary per address is written every :data:`SUMMARY_EVERY` seconds while
they go on (``127.0.0.1: 1234 more lines about its connections not logged in
the last 10 s; the last: closing ...``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import Connection

log = logging.getLogger('leveret.connection')

#: Lines about one address's connections logged in a burst ...
BURST = 50
#: ... and per second after it.
RATE = 5.0
#: Seconds between summaries of the lines not logged.
SUMMARY_EVERY = 10.0
#: Addresses tracked before full budgets are forgotten.
_TRACKED = 10_000


class _Budget:
    __slots__ = ('tokens', 'when', 'skipped', 'last', 'timer')

    def __init__(self, now: float) -> None:
        self.tokens = float(BURST)
        self.when = now
        self.skipped = 0
        self.last = ''
        self.timer: asyncio.TimerHandle | None = None


class ConnectionLog:
    def __init__(self) -> None:
        self._budgets: dict[str, _Budget] = {}

    # --- the three lines --------------------------------------------------------
    def accepted(self, conn: Connection) -> None:
        self._write(conn, logging.INFO, f'accepting AMQP connection {conn.peer} -> '
                                        f'{conn.listener}')

    def opened(self, conn: Connection) -> None:
        self._write(conn, logging.INFO,
                    f'connection {conn.peer} -> {conn.listener}: user {conn.username!r} '
                    f'authenticated and granted access to vhost {conn.vhost.name!r}')

    def closed(self, conn: Connection) -> None:
        who = f"vhost {conn.vhost.name!r}, user {conn.username!r}, " if conn.vhost else (
            f'user {conn.username!r}, ' if conn.username else '')
        duration = time.monotonic() - conn.started_at
        reason, level = conn.close_reason or ('closed', logging.INFO)
        self._write(conn, level, f'closing AMQP connection {conn.peer} -> {conn.listener} '
                                 f'({who}{duration:.1f}s): {reason}')

    # --- the budget ---------------------------------------------------------------
    def _write(self, conn: Connection, level: int, line: str) -> None:
        if not log.isEnabledFor(level):
            return
        host = conn.peer.rpartition(':')[0] or conn.peer
        now = time.monotonic()
        budget = self._budgets.get(host)
        if budget is None:
            if len(self._budgets) >= _TRACKED:
                self._forget_idle(now)
            budget = self._budgets[host] = _Budget(now)
        budget.tokens = min(BURST, budget.tokens + (now - budget.when) * RATE)
        budget.when = now
        if budget.tokens >= 1:
            budget.tokens -= 1
            log.log(level, '%s', line)
            return
        budget.skipped += 1
        budget.last = line
        if budget.timer is None:
            budget.timer = asyncio.get_running_loop().call_later(
                SUMMARY_EVERY, self._summarise, host)

    def _summarise(self, host: str) -> None:
        budget = self._budgets.get(host)
        if budget is None:
            return
        budget.timer = None
        if budget.skipped:
            log.warning('%s: %d more lines about its connections not logged in the last %d s; '
                        'the last: %s', host, budget.skipped, SUMMARY_EVERY, budget.last)
            budget.skipped = 0

    def _forget_idle(self, now: float) -> None:
        for host, budget in list(self._budgets.items()):
            if budget.timer is None and budget.tokens + (now - budget.when) * RATE >= BURST:
                del self._budgets[host]

    def flush(self) -> None:
        """Write the pending summaries now (the broker is stopping)."""
        for host, budget in list(self._budgets.items()):
            if budget.timer is not None:
                budget.timer.cancel()
                self._summarise(host)

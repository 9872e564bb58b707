"""Run coroutines from synchronous code: an event loop in a daemon thread.

Web apps call the sync API from request handlers, often in processes that a
server forked from a parent that had already used it. Threads do not
survive ``fork``, so :func:`register_fork_reset` lets owners drop their
loop thread in the child; the child builds a fresh one (and fresh
connections) on first use. The parent's sockets are left untouched in the
child: closing them gracefully from there would close the parent's
connection.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

T = TypeVar('T')


class LoopThread:
    """An event loop running in its own daemon thread."""

    def __init__(self, name: str = 'leveret-client') -> None:
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()
        self._started.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result.

        ``timeout`` is a safety net only: callers bound their coroutines
        themselves and get their own, clearer errors first."""
        if threading.current_thread() is self.thread:
            raise RuntimeError('the sync API cannot be called from its own loop thread')
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError(f'gave up after {timeout}s') from None

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


_fork_resets: weakref.WeakSet[Any] = weakref.WeakSet()
#: Objects of the parent that the child must keep alive and never touch:
#: their finalizers could write to sockets the parent still uses.
_orphans: list[Any] = []


def register_fork_reset(owner: Any) -> None:
    """Call ``owner.after_fork_in_child()`` in every forked child."""
    _fork_resets.add(owner)


def keep_forever(obj: Any) -> None:
    _orphans.append(obj)


def _after_fork_in_child() -> None:
    for owner in list(_fork_resets):
        reset: Callable[[], None] = owner.after_fork_in_child
        reset()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_after_fork_in_child)

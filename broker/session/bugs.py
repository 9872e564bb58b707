"""Logging a bug once: a traceback the first time, one line after.

Client input never reaches here (bad input is refused with a reply code
and one log line); what does is a bug in the broker.  A client that can
trigger one over and over must not be able to flood the log with the same
traceback: each place an exception comes from is logged with its
traceback once, then in one line with a count.
"""

from __future__ import annotations

import logging
import traceback

_seen: dict[tuple[str, str, int], int] = {}


def log_bug(logger: logging.Logger, message: str, exc: BaseException) -> None:
    """Log ``exc`` (raised by a bug) under ``message``."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = (type(exc).__name__, frames[-1].filename, frames[-1].lineno or 0) if frames else (
        type(exc).__name__, '?', 0)
    count = _seen.get(where, 0) + 1
    _seen[where] = count
    if count == 1:
        logger.error('%s', message, exc_info=exc)
    else:
        logger.error('%s: %s: %s (at %s:%d, %d times; traceback logged the first time)',
                     message, type(exc).__name__, exc, where[1], where[2], count)

"""Rate limits per task, with Celery's semantics: one token bucket per task
name (kombu's ``TokenBucket``, the one Celery's consumer uses, capacity 1,
refilled at the task's rate), from the task's ``rate_limit`` (Celery's
``task_annotations`` and ``task_default_rate_limit`` included), changed at
run time by ``control rate_limit``, none at all with
``worker_disable_rate_limits``.

A request whose bucket has no token waits here, in its bucket, until one
comes; the intake raises the prefetch count by one for each waiting request
(as for an eta), so that unlimited tasks keep coming and running meanwhile.
"""

from __future__ import annotations

from typing import Any

from .request import TaskRequest

_PER = {'s': 1.0, 'm': 60.0, 'h': 3600.0}


def parse_rate(rate_limit: Any) -> float:
    """Tasks per second of a Celery rate limit (``'10/m'``, ``'2/s'``, ``5``);
    0 for none. Raises ValueError for an invalid one (as ``celery.utils.time.rate``)."""
    if not rate_limit:
        return 0.0
    if isinstance(rate_limit, str):
        ops, _, modifier = rate_limit.partition('/')
        if (modifier or 's') not in _PER:
            raise ValueError(f'unknown rate unit {modifier!r} (s, m or h)')
        return float(ops) / _PER[modifier or 's']
    return float(rate_limit)


def bucket_for(rate_limit: Any) -> Any:
    """Celery's ``Consumer.bucket_for_task``: a TokenBucket, or None without a limit."""
    fill_rate = parse_rate(rate_limit)
    if not fill_rate:
        return None
    from kombu.utils.limits import TokenBucket
    return TokenBucket(fill_rate, capacity=1)


class RateLimits:
    """The buckets by task name, and the requests waiting in them."""

    def __init__(self, limits: dict[str, str | None], disabled: bool = False) -> None:
        self.disabled = disabled
        self.buckets: dict[str, Any] = {}
        if not disabled:
            for name, limit in limits.items():
                bucket = bucket_for(limit)
                if bucket is not None:
                    self.buckets[name] = bucket

    def set(self, name: str, rate_limit: Any) -> list[TaskRequest]:
        """A new limit for ``name`` (raises ValueError if invalid); the requests
        that waited in its old bucket, for the caller to admit again."""
        parse_rate(rate_limit)
        old = self.buckets.pop(name, None)
        waiting = list(old.contents) if old is not None else []
        if not self.disabled:
            bucket = bucket_for(rate_limit)
            if bucket is not None:
                self.buckets[name] = bucket
        return waiting

    def waiting(self) -> list[TaskRequest]:
        return [request for bucket in self.buckets.values() for request in bucket.contents]

    def clear(self) -> list[TaskRequest]:
        """Let go of every waiting request (a warm shutdown, a reconnect)."""
        waiting = self.waiting()
        for bucket in self.buckets.values():
            bucket.clear_pending()
        return waiting

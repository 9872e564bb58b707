"""Exceptions of the client and the worker.

Exceptions that Celery also has carry Celery's wire names
(``wire_module``/``__name__``), so a failure reported by the Leveret worker
turns into the matching Celery exception in a Celery client, and the other
way round.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, ClassVar


class LeveretError(Exception):
    """Base class of the client's own errors."""


# --- producing ----------------------------------------------------------------
class PublishError(LeveretError):
    """A task message could not be handed to the broker."""


class BrokerUnavailable(PublishError):
    """No connection to the broker could be made within the timeout."""


class PublishTimeout(PublishError):
    """The broker did not confirm a publish within the timeout (for instance
    because it has blocked the connection). The message may still arrive."""


# --- results ------------------------------------------------------------------
class TimeoutError(LeveretError, builtins.TimeoutError):  # noqa: A001 - as Celery's
    """The result was not ready within the timeout given to ``get``."""


class RemoteError(Exception):
    """Base of the classes made up for remote exceptions whose type is not
    importable here (their ``__name__`` and ``__module__`` are the remote ones)."""


# --- task control flow (shared with Celery by name) ---------------------------
class CeleryNamed(Exception):
    """An exception that Celery knows under ``wire_module.__name__``."""

    wire_module: ClassVar[str] = 'celery.exceptions'


class Retry(CeleryNamed):
    """Raised by ``Task.retry``: the task goes back to its queue.

    ``when`` is the countdown (seconds) or the eta; ``message`` holds what
    the worker needs to republish the task (set by ``Task.retry``)."""

    def __init__(self, message: str | None = None, exc: BaseException | None = None,
                 when: float | datetime | None = None, **kwargs: Any) -> None:
        self.message = message
        self.exc = exc
        self.when = when
        self.retry_args: tuple[Any, ...] | None = kwargs.pop('retry_args', None)
        self.retry_kwargs: dict[str, Any] | None = kwargs.pop('retry_kwargs', None)
        self.retry_eta: datetime | None = kwargs.pop('retry_eta', None)
        self.retry_options: dict[str, Any] = kwargs.pop('retry_options', None) or {}
        super().__init__(message, exc, when)

    def humanize(self) -> str:
        if isinstance(self.when, int | float):
            return f'in {self.when}s'
        return f'at {self.when}'

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.exc is not None:
            return f'Retry {self.humanize()}: {self.exc!r}'
        return f'Retry {self.humanize()}'


class Reject(CeleryNamed):
    """Raised by a task to reject its message (``requeue`` puts it back)."""

    def __init__(self, reason: Any = None, requeue: bool = False) -> None:
        self.reason = reason
        self.requeue = requeue
        super().__init__(reason, requeue)


class Ignore(CeleryNamed):
    """Raised by a task so that no state is recorded for it."""


class MaxRetriesExceededError(CeleryNamed):
    """The task asked to be retried once more than its ``max_retries``."""


class NotRegistered(CeleryNamed, KeyError):
    """The worker has no task of that name."""


class TaskRevokedError(CeleryNamed):
    """The task was revoked or had expired before it could run."""


class SoftTimeLimitExceeded(CeleryNamed):
    """Raised inside a task when its soft time limit is reached."""

    wire_module = 'billiard.exceptions'


class TimeLimitExceeded(CeleryNamed):
    """The task ran past its hard time limit and its process was replaced."""

    wire_module = 'billiard.exceptions'


class WorkerLostError(CeleryNamed):
    """The process running the task exited before the task finished."""

    wire_module = 'billiard.exceptions'


class EncodeError(CeleryNamed):
    """A task's return value cannot be serialized (JSON)."""

    wire_module = 'kombu.exceptions'


#: Celery's (module, name) -> our class, for decoding remote failures.
KNOWN_REMOTE: dict[tuple[str, str], type[BaseException]] = {
    (cls.wire_module, cls.__name__): cls
    for cls in (Retry, Reject, Ignore, MaxRetriesExceededError, NotRegistered,
                TaskRevokedError, SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError,
                EncodeError)
}
# Celery re-exports the billiard ones from celery.exceptions.
for _cls in (SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError):
    KNOWN_REMOTE[('celery.exceptions', _cls.__name__)] = _cls

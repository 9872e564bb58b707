"""Celery-protocol client and worker for Leveret (or any AMQP 0-9-1 broker).

``from leveret.client import App``: define and send tasks, read their results in
the ``rpc://`` format; ``leveret worker -A module`` runs them.
"""

from . import states
from .app import App, Task, current_app
from .errors import (
    BrokerUnavailable,
    Ignore,
    MaxRetriesExceededError,
    NotRegistered,
    PublishError,
    PublishTimeout,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
    TimeoutError,
    WorkerLostError,
)
from .result import AsyncResult

__all__ = [
    'App', 'AsyncResult', 'BrokerUnavailable', 'Ignore', 'MaxRetriesExceededError',
    'NotRegistered', 'PublishError', 'PublishTimeout', 'Reject', 'Retry',
    'SoftTimeLimitExceeded', 'Task', 'TaskRevokedError', 'TimeLimitExceeded', 'TimeoutError',
    'WorkerLostError', 'current_app', 'states',
]

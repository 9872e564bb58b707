"""The settings of one ``leveret worker`` run, resolved from the command
line and the app's configuration (Leveret or Celery)."""

from __future__ import annotations

import os
import socket
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PoolName = Literal['prefork', 'threads', 'asyncio', 'solo']


def expand_hostname(template: str) -> str:
    """Celery's node name templates: ``%h`` host, ``%n`` its first label, ``%d`` the domain."""
    host = socket.gethostname()
    name, _, domain = host.partition('.')
    return template.replace('%h', host).replace('%n', name).replace('%d', domain) \
        .replace('%p', str(os.getpid()))


class WorkerOptions(BaseModel):
    model_config = ConfigDict(extra='forbid')

    broker_url: str
    queues: list[str] = Field(default_factory=lambda: ['celery'], min_length=1)
    pool: PoolName = 'prefork'
    concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    hostname: str = Field(default_factory=lambda: expand_hostname('leveret@%h'))
    prefetch_multiplier: int = Field(4, ge=0)
    #: Send task events (``-E``); worker heartbeats are always sent.
    task_events: bool = False
    #: Defaults for tasks that set no limit of their own, seconds.
    time_limit: float | None = Field(None, gt=0)
    soft_time_limit: float | None = Field(None, gt=0)
    #: On SIGTERM: how long running tasks may take to finish.
    shutdown_timeout: float = Field(30.0, ge=0)
    queue_arguments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Where tasks sent by the worker (chains, callbacks) go when they name no queue.
    default_queue: str = 'celery'
    app_name: str = ''
    #: ``--autoscale=MAX,MIN``: the pool grows and shrinks between these (None: fixed).
    autoscale: tuple[int, int] | None = None
    #: ``--max-tasks-per-child``, ``--max-memory-per-child`` (KiB): a prefork process
    #: past either is replaced after its task.
    max_tasks_per_child: int | None = Field(None, ge=1)
    max_memory_per_child: int | None = Field(None, ge=1)
    #: Worker heartbeat events (``--without-heartbeat``, ``--heartbeat-interval``).
    heartbeat: bool = True
    heartbeat_interval: float = Field(2.0, gt=0)
    #: ``worker_disable_rate_limits``.
    disable_rate_limits: bool = False
    #: ``-B``: run the app's beat schedule in the worker.
    beat: bool = False
    schedule_filename: str = 'celerybeat-schedule'
    scheduler: str | None = None
    #: ``--purge``: discard the waiting messages of the queues before starting.
    purge: bool = False
    #: ``--without-mingle``: no sync of revoked ids with the other workers at start.
    mingle: bool = True
    #: Celery's ``broker_use_ssl`` (True, py-amqp's options, or an SSLContext).
    broker_use_ssl: Any = None

    @property
    def prefetch_count(self) -> int:
        """Messages in flight: concurrency x multiplier (0: unlimited)."""
        return self.concurrency * self.prefetch_multiplier

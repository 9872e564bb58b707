"""A task message as the worker holds it, from delivery to outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..protocol import TaskMessage
from .tasks import TaskSpec


@dataclass(eq=False, slots=True)
class TaskRequest:
    message: TaskMessage
    #: The headers table as delivered (Celery's ``request.headers`` view).
    raw_headers: dict[str, Any]
    spec: TaskSpec
    delivery_tag: int
    #: The consumer connection it came on (acks go there); stale after a reconnect.
    channel: Any
    exchange: str
    routing_key: str
    redelivered: bool
    received: float = field(default_factory=time.time)
    job_id: int = 0
    time_start: float | None = None
    acknowledged: bool = False
    worker_pid: int | None = None
    eta_handle: Any = None

    @property
    def id(self) -> str:
        return self.message.headers.id

    @property
    def name(self) -> str:
        return self.message.headers.task

    @property
    def reply_to(self) -> str:
        return self.message.properties.reply_to

    @property
    def eta(self) -> datetime | None:
        return self.message.eta

    @property
    def expires(self) -> datetime | None:
        return self.message.expires

    @property
    def ignore_result(self) -> bool:
        return bool(self.spec.ignore_result or self.message.headers.ignore_result)

    @property
    def wants_result(self) -> bool:
        return bool(self.reply_to) and not self.ignore_result

    @property
    def time_limits(self) -> tuple[float | None, float | None]:
        """(hard, soft) seconds: the message's, else the task's."""
        hard, soft = (list(self.message.headers.timelimit) + [None, None])[:2]
        return hard or self.spec.time_limit, soft or self.spec.soft_time_limit

    @property
    def delivery_info(self) -> dict[str, Any]:
        return {'exchange': self.exchange, 'routing_key': self.routing_key,
                'priority': self.message.properties.priority, 'redelivered': self.redelivered}

    def info(self, hostname: str) -> dict[str, Any]:
        """Celery's ``Request.info()``, for ``inspect active/reserved/scheduled``."""
        headers = self.message.headers
        return {
            'id': self.id, 'name': self.name, 'args': self.message.args,
            'kwargs': self.message.kwargs, 'type': self.name, 'hostname': hostname,
            'time_start': self.time_start, 'acknowledged': self.acknowledged,
            'delivery_info': self.delivery_info, 'worker_pid': self.worker_pid,
            'argsrepr': headers.argsrepr, 'kwargsrepr': headers.kwargsrepr,
        }

"""The settings of an :class:`~leveret.client.App`, named as Celery names them."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .transport import DEFAULT_URL


def _default_broker_url() -> str:
    return os.environ.get('LEVERET_BROKER_URL') or DEFAULT_URL


class Settings(BaseModel):
    model_config = ConfigDict(extra='forbid', validate_assignment=True)

    broker_url: str = Field(default_factory=_default_broker_url)
    #: TLS as Celery's setting has it: True, py-amqp's options as a dict, or an
    #: ``ssl.SSLContext`` (an ``amqps://`` URL alone works too: see :mod:`.tls`).
    broker_use_ssl: Any = None
    #: Queue for tasks that name none (Celery's ``task_default_queue``).
    task_default_queue: str = 'celery'
    #: Longest wait for connecting to the broker and having a publish
    #: confirmed; past it the publish raises instead of hanging.
    publish_timeout: float = Field(10.0, gt=0)
    #: Wait for the broker's confirm of each task message.
    confirm_publish: bool = True
    #: Seconds an unused reply queue lives (``x-expires``; Celery's ``result_expires``).
    result_expires: float = Field(86400.0, gt=0)
    #: Arguments of task queues by name (for example ``{'celery': {'x-max-priority': 10}}``).
    task_queue_arguments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    task_default_priority: int | None = Field(None, ge=0, le=255)
    #: 2: persistent task messages, 1: transient.
    task_default_delivery_mode: int = Field(2, ge=1, le=2)
    task_acks_late: bool = False
    task_reject_on_worker_lost: bool = False
    task_track_started: bool = False
    task_ignore_result: bool = False
    task_time_limit: float | None = Field(None, gt=0)
    task_soft_time_limit: float | None = Field(None, gt=0)
    #: Retries of ``self.retry()`` before MaxRetriesExceededError, and the default countdown.
    task_max_retries: int | None = 3
    task_default_retry_delay: float = 180.0
    worker_prefetch_multiplier: int = Field(4, ge=0)
    worker_concurrency: int | None = Field(None, ge=1)
    worker_send_task_events: bool = False

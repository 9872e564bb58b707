"""The request a task runs for (``self.request`` in a bound task).

Kept in a context variable, so that threads of the threads pool and
coroutines of the asyncio pool each see their own.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Request:
    id: str | None = None
    task: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    eta: datetime | None = None
    expires: datetime | None = None
    root_id: str | None = None
    parent_id: str | None = None
    group: str | None = None
    reply_to: str | None = None
    correlation_id: str | None = None
    hostname: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    #: exchange, routing_key, priority, redelivered of the delivery.
    delivery_info: dict[str, Any] = field(default_factory=dict)
    timelimit: tuple[float | None, float | None] = (None, None)
    ignore_result: bool = False
    #: True when the task function was called as a plain function.
    called_directly: bool = True
    #: A ``retry(throw=False)`` the worker must carry out when the task returns.
    pending_retry: Any = None


current_request: ContextVar[Request | None] = ContextVar('leveret_current_request', default=None)

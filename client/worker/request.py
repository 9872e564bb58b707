"""A task message as the worker holds it, from delivery to outcome.

The worker acts on a few fields of a message: its id, task name, eta,
expiry, time limits, ignore_result, reply queue, correlation id and
priority. A request carries those; the whole message (:attr:`message`, a
validated :class:`TaskMessage`) is read when first needed. For the prefork
pool the main process reads only those fields (:func:`scan_headers`) and a
pool process reads the rest (:class:`~.execute.RawMessage`): decoding the
whole headers table and validating it was most of the main process's work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..messages import TaskMessage, parse_iso
from .delivery import MALFORMED, Delivery, Properties, Wanted, decode_table, scan_table
from .execute import RawMessage
from .tasks import TaskSpec

#: The headers the main process reads (raw key -> name).
HOT_HEADERS = Wanted({b'task': 'task', b'id': 'id', b'eta': 'eta', b'expires': 'expires',
                      b'timelimit': 'timelimit', b'ignore_result': 'ignore_result'})


def scan_headers(table: bytes) -> dict[str, Any] | None:
    """The :data:`HOT_HEADERS` of a protocol v2 task message, if they have
    the types validation leaves unchanged; otherwise None: the message is to
    be read whole (protocol v1, other types, a malformed table)."""
    try:
        hot = scan_table(table, HOT_HEADERS)
    except MALFORMED:
        return None
    if type(hot.get('task')) is not str or type(hot.get('id')) is not str:
        return None
    for name in ('eta', 'expires'):
        value = hot.get(name)
        if value is not None and type(value) is not str:
            return None
    limits = hot.get('timelimit')
    if limits is not None and (type(limits) is not list or any(
            limit is not None and type(limit) not in (int, float) for limit in limits)):
        return None
    ignore = hot.get('ignore_result')
    if ignore is not None and type(ignore) is not bool:
        return None
    return hot


def wire_properties(props: Properties) -> dict[str, Any]:
    """The properties :meth:`TaskMessage.from_wire` reads."""
    return {'content_type': props.content_type, 'content_encoding': props.content_encoding,
            'correlation_id': props.correlation_id, 'reply_to': props.reply_to,
            'priority': props.priority, 'delivery_mode': props.delivery_mode,
            'expiration': props.expiration}


@dataclass(eq=False, slots=True)
class TaskRequest:
    id: str
    name: str
    spec: TaskSpec
    delivery_tag: int
    #: The consumer connection it came on (acks go there); stale after a reconnect.
    channel: Any
    exchange: str
    routing_key: str
    redelivered: bool
    reply_to: str
    correlation_id: str
    #: As delivered (None when the message has none, as Celery reports it).
    priority: int | None
    #: The eta and expires headers, as sent.
    eta_text: str | None
    expires_text: str | None
    timelimit: list[Any]
    header_ignore_result: bool | None
    #: The headers table as delivered (Celery's ``request.headers`` view), once read.
    raw_headers: dict[str, Any] | None = None
    #: The message as delivered, while nobody here has read it whole.
    raw: RawMessage | None = None
    _message: TaskMessage | None = None
    received: float = field(default_factory=time.time)
    job_id: int = 0
    time_start: float | None = None
    acknowledged: bool = False
    worker_pid: int | None = None
    eta_handle: Any = None

    @classmethod
    def read(cls, message: TaskMessage, raw_headers: dict[str, Any], spec: TaskSpec,
             delivery: Delivery, channel: Any) -> TaskRequest:
        """A request for a message read and validated here."""
        headers, props = message.headers, message.properties
        return cls(headers.id, headers.task, spec, delivery.delivery_tag, channel,
                   delivery.exchange, delivery.routing_key, delivery.redelivered,
                   props.reply_to, props.correlation_id, delivery.properties.priority
                   if delivery.properties is not None else props.priority, headers.eta,
                   headers.expires, headers.timelimit, headers.ignore_result,
                   raw_headers=raw_headers, _message=message)

    @classmethod
    def unread(cls, hot: dict[str, Any], props: Properties, spec: TaskSpec,
               delivery: Delivery, channel: Any) -> TaskRequest:
        """A request for a message of which only ``hot`` (see :func:`scan_headers`)
        was read; the rest is left to whoever needs it."""
        assert props.headers_raw is not None
        task_id = hot['id']
        correlation_id = props.correlation_id
        raw = RawMessage(props.headers_raw, delivery.body, wire_properties(props))
        return cls(task_id, hot['task'], spec, delivery.delivery_tag, channel,
                   delivery.exchange, delivery.routing_key, delivery.redelivered,
                   props.reply_to if props.reply_to is not None else '',
                   correlation_id if correlation_id is not None else task_id,
                   props.priority, hot.get('eta'),
                   hot.get('expires'), hot.get('timelimit') or [None, None],
                   hot.get('ignore_result', False), raw=raw)

    @property
    def message(self) -> TaskMessage:
        """The whole message, validated (read on first use; raises if invalid)."""
        if self._message is None:
            raw = self.raw
            assert raw is not None
            headers = decode_table(raw.headers, 0)[0]
            self._message = TaskMessage.from_wire(headers, raw.properties, raw.body)
            self.raw_headers = headers
        return self._message

    @property
    def eta(self) -> datetime | None:
        return parse_iso(self.eta_text)

    @property
    def expires(self) -> datetime | None:
        return parse_iso(self.expires_text)

    @property
    def ignore_result(self) -> bool:
        return bool(self.spec.ignore_result or self.header_ignore_result)

    @property
    def wants_result(self) -> bool:
        """Whether a result goes to the caller's reply queue in the rpc:// format
        (the app's backend stores the results of traced tasks)."""
        return bool(self.reply_to) and not self.ignore_result and not self.spec.traced

    @property
    def store_errors(self) -> bool:
        """Celery's ``Request.store_errors``: failures are stored unless the result is ignored."""
        return not self.ignore_result or self.spec.store_errors_even_if_ignored

    @property
    def time_limits(self) -> tuple[float | None, float | None]:
        """(hard, soft) seconds: the message's, else the task's."""
        hard, soft = (list(self.timelimit) + [None, None])[:2]
        return hard or self.spec.time_limit, soft or self.spec.soft_time_limit

    @property
    def delivery_info(self) -> dict[str, Any]:
        return {'exchange': self.exchange, 'routing_key': self.routing_key,
                'priority': self.priority, 'redelivered': self.redelivered}

    def info(self, hostname: str, safe: bool = False) -> dict[str, Any]:
        """Celery's ``Request.info(safe)``, for ``inspect active/reserved/scheduled``
        (``safe``: the args' and kwargs' reprs instead of the values)."""
        try:
            message: TaskMessage | None = self.message
        except Exception:  # noqa: BLE001 - not valid: the pool process rejects it
            message = None
        if message is None:
            args, kwargs = None, None
        elif safe:
            args, kwargs = message.headers.argsrepr, message.headers.kwargsrepr
        else:
            args, kwargs = message.args, message.kwargs
        return {
            'id': self.id, 'name': self.name, 'args': args, 'kwargs': kwargs,
            'type': self.name, 'hostname': hostname,
            'time_start': self.time_start, 'acknowledged': self.acknowledged,
            'delivery_info': self.delivery_info, 'worker_pid': self.worker_pid,
        }

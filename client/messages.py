"""Celery's messages (its task and result message protocol) as pydantic models;
the AMQP wire format beneath them is :mod:`leveret.protocol`.

* Task messages, protocol v2: the task's metadata in the AMQP headers
  table, the body a JSON list ``[args, kwargs, embed]``. Protocol v1 (the
  whole request in a JSON body, empty headers) is read too.
* Results in the format of Celery's ``rpc://`` backend: a JSON body
  ``{"status", "result", "traceback", "children", "date_done", "task_id"}``
  sent to the caller's reply queue with ``correlation_id`` = task id.

Field order is Celery's: headers tables and JSON objects are encoded in
insertion order, so the models dump what Celery sends (see
``celery/app/amqp.py:as_task_v2`` and ``celery/backends/rpc.py``).
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import errors, serialization, states
from .serialization import JSON, UTF8

#: Celery truncates ``argsrepr``/``kwargsrepr`` to this many characters.
REPR_MAXSIZE = 1024

PERSISTENT = 2
TRANSIENT = 1


def new_id() -> str:
    return str(uuid.uuid4())


def anon_nodename() -> str:
    """The ``origin`` of a message sent outside a worker, as Celery names it."""
    return f'gen{os.getpid()}@{socket.gethostname()}'


def utcnow() -> datetime:
    return datetime.now(UTC)


def saferepr(value: Any, maxsize: int = REPR_MAXSIZE) -> str:
    text = repr(value)
    return text if len(text) <= maxsize else text[:maxsize - 3] + '...'


def parse_iso(value: str | None) -> datetime | None:
    """An ISO-8601 time from a message; naive times are UTC (Celery's default)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _no_limits() -> list[int | float | None]:
    return [None, None]


# --- task messages ------------------------------------------------------------
class TaskHeaders(BaseModel):
    """The headers table of a protocol v2 task message, in Celery's order.

    Unknown headers (``apply_async(headers=...)``, beat's
    ``celery_beat_task``) are kept, after the standard ones."""

    model_config = ConfigDict(extra='allow')

    lang: str = 'py'
    task: str
    id: str
    shadow: str | None = None
    eta: str | None = None
    expires: str | None = None
    group: str | None = None
    group_index: int | None = None
    retries: int = 0
    timelimit: list[int | float | None] = Field(default_factory=lambda: _no_limits())
    root_id: str | None = None
    parent_id: str | None = None
    argsrepr: str | None = None
    kwargsrepr: str | None = None
    origin: str | None = None
    ignore_result: bool | None = False
    replaced_task_nesting: int = 0
    stamped_headers: list[str] | None = None
    stamps: dict[str, Any] = Field(default_factory=dict)


class TaskProperties(BaseModel):
    """The AMQP properties of a task message."""

    content_type: str = JSON
    content_encoding: str = UTF8
    delivery_mode: int = PERSISTENT
    priority: int = 0
    correlation_id: str
    reply_to: str = ''
    expiration: str | None = None


_PROPERTY_FIELDS = frozenset(TaskProperties.model_fields)


class TaskEmbed(BaseModel):
    """The third element of a v2 body: canvas links carried with the task."""

    callbacks: list[Any] | None = None
    errbacks: list[Any] | None = None
    chain: list[Any] | None = None
    chord: Any = None


class TaskMessage(BaseModel):
    """A task message: properties, headers and the ``[args, kwargs, embed]`` body."""

    properties: TaskProperties
    headers: TaskHeaders
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    embed: TaskEmbed = Field(default_factory=TaskEmbed)
    #: The protocol version the message was read from (always written as 2).
    protocol: Literal[1, 2] = 2

    @property
    def id(self) -> str:
        return self.headers.id

    @property
    def name(self) -> str:
        return self.headers.task

    @property
    def eta(self) -> datetime | None:
        return parse_iso(self.headers.eta)

    @property
    def expires(self) -> datetime | None:
        return parse_iso(self.headers.expires)

    def body(self) -> bytes:
        return serialization.dumps([self.args, self.kwargs, self.embed.model_dump()])

    def header_table(self) -> dict[str, Any]:
        return self.headers.model_dump()

    @classmethod
    def from_wire(cls, headers: dict[str, Any] | None, properties: dict[str, Any],
                  body: bytes) -> TaskMessage:
        """Read a delivered task message of protocol v2 or v1."""
        decoded = serialization.decode_body(
            body, properties.get('content_type'), properties.get('content_encoding'))
        return cls._from_decoded(headers, properties, decoded)

    @classmethod
    def read_parts(cls, headers: dict[str, Any] | None, properties: dict[str, Any],
                   body: bytes) -> tuple[str, list[Any], dict[str, Any], dict[str, Any]]:
        """The task name, args, kwargs and embed (as ``embed.model_dump()``
        gives it) of a delivered message, which must be valid as for
        :meth:`from_wire` (it raises the same way).

        For the pool process, which needs only these: a message whose values
        all have the types the models declare (what Celery and Leveret send)
        is checked by :func:`_plainly_valid` rather than validated by pydantic,
        a third of a pool process's time per task for a short one. Any
        other message goes through :meth:`from_wire`."""
        decoded = serialization.decode_body(
            body, properties.get('content_type'), properties.get('content_encoding'))
        if headers and 'task' in headers:
            args, kwargs, embed = decoded
            if _plainly_valid(headers, properties, args, kwargs, embed):
                embed = embed or {}
                return headers['task'], args, kwargs, {k: embed.get(k) for k in _EMBED_FIELDS}
        message = cls._from_decoded(headers, properties, decoded)
        return message.name, message.args, message.kwargs, message.embed.model_dump()

    @classmethod
    def _from_decoded(cls, headers: dict[str, Any] | None, properties: dict[str, Any],
                      decoded: Any) -> TaskMessage:
        props = {k: v for k, v in properties.items()
                 if k in _PROPERTY_FIELDS and v is not None}
        headers = headers or {}
        if 'task' in headers:
            args, kwargs, embed = decoded
            if 'correlation_id' not in props:
                props['correlation_id'] = headers.get('id')
            # One validation for the whole message (nested models included).
            return cls.model_validate({'properties': props, 'headers': headers, 'args': args,
                                       'kwargs': kwargs, 'embed': embed or {}})
        return cls._from_v1(decoded, props)

    @classmethod
    def _from_v1(cls, body: dict[str, Any], props: dict[str, Any]) -> TaskMessage:
        if not isinstance(body, dict) or 'task' not in body:
            raise ValueError('not a Celery task message (no task name in headers or body)')
        task_id = body['id']
        args, kwargs = list(body.get('args') or ()), body.get('kwargs') or {}
        timelimit = list(body.get('timelimit') or (None, None))
        group = body.get('group') or body.get('taskset')
        headers = TaskHeaders(
            task=body['task'], id=task_id, eta=body.get('eta'), expires=body.get('expires'),
            group=group, retries=body.get('retries') or 0, timelimit=timelimit,
            root_id=task_id, argsrepr=saferepr(args), kwargsrepr=saferepr(kwargs))
        props.setdefault('correlation_id', task_id)
        embed = TaskEmbed(callbacks=body.get('callbacks'), errbacks=body.get('errbacks'),
                          chord=body.get('chord'))
        return cls(properties=TaskProperties.model_validate(props), headers=headers,
                   args=args, kwargs=kwargs, embed=embed, protocol=1)


_NONE = type(None)
_OPTIONAL_STR = (str, _NONE)
#: The exact types :func:`_plainly_valid` accepts for each field of the models
#: (``_LIST_OF`` and dict fields are checked item by item): only values that
#: pydantic takes as they are. tests/client/test_messages.py checks that each
#: model's fields are all here.
_LIST_OF: dict[str, tuple[type, ...]] = {
    'timelimit': (int, float, _NONE), 'stamped_headers': (str,)}
_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    'lang': (str,), 'task': (str,), 'id': (str,), 'shadow': _OPTIONAL_STR,
    'eta': _OPTIONAL_STR, 'expires': _OPTIONAL_STR, 'group': _OPTIONAL_STR,
    'group_index': (int, _NONE), 'retries': (int,), 'timelimit': (list,),
    'root_id': _OPTIONAL_STR, 'parent_id': _OPTIONAL_STR, 'argsrepr': _OPTIONAL_STR,
    'kwargsrepr': _OPTIONAL_STR, 'origin': _OPTIONAL_STR, 'ignore_result': (bool, _NONE),
    'replaced_task_nesting': (int,), 'stamped_headers': (list, _NONE), 'stamps': (dict,)}
#: None stands for absent here (from_wire leaves out properties that are None).
_PROPERTY_TYPES: dict[str, tuple[type, ...]] = {
    'content_type': _OPTIONAL_STR, 'content_encoding': _OPTIONAL_STR,
    'delivery_mode': (int, _NONE), 'priority': (int, _NONE),
    'correlation_id': _OPTIONAL_STR, 'reply_to': _OPTIONAL_STR, 'expiration': _OPTIONAL_STR}
_EMBED_TYPES: dict[str, tuple[type, ...]] = {
    'callbacks': (list, _NONE), 'errbacks': (list, _NONE), 'chain': (list, _NONE),
    'chord': (object,)}
_EMBED_FIELDS = tuple(_EMBED_TYPES)


def _plainly_valid(headers: dict[str, Any], properties: dict[str, Any], args: Any,
                   kwargs: Any, embed: Any) -> bool:
    """Whether a v2 message surely passes :meth:`TaskMessage.from_wire`'s
    validation unchanged: every value of a model's field has the exact type
    declared (no coercion, no subclass), the required fields are there.
    False says only "not sure": from_wire decides."""
    if type(args) is not list or type(kwargs) is not dict:
        return False
    if 'task' not in headers or 'id' not in headers:
        return False
    for key, value in headers.items():
        allowed = _HEADER_TYPES.get(key)
        if allowed is not None and type(value) not in allowed:
            return False  # an extra header (not a field) may be anything
    for key, allowed in _LIST_OF.items():
        items = headers.get(key)
        if items is not None:
            for item in items:
                if type(item) not in allowed:
                    return False
    stamps = headers.get('stamps')
    if stamps:
        for key in stamps:
            if type(key) is not str:
                return False
    for key, value in properties.items():
        allowed = _PROPERTY_TYPES.get(key)
        if allowed is not None and type(value) not in allowed:
            return False
    for key in kwargs:
        if type(key) is not str:
            return False
    if not embed:
        return True
    if type(embed) is not dict:
        return False
    for key, allowed in _EMBED_TYPES.items():
        if allowed != (object,) and type(embed.get(key)) not in allowed:
            return False
    return True


def make_task_message(
    name: str,
    args: tuple[Any, ...] | list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    *,
    task_id: str | None = None,
    countdown: float | None = None,
    eta: datetime | None = None,
    expires: float | datetime | None = None,
    priority: int | None = None,
    reply_to: str | None = None,
    retries: int = 0,
    root_id: str | None = None,
    parent_id: str | None = None,
    group_id: str | None = None,
    group_index: int | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    ignore_result: bool | None = None,
    shadow: str | None = None,
    delivery_mode: int = PERSISTENT,
    headers: dict[str, Any] | None = None,
    origin: str | None = None,
    now: datetime | None = None,
) -> TaskMessage:
    """Build the message Celery's ``send_task`` builds for the same call."""
    args = args or ()
    kwargs = kwargs or {}
    if not isinstance(args, list | tuple):
        raise TypeError('task args must be a list or tuple')
    if not isinstance(kwargs, dict):
        raise TypeError('task keyword arguments must be a mapping')
    task_id = task_id or new_id()
    now = now or utcnow()
    if countdown:
        eta = now + timedelta(seconds=countdown)
    expiration: str | None = None
    expires_at: datetime | None = None
    if isinstance(expires, int | float):
        expires_at = now + timedelta(seconds=expires)
        expiration = str(int(max(expires, 0) * 1000))
    elif isinstance(expires, datetime):
        expires_at = _aware(expires)
        expiration = str(int(max((expires_at - now).total_seconds(), 0) * 1000))
    task_headers = TaskHeaders(
        task=name, id=task_id, shadow=shadow,
        eta=_aware(eta).isoformat() if eta else None,
        expires=expires_at.isoformat() if expires_at else None,
        group=group_id, group_index=group_index, retries=retries,
        timelimit=[time_limit, soft_time_limit], root_id=root_id or task_id,
        parent_id=parent_id, argsrepr=saferepr(args), kwargsrepr=saferepr(kwargs),
        origin=origin or anon_nodename(), ignore_result=ignore_result,
        **(headers or {}))
    properties = TaskProperties(
        delivery_mode=delivery_mode, priority=priority or 0, correlation_id=task_id,
        reply_to=reply_to or '', expiration=expiration)
    return TaskMessage(properties=properties, headers=task_headers,
                       args=list(args), kwargs=dict(kwargs))


# --- exceptions on the wire ---------------------------------------------------
_made_up: dict[tuple[str, str], type[BaseException]] = {}


def _made_up_exception(module: str, name: str) -> type[BaseException]:
    key = (module, name)
    cls = _made_up.get(key)
    if cls is None:
        cls = type(name.rsplit('.', 1)[-1], (errors.RemoteError,), {'__module__': module})
        _made_up[key] = cls
    return cls


def _serializable(item: Any) -> Any:
    try:
        serialization.dumps(item)
    except (TypeError, ValueError):
        return saferepr(item)
    return item


class ExceptionInfo(BaseModel):
    """An exception as Celery's JSON result backends store it."""

    exc_type: str
    exc_message: list[Any] | str = Field(default_factory=list)
    exc_module: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> ExceptionInfo:
        kind = type(exc)
        module = getattr(kind, 'wire_module', None) or kind.__module__
        return cls(exc_type=getattr(kind, '__qualname__', kind.__name__),
                   exc_message=[_serializable(a) for a in exc.args], exc_module=module)

    def to_exception(self) -> BaseException:
        """Rebuild the exception. Only classes of modules already imported
        here are used (never an import driven by a message), and only
        exception classes; anything else becomes a made-up class with the
        remote name."""
        module = self.exc_module or 'builtins'
        cls: Any = errors.KNOWN_REMOTE.get((module, self.exc_type))
        if cls is None:
            cls = sys.modules.get(module)
            for part in self.exc_type.split('.'):
                cls = getattr(cls, part, None)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            cls = _made_up_exception(module, self.exc_type)
        args = self.exc_message if isinstance(self.exc_message, list) else [self.exc_message]
        try:
            return cls(*args)
        except Exception:
            return _made_up_exception(module, self.exc_type)(*args)


# --- rpc:// results ---------------------------------------------------------
class ResultMessage(BaseModel):
    """A state change of a task, as the ``rpc://`` backend sends it."""

    task_id: str
    status: str
    result: Any = None
    traceback: str | None = None
    children: list[Any] = Field(default_factory=list)
    date_done: str | None = None
    group_id: str | None = None
    parent_id: str | None = None

    def body(self) -> bytes:
        # Celery's order; group_id/parent_id only when set.
        meta: dict[str, Any] = {
            'status': self.status, 'result': self.result, 'traceback': self.traceback,
            'children': self.children, 'date_done': self.date_done,
        }
        if self.group_id:
            meta['group_id'] = self.group_id
        if self.parent_id:
            meta['parent_id'] = self.parent_id
        meta['task_id'] = self.task_id
        return serialization.dumps(meta)

    @classmethod
    def from_wire(cls, properties: dict[str, Any], body: bytes) -> ResultMessage:
        meta = serialization.decode_body(
            body, properties.get('content_type'), properties.get('content_encoding'))
        if 'task_id' not in meta:
            meta = dict(meta, task_id=properties.get('correlation_id'))
        return cls.model_validate(meta)

    @classmethod
    def success(cls, task_id: str, value: Any, **extra: Any) -> ResultMessage:
        return cls(task_id=task_id, status=states.SUCCESS, result=value,
                   date_done=utcnow().isoformat(), **extra)

    @classmethod
    def failure(cls, task_id: str, exc: BaseException, traceback: str | None = None,
                status: str = states.FAILURE, **extra: Any) -> ResultMessage:
        done = utcnow().isoformat() if status in states.READY_STATES else None
        return cls(task_id=task_id, status=status,
                   result=ExceptionInfo.from_exception(exc).model_dump(),
                   traceback=traceback, date_done=done, **extra)

    @classmethod
    def started(cls, task_id: str, hostname: str, pid: int, **extra: Any) -> ResultMessage:
        return cls(task_id=task_id, status=states.STARTED,
                   result={'pid': pid, 'hostname': hostname}, **extra)

    @property
    def ready(self) -> bool:
        return self.status in states.READY_STATES

    def value(self) -> Any:
        """The return value, or the exception for the exception states."""
        if self.status in states.EXCEPTION_STATES and isinstance(self.result, dict) \
                and 'exc_type' in self.result:
            return ExceptionInfo.model_validate(self.result).to_exception()
        return self.result


def result_properties(correlation_id: str) -> dict[str, Any]:
    """AMQP properties of an rpc:// result message (as Celery's)."""
    return {'content_type': JSON, 'content_encoding': UTF8, 'headers': {},
            'delivery_mode': TRANSIENT, 'priority': 0, 'correlation_id': correlation_id}

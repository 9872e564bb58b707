"""What a handler gets: the broker, the user, the path parameters, the query
and the JSON body (parsed on demand, with RabbitMQ's errors)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pamqp import encode

from .errors import bad_request

if TYPE_CHECKING:
    from ..auth import User
    from .ports import BrokerPort


@dataclass
class Call:
    broker: BrokerPort
    method: str
    user: User
    #: Path parameters, percent-decoded (``vhost``, ``name``, ...).
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    raw_body: bytes = b''
    _body: Any = field(default=None, repr=False)

    def body(self) -> dict[str, Any]:
        """The JSON object sent (``{}`` when nothing was sent); 400 not_json."""
        if self._body is None:
            if not self.raw_body.strip():
                self._body = {}
            else:
                try:
                    value = json.loads(self.raw_body)
                except (ValueError, UnicodeDecodeError):
                    raise bad_request('not_json') from None
                if not isinstance(value, dict):
                    raise bad_request('not_json')
                self._body = value
        return self._body  # type: ignore[no-any-return]

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter (``true`` / ``false``)."""
        value = self.query.get(name)
        return default if value is None else value.lower() == 'true'


def as_bool(value: Any, default: bool = False) -> bool:
    """Booleans as clients send them: JSON booleans or ``"true"``/``"false"``
    (rabbitmqadmin sends strings)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() == 'true'
    return bool(value)


def as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise bad_request(['not_int', what])
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise bad_request(['not_int', what])


def table_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a field table (the arguments of a queue, an
    exchange or a binding), or None.  JSON can carry what AMQP cannot (an
    integer past 64 bits): refuse it before anything changes, not when the
    journal record is written."""
    if not isinstance(value, dict):
        return 'arguments must be an object'
    try:
        encode.field_table(value)
    except (TypeError, ValueError, OverflowError) as exc:
        return f'arguments cannot be stored: {exc}'
    return None


def arguments_of(body: dict[str, Any]) -> dict[str, Any]:
    """The body's ``arguments`` (``{}`` when absent); 400 if AMQP cannot carry them."""
    arguments = body.get('arguments') or {}
    problem = table_problem(arguments)
    if problem:
        raise bad_request(problem)
    return arguments  # type: ignore[no-any-return]

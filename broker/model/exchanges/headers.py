"""Headers exchange: bindings match on the message's header table.

``x-match`` is ``all`` (default), ``any``, ``all-with-x`` or ``any-with-x``;
binding arguments starting with ``x-`` take part only in the ``-with-x``
forms.  A binding value of void matches any value of a present header.
"""

from __future__ import annotations

from typing import Any

from leveret.protocol import properties

from .base import Destination, Exchange

_MATCH_MODES = ('all', 'any', 'all-with-x', 'any-with-x')


class HeadersExchange(Exchange):
    kind = 'headers'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rules: list[tuple[Destination, str, dict[str, Any]]] = []

    def route(self, routing_key: str, message: Any) -> Any:
        if not self._rules:
            return ()
        headers = properties.headers(message.header)
        out: dict[Destination, None] = {}
        for destination, mode, wanted in self._rules:
            if destination not in out and _matches(mode, wanted, headers):
                out[destination] = None
        return out

    def _index_add(self, destination: Destination, routing_key: str,
                   arguments: dict[str, Any]) -> None:
        mode = arguments.get('x-match', 'all')
        if isinstance(mode, bytes):
            mode = mode.decode()
        with_x = mode.endswith('-with-x')
        wanted = {k: v for k, v in arguments.items()
                  if k != 'x-match' and (with_x or not k.startswith('x-'))}
        self._rules.append((destination, mode, wanted))

    def _index_remove(self, destination: Destination, routing_key: str,
                      arguments: dict[str, Any]) -> None:
        probe = HeadersExchange.__new__(HeadersExchange)
        probe._rules = []
        probe._index_add(destination, routing_key, arguments)
        rule = probe._rules[0]
        for i, existing in enumerate(self._rules):
            if existing[0] is destination and existing[1:] == rule[1:]:
                del self._rules[i]
                return


def validate_binding(arguments: dict[str, Any]) -> str | None:
    """An error text for a bad ``x-match`` value, or None."""
    mode = arguments.get('x-match', 'all')
    if isinstance(mode, bytes):
        mode = mode.decode(errors='replace')
    if mode not in _MATCH_MODES:
        return f"Invalid x-match field value '{mode}'; expected all, any, all-with-x, or any-with-x"
    return None


def _matches(mode: str, wanted: dict[str, Any], headers: dict[str, Any]) -> bool:
    if mode.startswith('all'):
        for key, value in wanted.items():
            if key not in headers:
                return False
            if value is not None and headers[key] != value:
                return False
        return True
    for key, value in wanted.items():
        if key in headers and (value is None or headers[key] == value):
            return True
    return False

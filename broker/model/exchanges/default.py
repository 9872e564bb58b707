"""The default exchange: every queue is bound to it by its own name.

The binding is implicit, so routing is a lookup in the vhost's queues; the
exchange cannot be bound, unbound, declared or deleted.
"""

from __future__ import annotations

from typing import Any

from .base import Destination, Exchange


class DefaultExchange(Exchange):
    kind = 'direct'

    def __init__(self, vhost: str, queues: dict[str, Any]) -> None:
        super().__init__(vhost, '', durable=True)
        self._queues = queues

    def route(self, routing_key: str, message: Any) -> Any:
        queue = self._queues.get(routing_key)
        return (queue,) if queue is not None else ()

    def _index_add(self, destination: Destination, routing_key: str,
                   arguments: dict[str, Any]) -> None:
        raise AssertionError('the default exchange has no explicit bindings')

    _index_remove = _index_add

"""Direct exchange: a binding matches when its key equals the routing key."""

from __future__ import annotations

from typing import Any

from .base import Destination, Exchange, add_count, remove_count

_NONE: dict[Destination, int] = {}


class DirectExchange(Exchange):
    kind = 'direct'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: routing key -> {destination: number of bindings}
        self._by_key: dict[str, dict[Destination, int]] = {}

    def route(self, routing_key: str, message: Any) -> Any:
        # .get with a shared empty dict: no allocation for unbound keys.
        return self._by_key.get(routing_key, _NONE)

    def _index_add(self, destination: Destination, routing_key: str,
                   arguments: dict[str, Any]) -> None:
        add_count(self._by_key.setdefault(routing_key, {}), destination)

    def _index_remove(self, destination: Destination, routing_key: str,
                      arguments: dict[str, Any]) -> None:
        found = self._by_key.get(routing_key)
        if found is not None:
            remove_count(found, destination)
            if not found:
                del self._by_key[routing_key]
